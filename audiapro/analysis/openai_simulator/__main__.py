"""`python -m audiapro.analysis.openai_simulator`: run the simulator in the foreground.

The API key is read from an environment variable (never from the command line, where it would
show up in the process list).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from audiapro.analysis.openai_simulator.config import OpenAIFaults, OpenAISimConfig
from audiapro.analysis.openai_simulator.server import LOOPBACK, serve_forever

DEFAULT_KEY_ENV = "OPENAI_SIM_API_KEY"
DEFAULT_PORT = 8089


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C.

    Args:
        argv: Command-line arguments (defaults to `sys.argv[1:]`).

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible API simulator")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--key-env", default=DEFAULT_KEY_ENV, help="environment variable holding the API key")
    parser.add_argument("--batch-polls", type=int, default=2, help="retrievals before a batch completes")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0)
    parser.add_argument("--server-error-rate", type=float, default=0.0)
    parser.add_argument("--invalid-json-rate", type=float, default=0.0)
    parser.add_argument("--schema-violation-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    api_key = os.environ.get(args.key_env)
    if not api_key:
        print(f"set {args.key_env} to the API key clients must send", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    config = OpenAISimConfig(api_key=api_key, seed=args.seed, batch_complete_after_polls=args.batch_polls)
    faults = OpenAIFaults(
        rate_limit_rate=args.rate_limit_rate,
        server_error_rate=args.server_error_rate,
        invalid_json_rate=args.invalid_json_rate,
        schema_violation_rate=args.schema_violation_rate,
    )
    serve_forever(config, faults, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
