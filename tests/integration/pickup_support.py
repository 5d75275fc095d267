"""Real protocol servers on loopback for the pickup tests (no tests here).

* :class:`SftpTestServer`: asyncssh's own SSH/SFTP server on an event loop in a thread of its own,
  chrooted to a temporary directory, password and public-key login.
* :class:`ImapTestServer`: pymap's in-memory IMAP server (``dict`` backend) in a subprocess on a
  free port, plain IMAP on 127.0.0.1; mail is put in with ``APPEND`` through imap-tools.
"""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import asyncssh
from imap_tools import MailBoxUnencrypted

from audiapro.ucm.simulator import write_ui_export

SFTP_USER: Final = "drop"
SFTP_PASSWORD: Final = "sftp-Pa55-word"
IMAP_USER: Final = "cdr"
IMAP_PASSWORD: Final = "imap-Pa55-word"
#: How long the IMAP server may take to accept connections.
IMAP_START_TIMEOUT_S: Final = 20.0


class _SshServer(asyncssh.SSHServer):
    """Password or one authorized public key, for one user."""

    def __init__(self, authorized: list[asyncssh.SSHKey]) -> None:
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == SFTP_USER and password == SFTP_PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        wanted = {k.public_data for k in self._authorized}
        return username == SFTP_USER and key.public_data in wanted


class SftpTestServer:
    """An SFTP server on 127.0.0.1, its files under ``root`` (the client sees ``root`` as ``/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(self._listen(root))
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, root: Path) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            server_factory=lambda: _SshServer([self.client_key]),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        )

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    @property
    def host_key_line(self) -> str:
        """The server's public host key, one OpenSSH line (what a source pins)."""
        return str(self.host_key.export_public_key("openssh").decode().strip())

    @property
    def client_key_text(self) -> str:
        """The authorized client private key, OpenSSH text."""
        return str(self.client_key.export_private_key("openssh").decode())

    def close(self) -> None:
        """Stop the server and its loop."""
        self._server.close()
        self._call(self._server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextmanager
def sftp_server(root: Path) -> Iterator[SftpTestServer]:
    """A running :class:`SftpTestServer` for the ``with`` block."""
    server = SftpTestServer(root)
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ImapTestServer:
    """pymap (in-memory) on 127.0.0.1 in a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        pymap = [sys.executable, "-c", "from pymap.main import main; main()"]
        self._process = subprocess.Popen(
            [*pymap, "--host", "127.0.0.1", "--port", str(self.port), "--no-tls", "dict",
             "--demo-user", IMAP_USER, "--demo-password", IMAP_PASSWORD],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + IMAP_START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.close()
                    raise RuntimeError("the pymap IMAP test server did not start") from None
                time.sleep(0.05)  # start-up poll, not a race: the loop ends when the port answers

    @contextmanager
    def mailbox(self) -> Iterator[MailBoxUnencrypted]:
        """A logged-in client for putting mail in and looking at it."""
        box = MailBoxUnencrypted("127.0.0.1", self.port).login(IMAP_USER, IMAP_PASSWORD)
        try:
            yield box
        finally:
            box.logout()

    def recreate(self, folder: str) -> None:
        """Delete and create ``folder`` again (the server gives it a new UIDVALIDITY)."""
        with self.mailbox() as box:
            if box.folder.exists(folder):
                box.folder.delete(folder)
            box.folder.create(folder)

    def append(self, folder: str, message: EmailMessage) -> int:
        """Put ``message`` into ``folder``; its UID."""
        return append_mail(self.port, folder, message)

    def close(self) -> None:
        """Stop the server."""
        self._process.terminate()
        self._process.wait(timeout=10)


def append_mail(port: int, folder: str, message: EmailMessage) -> int:
    """Put ``message`` into ``folder`` of the test IMAP server on ``port``; its UID."""
    with MailBoxUnencrypted("127.0.0.1", port).login(IMAP_USER, IMAP_PASSWORD) as box:
        if not box.folder.exists(folder):
            box.folder.create(folder)
        result = box.append(message.as_bytes(), folder, dt=datetime(2026, 3, 3, 8, tzinfo=UTC))
    text = result[1][0].decode() if result and result[1] else ""
    return int(text.split("]")[0].split()[-1]) if "APPENDUID" in text else 0


def cdr_mail(
    sender: str, attachments: dict[str, bytes], *, message_id: str | None = "<r1@pbx>"
) -> EmailMessage:
    """A report e-mail with these attachments (name -> bytes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "cdr@example.com"
    message["Subject"] = "CDR report"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("Scheduled CDR report attached.")
    for name, data in attachments.items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


def export_bytes(legs: list[dict[str, str]], tmp: Path) -> bytes:
    """A UI CSV export of ``legs``, as bytes."""
    path = tmp / f"export-{len(legs)}-{id(legs)}.csv"
    write_ui_export(legs, path)
    return path.read_bytes()


def zipped(members: dict[str, bytes]) -> bytes:
    """A zip archive of these members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(unpacked_bytes: int) -> bytes:
    """A small zip that unpacks to ``unpacked_bytes`` of zeros (a CSV name, so it is not skipped)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("cdr.csv", "w") as member,
    ):
        block = b"0" * (1 << 20)
        for _ in range(unpacked_bytes // len(block)):
            member.write(block)
    return buffer.getvalue()
