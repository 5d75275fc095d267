"""Serve an ASGI app on a free loopback port in a thread of this process (tests and benchmarks).

``audiapro api`` serves for real (``audiapro/commands/ops.py``); this is the in-process variant that
the admin-API tests, the upload-page browser test and the push benchmark share.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: How long to wait for the server thread after asking it to stop.
STOP_TIMEOUT_S = 30.0


@contextmanager
def served_in_thread(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of ``host`` until the block ends.

    Args:
        app: An ASGI application (e.g. from ``create_app``).
        host: Loopback interface to bind.

    Yields:
        The server's base URL, ``http://host:port``.

    Raises:
        RuntimeError: uvicorn stopped before it was listening.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        thread.join(0.01)  # wait a little for it to bind
    try:
        yield f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
