"""Optional TCP listener for firmwares whose CDR Real-time Output is set to TCP (off by default).

What TCP mode sends is not published; the vendor's own sample receiver accepts a connection, reads,
prints and closes, so the listener takes **one connection as one body**: every byte until the PBX
closes the connection (or stays silent for ``IDLE_S``), capped at ``PUSH_MAX_BYTES``. The body then
goes through the same receiver as an HTTP push (stored verbatim first, parsed tolerantly: several
JSON documents back to back or several XML records in one body are split there).

TCP carries no login, so a listener serves exactly one tenant on a port of its own and accepts
connections only from the addresses in ``allowed`` (networks, default loopback): put the PBX's
address there. Everything else is closed unread.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final

from audiapro.push.config import PUSH_OFF
from audiapro.push.receiver import PushReceiver, Receipt

log = logging.getLogger("audiapro.push")

#: Seconds of silence after which a connection's bytes so far are taken as the whole body.
IDLE_S: Final = 5.0
#: Largest body a connection may send (as for HTTP pushes).
TCP_MAX_BYTES: Final = 8 << 20
READ_BYTES: Final = 64 << 10
LOOPBACK: Final = ("127.0.0.0/8", "::1/128")
#: Stored with a TCP body in place of HTTP headers.
_TCP_HEADERS: Final = {"x-transport": "tcp"}
#: Seconds :meth:`TcpPushListener.start` waits for the port to be bound.
START_TIMEOUT_S: Final = 10.0


class TcpPushListener:
    """Receives one tenant's pushes over TCP, connect-send-close (module docstring)."""

    def __init__(
        self,
        receiver: PushReceiver,
        tenant: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed: Sequence[str] = LOOPBACK,
        max_bytes: int = TCP_MAX_BYTES,
        idle_s: float = IDLE_S,
    ) -> None:
        """Listen on ``host:port`` (0: a free port) for ``tenant``, from the ``allowed`` networks only."""
        self.receiver = receiver
        self.tenant = tenant
        self.host = host
        self.port = port
        self.networks = [ipaddress.ip_network(net, strict=False) for net in allowed]
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        #: Every stored body's receipt, in order (tests wait on it instead of sleeping).
        self.receipts: queue.Queue[Receipt] = queue.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Serve in a background thread; the bound port.

        Raises:
            OSError: The port could not be bound.
        """
        bound: queue.Queue[int | BaseException] = queue.Queue()
        self._thread = threading.Thread(
            target=self._serve, args=(bound,), name="audiapro-push-tcp", daemon=True
        )
        self._thread.start()
        result = bound.get(timeout=START_TIMEOUT_S)
        if isinstance(result, BaseException):
            raise result
        self.port = result
        return result

    def stop(self) -> None:
        """Close the port and end the thread."""
        loop, server = self._loop, self._server
        if loop is not None and server is not None:
            loop.call_soon_threadsafe(server.close)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S)
            self._thread = None

    def _serve(self, bound: queue.Queue[int | BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(asyncio.start_server(self._connection, self.host, self.port))
        except OSError as exc:
            bound.put(exc)
            return
        self._server = server
        bound.put(int(server.sockets[0].getsockname()[1]))
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _allowed(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        loop = asyncio.get_running_loop()
        try:
            if not self._allowed(peer):
                log.warning(
                    "push over TCP for %s: connection from %s refused (not allowed)", self.tenant, peer
                )
                return
            found = await loop.run_in_executor(None, self.receiver.tenant, self.tenant)
            if found is None or found.mode == PUSH_OFF or self.receiver.saturated():
                # Closed unread: the PBX sees the connection fail and keeps the record in its buffer.
                log.warning("push over TCP for %s: tenant unknown, push off or queue full", self.tenant)
                return
            body = await self._read(reader)
            if body is None:
                log.warning("push over TCP for %s from %s: body over %d bytes dropped", self.tenant, peer,
                            self.max_bytes)  # fmt: skip
                return
            if body.strip():
                store = functools.partial(self.receiver.receive, found, body, _TCP_HEADERS, peer=peer)
                self.receipts.put(await loop.run_in_executor(None, store))
        finally:
            writer.close()  # only now: a sender waiting for the close knows its body is stored

    async def _read(self, reader: asyncio.StreamReader) -> bytes | None:
        """The connection's bytes until EOF or ``idle_s`` of silence; None when over the cap."""
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(READ_BYTES), self.idle_s)
            except TimeoutError:
                break
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
