"""An e-mail's attachments, streamed: fetched in ranges to a file, then decoded line by line.

A parsed message (``email`` package, imap-tools) holds the raw message, its lines and every decoded
part in memory at once: a 40 MB zip attachment costs hundreds of MB. Here the message is fetched in
``BODY.PEEK[]<offset.length>`` ranges into the spool, and one pass over its lines writes each wanted
attachment to its own file while decoding it (base64, quoted-printable, 7bit/8bit/binary), so memory
stays at one range whatever the attachment's size; the caps are checked as the bytes are written.
"""

from __future__ import annotations

import binascii
import imaplib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Final, cast

from audiapro.pickup.errors import FileRefused
from audiapro.pickup.files import HashingWriter, safe_name

#: Bytes asked for per FETCH while downloading a message.
FETCH_CHUNK_BYTES: Final = 4 << 20
#: Most bytes of one part's header block (a part with more is skipped, not parsed).
MAX_HEADER_BYTES: Final = 64 << 10
_EOLS: Final = (b"\r\n", b"\n")


def download_message(client: imaplib.IMAP4, uid: int, target: Path, max_bytes: int) -> bool:
    """Write message ``uid`` of the selected folder to ``target``, one range at a time.

    Returns:
        False when the message is gone (expunged or moved since the search).

    Raises:
        FileRefused: The message is larger than ``max_bytes``.
    """
    offset = 0
    with open(target, "wb") as out:
        while True:
            typ, data = client.uid("FETCH", str(uid), f"(BODY.PEEK[]<{offset}.{FETCH_CHUNK_BYTES}>)")
            literal = next((part[1] for part in data or () if isinstance(part, tuple)), None)
            if typ != "OK" or literal is None:
                return offset > 0
            out.write(literal)
            offset += len(literal)
            if offset > max_bytes:
                raise FileRefused(
                    f"message uid {uid} is larger than the cap of {max_bytes} bytes (max_file_bytes)"
                )
            if len(literal) < FETCH_CHUNK_BYTES:
                return True


@dataclass
class Extracted:
    """The attachments written (their files) and those refused (name, reason)."""

    saved: list[Path] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


class _Sink:
    """One attachment being decoded into its file."""

    def __init__(self, path: Path, encoding: str, max_bytes: int, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = path
        self._writer = HashingWriter(path, max_bytes, f"attachment {name}")
        self._encoding = encoding
        self._carry = b""  # base64 characters short of a 4-character group
        self._eol = b""  # the previous line's ending: it belongs to a boundary when one follows

    def feed(self, line: bytes) -> None:
        if self._encoding == "base64":
            data = self._carry + b"".join(line.split())
            cut = len(data) - len(data) % 4
            self._carry = data[cut:]
            if cut:
                self._writer.write(binascii.a2b_base64(data[:cut]))
            return
        body = line.rstrip(b"\r\n")
        eol = line[len(body) :]
        self._writer.write(self._eol)
        if self._encoding == "quoted-printable":
            self._writer.write(binascii.a2b_qp(body))
            self._eol = b"" if body.endswith(b"=") else b"\n"  # "=" at the end: a soft line break
        else:
            self._writer.write(body)
            self._eol = eol

    def close(self) -> None:
        try:
            if self._carry.strip(b"="):
                self._writer.write(binascii.a2b_base64(self._carry + b"=" * (-len(self._carry) % 4)))
        finally:
            self._writer.close()


class _Walker:
    """The state of one pass over a message's lines."""

    def __init__(self, wanted: Callable[[str], bool], room: Path, max_bytes: int) -> None:
        self._wanted = wanted
        self._room = room
        self._max = max_bytes
        self.boundaries: list[bytes] = []
        self.in_headers = True
        self.headers: list[bytes] = []
        self.sink: _Sink | None = None
        self.result = Extracted()

    def line(self, line: bytes) -> None:
        if not self.in_headers and self.boundaries and line.startswith(b"--") and self._boundary(line):
            return
        if self.in_headers:
            self._header_line(line)
        elif self.sink is not None:
            try:
                self.sink.feed(line)
            except (FileRefused, binascii.Error) as exc:
                self._refuse(exc)

    def _boundary(self, line: bytes) -> bool:
        text = line.rstrip()
        for depth in range(len(self.boundaries) - 1, -1, -1):
            mark = self.boundaries[depth]
            if text in (mark, mark + b"--"):
                self.finish_part()
                del self.boundaries[depth + 1 :]
                if text == mark:
                    self.in_headers, self.headers = True, []
                else:
                    self.boundaries.pop()  # the multipart ends; its epilogue is skipped
                return True
        return False

    def _header_line(self, line: bytes) -> None:
        if line in _EOLS:
            self.in_headers = False
            self._start(
                cast(EmailMessage, BytesHeaderParser(policy=default).parsebytes(b"".join(self.headers)))
            )
        elif sum(map(len, self.headers)) < MAX_HEADER_BYTES:
            self.headers.append(line)

    def _start(self, headers: EmailMessage) -> None:
        if headers.get_content_maintype() == "multipart":
            boundary = headers.get_boundary()
            if boundary:
                self.boundaries.append(b"--" + boundary.encode("ascii", "replace"))
            return
        name = headers.get_filename()
        if not name or not self._wanted(name):
            return
        encoding = str(headers.get("content-transfer-encoding", "7bit")).strip().lower()
        path = self._room / f"part-{len(self.result.saved) + len(self.result.refused)}" / safe_name(name)
        try:
            self.sink = _Sink(path, encoding, self._max, safe_name(name))
        except OSError as exc:
            raise FileRefused(
                f"attachment {safe_name(name)}: cannot be written ({type(exc).__name__})"
            ) from None

    def finish_part(self) -> None:
        if self.sink is None:
            return
        sink, self.sink = self.sink, None
        try:
            sink.close()
            self.result.saved.append(sink.path)
        except (FileRefused, binascii.Error) as exc:
            self.sink = sink
            self._refuse(exc)

    def _refuse(self, exc: Exception) -> None:
        assert self.sink is not None
        sink, self.sink = self.sink, None
        sink.path.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, FileRefused) else f"attachment {sink.name}: broken base64"
        self.result.refused.append((sink.name, reason))


def extract_attachments(
    message: Path, wanted: Callable[[str], bool], room: Path, max_bytes: int
) -> Extracted:
    """Write the attachments of the message file whose names ``wanted`` accepts under ``room``.

    Each goes to ``room/part-N/<safe name>``; one over ``max_bytes`` (or broken) is refused with its
    reason and nothing of it is kept, while the others go on.
    """
    walker = _Walker(wanted, room, max_bytes)
    with open(message, "rb") as fh:
        for line in fh:
            walker.line(line)
    walker.finish_part()
    return walker.result
