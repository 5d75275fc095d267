"""Fetched files on their way to the import: spooled with their hash, archives opened as streams.

A pickup streams each remote file into its own directory under the import spool
(``settings.IMPORT_SPOOL_DIR / "pickup"``) while hashing it, then hands every CDR file in it to
:func:`audiapro.importing.import_file`. A ``.zip`` is read member by member and a ``.gz`` as one
stream: nothing is unpacked as a whole, and the caps of :class:`Limits` are checked while the bytes
flow, so a zip bomb or an oversized attachment stops at the cap with a clear reason instead of
filling the disk.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Final

from audiapro import settings
from audiapro.pickup.errors import FileRefused

#: Bytes copied (and hashed) at a time.
COPY_BLOCK_BYTES: Final = 1 << 20
#: Default caps: a fetched file or attachment, a zip's member count, bytes unpacked from one archive.
DEFAULT_MAX_FILE_BYTES: Final = 1 << 30
DEFAULT_MAX_MEMBERS: Final = 50
DEFAULT_MAX_UNPACKED_BYTES: Final = 4 << 30
#: Names inside an archive that are CDR files (exports are CSV, saved API replies JSON).
CDR_MEMBER_PATTERNS: Final = ("*.csv", "*.json")
#: Subdirectory of the spool where pickups put what they fetch.
PICKUP_SPOOL: Final = "pickup"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZIP_MAGIC: Final = b"PK\x03\x04"


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or broken file from filling the disk.

    Attributes:
        max_file_bytes: Largest file or attachment fetched (checked while it streams in).
        max_members: Most members of one zip archive.
        max_unpacked_bytes: Most bytes unpacked from one archive (all members together), counted
            as they are written, whatever the archive's headers claim.
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES


def pickup_spool(source: str) -> Path:
    """The spool directory of one pickup source (inside the import roots), created if missing."""
    path = settings.IMPORT_SPOOL_DIR / PICKUP_SPOOL / source
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def spool_slot(source: str) -> Iterator[Path]:
    """A fresh directory in the source's spool for one fetched file; removed with all it holds."""
    slot = Path(tempfile.mkdtemp(prefix="fetch-", dir=pickup_spool(source)))
    try:
        yield slot
    finally:
        shutil.rmtree(slot, ignore_errors=True)


def safe_name(name: str) -> str:
    """The last component of a remote or attachment name, safe as a local file name."""
    base = PurePosixPath(name.replace("\\", "/")).name.strip()
    return base if base not in {"", ".", ".."} else "file"


class HashingWriter:
    """Write a stream to a file, hashing it and refusing it past a byte cap."""

    def __init__(self, target: Path, max_bytes: int, what: str) -> None:
        """Open ``target`` for writing.

        Args:
            target: File to create.
            max_bytes: Refuse (``FileRefused``) once more than this was written.
            what: Name in the refusal message.
        """
        self._fh: IO[bytes] = open(target, "wb")  # noqa: SIM115 - closed by close()
        self._digest = hashlib.sha256()
        self._max = max_bytes
        self._what = what
        self.size = 0
        self.path = target

    def write(self, block: bytes) -> None:
        """Append ``block``."""
        self.size += len(block)
        if self.size > self._max:
            self.close()
            self.path.unlink(missing_ok=True)  # never keep part of a refused file
            raise FileRefused(f"{self._what} is larger than the cap of {self._max} bytes (max_file_bytes)")
        self._digest.update(block)
        self._fh.write(block)

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._fh.close()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of what was written."""
        return self._digest.hexdigest()


def save_bytes(data: bytes, target: Path, limits: Limits, what: str) -> str:
    """Write an in-memory attachment to ``target`` under the file cap; return its SHA-256."""
    writer = HashingWriter(target, limits.max_file_bytes, what)
    try:
        writer.write(data)
    finally:
        writer.close()
    return writer.sha256


def cdr_files(path: Path, limits: Limits) -> Iterator[Path]:
    """The CDR files in a fetched file: itself, or what a ``.gz`` or ``.zip`` holds, one at a time.

    Each unpacked file is written next to ``path`` and deleted once the caller moves on, so the
    disk holds one member at a time, within ``limits.max_unpacked_bytes``.

    Raises:
        FileRefused: A zip bomb, too many members, a broken or encrypted archive, no CDR member.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(_GZIP_MAGIC):
        yield from _gunzip(path, limits)
    elif magic == _ZIP_MAGIC:
        yield from _unzip(path, limits)
    else:
        yield path


def _gunzip(path: Path, limits: Limits) -> Iterator[Path]:
    room = path.parent / "unpacked"
    room.mkdir(exist_ok=True)
    target = room / (path.name.removesuffix(".gz").removesuffix(".GZ") or "file")
    try:
        with gzip.open(path, "rb") as stream:
            _copy_capped(stream, target, limits.max_unpacked_bytes, path.name, 0)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise FileRefused(f"{path.name}: not a readable gzip file ({type(exc).__name__})") from None
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


def _unzip(path: Path, limits: Limits) -> Iterator[Path]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileRefused(f"{path.name}: not a readable zip archive ({type(exc).__name__})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        _check_members(path.name, members, limits)
        wanted = [m for m in members if _is_cdr_member(m.filename)]
        if not wanted:
            raise FileRefused(f"{path.name}: no .csv or .json file in the archive")
        unpacked = 0
        # A directory of their own: a member named like the archive must not overwrite it.
        room = path.parent / "unpacked"
        room.mkdir(exist_ok=True)
        for info in wanted:
            target = room / safe_name(info.filename)
            try:
                with archive.open(info) as stream:
                    unpacked += _copy_capped(stream, target, limits.max_unpacked_bytes, path.name, unpacked)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
                target.unlink(missing_ok=True)  # RuntimeError: encrypted; NotImplementedError: method
                raise FileRefused(
                    f"{path.name}: cannot unpack {info.filename!r} ({type(exc).__name__})"
                ) from None
            try:
                yield target
            finally:
                target.unlink(missing_ok=True)


def _check_members(name: str, members: list[zipfile.ZipInfo], limits: Limits) -> None:
    """Refuse what the archive's own directory already shows to be too much (before unpacking)."""
    if len(members) > limits.max_members:
        raise FileRefused(f"{name}: {len(members)} files in the archive, more than the cap of "
                          f"{limits.max_members} (max_members)")  # fmt: skip
    declared = sum(m.file_size for m in members)
    if declared > limits.max_unpacked_bytes:
        raise FileRefused(_bomb(name, limits))


def _is_cdr_member(name: str) -> bool:
    base = safe_name(name).lower()
    return not base.startswith(".") and any(fnmatch.fnmatch(base, p) for p in CDR_MEMBER_PATTERNS)


def _copy_capped(stream: IO[bytes] | gzip.GzipFile, target: Path, cap: int, name: str, before: int) -> int:
    """Copy ``stream`` to ``target``; refuse once ``before`` + the bytes copied pass ``cap``."""
    written = 0
    with open(target, "wb") as out:
        # Read one byte past the cap at most: a bomb stops there, whatever its headers said.
        while block := stream.read(min(COPY_BLOCK_BYTES, cap - before - written + 1)):
            written += len(block)
            if before + written > cap:
                out.close()
                target.unlink(missing_ok=True)
                raise FileRefused(_bomb(name, Limits(max_unpacked_bytes=cap)))
            out.write(block)
    return written


def _bomb(name: str, limits: Limits) -> str:
    return (f"{name}: unpacks to more than the cap of {limits.max_unpacked_bytes} bytes "
            "(max_unpacked_bytes; a zip bomb or a far larger export than expected)")  # fmt: skip
