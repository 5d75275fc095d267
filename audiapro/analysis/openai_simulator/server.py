"""Loopback HTTP server (stdlib `http.server`) and the public `OpenAISimulator` facade.

The stdlib server is used instead of FastAPI because FastAPI's form parsing needs
`python-multipart`, which is not a project dependency, and because a hung request must be able to
close its socket without answering, which is simplest with direct socket control.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from audiapro.analysis.openai_simulator.app import (
    DropConnection,
    SimApp,
    SimRequest,
    SimResponse,
)
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.errors import SimError
from audiapro.analysis.openai_simulator.faults import OpenAIFaults
from audiapro.analysis.openai_simulator.stats import OpenAIStats

log = logging.getLogger("audiapro.analysis")

LOOPBACK = "127.0.0.1"
# Hard cap on request bodies: above it the connection is closed instead of buffering the upload.
MAX_BODY_BYTES = 512 * 1024 * 1024
# Idle keep-alive connections are closed after this long, so handler threads do not linger.
IDLE_TIMEOUT_S = 30.0
SHUTDOWN_JOIN_S = 5.0
POLL_INTERVAL_S = 0.05


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimApp, stop: threading.Event) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.stop = stop


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    # Headers and body go out as separate writes; with Nagle on, delayed ACKs add ~40 ms per request.
    disable_nagle_algorithm = True
    server: _SimHTTPServer
    timeout = IDLE_TIMEOUT_S

    def log_message(self, format: str, *args: object) -> None:
        # Request line and status only; headers (and so the API key) are never logged.
        log.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        # The openai client always sends Content-Length (its uploads are in memory).
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES or self.headers.get("transfer-encoding"):
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            error = SimError(413, "Request too large, or not sent with a Content-Length.")
            self._send(SimResponse(413, json.dumps(error.body()).encode(), "application/json"))
            return
        url = urlsplit(self.path)
        request = SimRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.app.handle(request, self.server.stop)
        except DropConnection:
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: SimResponse) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired); nothing left to do.
            self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch


class OpenAISimulator:
    """A local OpenAI-compatible API for the real `openai` client.

    Example:
        >>> sim = OpenAISimulator(OpenAISimConfig(api_key="sk-test"))
        >>> with sim.serve() as base_url:  # doctest: +SKIP
        ...     client = openai.OpenAI(base_url=base_url, api_key="sk-test")

    Args:
        config: Static configuration (key, seed, limits, prices).
        faults: Initial fault knobs; replace `sim.faults` at any time.
    """

    def __init__(self, config: OpenAISimConfig, faults: OpenAIFaults | None = None) -> None:
        self.config = config
        self._app = SimApp(config, faults or OpenAIFaults())
        self._server: _SimHTTPServer | None = None

    @property
    def faults(self) -> OpenAIFaults:
        """The fault knobs in force."""
        return self._app.injector.faults

    @faults.setter
    def faults(self, value: OpenAIFaults) -> None:
        self._app.injector.faults = value

    @property
    def base_url(self) -> str | None:
        """The client `base_url` while serving, else None."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def stats(self) -> OpenAIStats:
        """A snapshot of request counts, faults and billed usage."""
        return self._app.recorder.snapshot()

    @contextmanager
    def serve(self, port: int = 0, host: str = LOOPBACK) -> Iterator[str]:
        """Serve in a background thread.

        Args:
            port: TCP port; 0 picks a free one.
            host: Bind address; loopback by default.

        Yields:
            The base URL for the client, e.g. `http://127.0.0.1:54321/v1`.

        Raises:
            RuntimeError: If this simulator is already serving.
        """
        if self._server is not None:
            raise RuntimeError("the simulator is already serving")
        stop = threading.Event()
        server = _SimHTTPServer((host, port), self._app, stop)
        self._server = server
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            daemon=True,
            name="openai-simulator",
        )
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}/v1"
        finally:
            stop.set()  # wakes hung handlers so they close their sockets
            server.shutdown()
            server.server_close()
            thread.join(SHUTDOWN_JOIN_S)
            self._server = None
