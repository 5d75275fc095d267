"""HTTP(S) transport: a stdlib ThreadingHTTPServer on loopback, run in a background thread.

Everything except the ``/__sim__/`` control paths goes to the UCM protocol handler, which answers
anything but ``POST /api`` with the PBX's "Invalid parameters!" reply. Stopping the server also closes
kept-alive client connections, so a stopped simulator really stops answering.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from audiapro.ucm.simulator.api import INVALID_BODY, MAX_BODY_BYTES, HttpReply, json_reply

#: Seconds an idle kept-alive connection may stay open.
IDLE_CONNECTION_SECONDS = 30.0
CONTROL_PREFIX = "/__sim__/"
POLL_INTERVAL = 0.05

#: ``(method, path, body, client_ip, cancel) -> reply`` for everything outside ``/__sim__/``.
ApiHandler = Callable[[str, str, bytes, str, threading.Event], HttpReply]
#: ``(method, path, query, body) -> reply`` for the control endpoints.
ControlHandler = Callable[[str, str, str, bytes], HttpReply]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        api: ApiHandler,
        control: ControlHandler | None,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.api = api
        self.control = control
        self.tls = tls
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall for seconds on machines
        # with slow DNS; the name is unused here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake runs later in the connection's own thread (see _Handler.setup), so a
            # slow or broken client cannot stall the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections (timeouts, TLS failures) are normal here; stay quiet.
        pass

    def close_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "UCM-Simulator"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    # Headers and body are separate writes; with Nagle on, the body waits for the client's delayed
    # ACK (~40 ms per request on Linux). Buffer the reply and send it without delay instead.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test and CLI output clean

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: HttpReply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _dispatch(self) -> None:
        body = self._body()
        if body is None:
            self.close_connection = True
            self._send(json_reply(INVALID_BODY))
            return
        parts = urlsplit(self.path)
        if parts.path.startswith(CONTROL_PREFIX) and self.server.control is not None:
            reply = self.server.control(self.command, parts.path, parts.query, body)
        else:
            reply = self.server.api(
                self.command, parts.path, body, self.client_address[0], self.server.stopping
            )
        if self.server.stopping.is_set():
            self.close_connection = True
            return
        self._send(reply)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class ServerHandle:
    """A running simulator server."""

    def __init__(self, server: _Server, thread: threading.Thread, base_url: str) -> None:
        """Wrap a started server."""
        self._server = server
        self._thread = thread
        self.base_url = base_url

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop accepting, end hanging requests and close every client connection."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_server(
    host: str,
    port: int,
    api: ApiHandler,
    control: ControlHandler | None = None,
    tls: ssl.SSLContext | None = None,
    *,
    allow_remote: bool = False,
) -> ServerHandle:
    """Bind and start serving in a daemon thread.

    Args:
        host: Interface to bind; must be loopback unless ``allow_remote``.
        port: TCP port, 0 = any free port.
        api: Handler for every request outside ``/__sim__/`` (the UCM protocol).
        control: Handler for ``/__sim__/`` paths (``None`` = treat them like any unknown path).
        tls: Server SSL context for HTTPS, ``None`` for plain HTTP.
        allow_remote: Permit a non-loopback bind address (the simulator has no real security).

    Raises:
        ValueError: A non-loopback host without ``allow_remote``.
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to listen on non-loopback host {host!r} (pass allow_remote=True)")
    server = _Server((host, port), api, control, tls)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True, name="ucm-sim"
    )
    thread.start()
    bound = server.server_address[1]
    url_host = f"[{host}]" if ":" in host else host
    scheme = "https" if tls is not None else "http"
    return ServerHandle(server, thread, f"{scheme}://{url_host}:{bound}")


def json_body(body: bytes) -> dict[str, Any]:
    """Parse a control request body (empty = ``{}``)."""
    if not body.strip():
        return {}
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload
