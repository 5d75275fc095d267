"""CLI benchmark: wall time of `audiapro tenant list` and `audiapro status`, with and without a Prefect API.

Measured in one run, in a scratch state home (``AUDIAPRO_HOME``; nothing of the user's is read or
written), each command a fresh ``audiapro`` process as a user starts it:

* **running API**: a ``prefect server start`` on loopback whose URL is recorded in the home's run
  directory, the way `make up` records it, so the commands find it with nothing exported;
* **no API**: the server stopped, ``PREFECT_API_URL`` unset (commands read Prefect's database);

and, as baselines in the same run:

* **floor**: starting the interpreter and importing the CLI (``python -c "import audiapro.cli"``),
  what every ``audiapro`` command costs before it does anything;
* **Prefect's client**: the same commands through Prefect's client, the way they all ran before:
  with the API running (``PREFECT_API_KEY`` set, which makes the readers defer to Prefect's client
  and which the local server ignores), and without an API (``PREFECT_API_DATABASE_CONNECTION_URL``
  naming the same database, so Prefect starts its temporary server on it as before).

Each figure is the median of ``--repeat`` runs (one for the slow temporary-server baseline). The
last line of the output is one JSON object with the figures. Target (issue 16): < 2 s each.

Usage::

    .venv/bin/python bench/cli_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import host_facts, load_average, log

BIN = Path(sys.executable).parent
COMMANDS = {"tenant list": ["tenant", "list"], "status": ["status"]}
TARGET_S = 2.0
SERVER_START_TIMEOUT_S = 300.0
COMMAND_TIMEOUT_S = 600.0
TENANTS = ("acme", "globex")


def scratch_env(home: Path) -> dict[str, str]:
    """A user with nothing configured but a state home of their own (no PREFECT_*/AUDIAPRO_* from here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AUDIAPRO_"))}
    env.update(AUDIAPRO_HOME=str(home), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")  # fmt: skip
    return env


def wall(env: dict[str, str], args: list[str], stdin: str | None = None) -> float:
    """Seconds one ``audiapro`` process takes (start to exit); fail loudly on a traceback."""
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "audiapro"), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    if "Traceback" in done.stderr or done.returncode not in (0, 1):  # status: 1 = degraded
        raise RuntimeError(f"audiapro {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def median_wall(env: dict[str, str], args: list[str], repeat: int) -> float:
    """Median of ``repeat`` runs, rounded to 10 ms."""
    return round(statistics.median(wall(env, args) for _ in range(repeat)), 2)


def floor_s(env: dict[str, str], repeat: int) -> float:
    """Median seconds of starting Python and importing the CLI, as every command does first."""

    def once() -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import audiapro.cli"], env=env, check=True)
        return time.perf_counter() - start

    return round(statistics.median(once() for _ in range(repeat)), 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def prefect_server(env: dict[str, str], home: Path) -> Iterator[str]:
    """A Prefect server on the home's Prefect database, recorded like `make up` does; yields its API URL."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server_env = {**env, "PREFECT_HOME": str(home / "prefect")}
    log_file = (home / "server.log").open("wb")
    argv = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env=server_env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(api_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start (log: {home / 'server.log'})")
            time.sleep(0.5)
        (home / "run").mkdir(parents=True, exist_ok=True)
        (home / "run" / "prefect-api-url").write_text(f"{api_url}\n")  # what `make up` writes
        yield api_url
    finally:
        (home / "run" / "prefect-api-url").unlink(missing_ok=True)
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


def measure(repeat: int) -> dict[str, Any]:
    """Run every scenario in one scratch home; return the figures."""
    load_start = load_average()
    home = Path(tempfile.mkdtemp(prefix="audiapro-cli-bench-"))
    env = scratch_env(home)
    figures: dict[str, Any] = {"repeat": repeat, "target_s": TARGET_S}
    try:
        figures["floor_s"] = floor_s(env, repeat)
        log("starting a Prefect server (not timed)")
        with prefect_server(env, home) as api_url:
            for name in TENANTS:  # through the running server, as a user would add them (not timed)
                wall(env, ["tenant", "add", name, "--host", f"pbx.{name}.example", "--timezone", "UTC",
                           "--password-stdin", "--no-check"], stdin="bench-password\n")  # fmt: skip
            client = {**env, "PREFECT_API_URL": api_url, "PREFECT_API_KEY": "bench-ignored"}
            for label, args in COMMANDS.items():
                log(f"running API: {label}")
                figures[f"api_{_key(label)}_s"] = median_wall(env, args, repeat)
                figures[f"api_{_key(label)}_prefect_client_s"] = median_wall(client, args, repeat)
        db_url = f"sqlite+aiosqlite:///{home / 'prefect' / 'prefect.db'}"
        temporary = {**env, "PREFECT_API_DATABASE_CONNECTION_URL": db_url}
        for label, args in COMMANDS.items():
            log(f"no API: {label}")
            figures[f"no_api_{_key(label)}_s"] = median_wall(env, args, repeat)
            figures[f"no_api_{_key(label)}_prefect_client_s"] = median_wall(temporary, args, 1)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    figures["machine"] = host_facts(load_start)
    return figures


def _key(label: str) -> str:
    return label.replace(" ", "_")


def table_lines(f: dict[str, Any]) -> list[str]:
    """The human-readable table above the machine line and the JSON line."""
    lines = [
        f"audiapro CLI wall time (median of {f['repeat']}; floor = Python + CLI import {f['floor_s']} s)",
        f"  {'command':<13} {'API':<9} {'seconds':>8} {'x floor':>8} {'Prefect client s':>17} "
        f"{'speed-up':>9}",
    ]
    for label in COMMANDS:
        for where in ("api", "no_api"):
            ours = f[f"{where}_{_key(label)}_s"]
            theirs = f[f"{where}_{_key(label)}_prefect_client_s"]
            lines.append(
                f"  {label:<13} {'running' if where == 'api' else 'none':<9} {ours:>8.2f} "
                f"{ours / f['floor_s']:>8.1f} {theirs:>17.2f} {theirs / ours:>8.1f}x"
                + ("" if ours < f["target_s"] else "  (over the 2 s target)")
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Runs per figure (median)")
    args = parser.parse_args()
    figures = measure(args.repeat)
    for line in table_lines(figures):
        print(line)
    m = figures["machine"]
    print(f"  machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}, "
          f"load average {m['load_avg_1m_start']} -> {m['load_avg_1m']}")  # fmt: skip
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
