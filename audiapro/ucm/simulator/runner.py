"""Blocking entry point for ``audiapro simulate``: serve until Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from audiapro.ucm.simulator.config import FaultConfig, SimulatorConfig
from audiapro.ucm.simulator.simulator import DEFAULT_HOST, UcmSimulator

#: On-prem UCMs serve the new HTTPS API on the web-UI port, 8089 by default.
DEFAULT_PORT = 8089


def serve_forever(
    config: SimulatorConfig,
    faults: FaultConfig | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Run a simulator until Ctrl-C (or until ``stop`` is set).

    Prints the base URL, API user, time zone, history range and CA file, never the password.

    Args:
        config: Tenant and protocol settings (usually with ``clock="real"``).
        faults: Fault injection (default none).
        host: Bind address (loopback unless ``allow_remote``).
        port: TCP port (0 = any free port).
        allow_remote: Allow a non-loopback bind address.
        echo: Where the banner goes.
        stop: Optional event that ends serving (for embedding and tests).
    """
    sim = UcmSimulator(config, faults)
    handle = sim.start(host, port, allow_remote=allow_remote)
    last_day = sim.history_start + timedelta(days=max(config.days, 1) - 1)
    echo(f"UCM simulator listening on {handle.base_url}")
    echo(f"  endpoint:  POST {handle.base_url}/api")
    echo(f"  API user:  {config.api_user}")
    echo(f"  time zone: {config.tz}")
    echo(f"  history:   {sim.history_start} .. {last_day} ({config.days} days)")
    echo(f"  clock:     {config.clock} (now {sim.clock.now().isoformat(timespec='seconds')})")
    if sim.ca_file is not None:
        echo(f"  CA file:   {sim.ca_file}")
    echo("Press Ctrl-C to stop.")
    waiter = stop or threading.Event()
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        echo("stopping")
    finally:
        handle.stop()
