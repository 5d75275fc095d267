"""SFTP pickup: CDR files dropped in a directory on an SFTP server, imported exactly once.

::

    connect (pinned host key) --> list directory, match glob --> ledger: new (path, size, mtime)?
      --> ready? (unchanged for settle_seconds across listings, or a <name><marker> file exists)
      --> stream to the spool with SHA-256 --> stat again (still the same file?) --> import_file
      --> ledger "imported" --> post-action (leave / move to done/ / delete) --> ledger "done"

* The ledger keys a file by (path, size, mtime), never by an mtime high-water mark: an uploader that
  keeps old mtimes (``sftp -p``, ``rsync -t``) or rewrites a file in place is still seen.
* Nothing is done to the remote file before the warehouse committed its import, and a crash between
  the import and the ledger update only costs a second fetch: the import's (tenant, SHA-256) claim
  makes it a no-op.
* The server's host key must equal the pinned one; an unknown or changed key is refused before any
  credential is sent.

Uses asyncssh (client and, in the tests, server); :func:`pickup_sftp` is synchronous and runs the
session on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import logging
import posixpath
import stat
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

import asyncssh

from audiapro.errors import describe_error
from audiapro.pickup.core import ImportTarget, PickupReport, ServerLogin, import_fetched
from audiapro.pickup.errors import (
    FileRefused,
    HostKeyMismatch,
    PickupError,
    SourceAuthError,
    SourceConfigError,
    SourceUnreachable,
)
from audiapro.pickup.files import HashingWriter, Limits, safe_name, spool_slot
from audiapro.warehouse.pickups import (
    FILE_DONE,
    FILE_IMPORTED,
    FILE_REFUSED,
    FileRecord,
    RemoteFile,
    note_sftp_files,
    read_sftp_files,
    set_sftp_file,
)

log = logging.getLogger("audiapro.pickup.sftp")

PostAction = Literal["leave", "move", "delete"]
POST_ACTIONS: Final = ("leave", "move", "delete")
#: Subdirectory (of the pickup directory) files are moved to after their import.
DONE_DIRECTORY: Final = "done"
DEFAULT_PORT: Final = 22
DEFAULT_SETTLE_SECONDS: Final = 60
DEFAULT_CONNECT_TIMEOUT_S: Final = 15.0
#: Bytes asked for per read; asyncssh splits a large read into parallel requests.
READ_BLOCK_BYTES: Final = 4 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class SftpSettings(ServerLogin):
    """One SFTP pickup source (the block's fields, with secrets as plain strings; never logged).

    Attributes:
        host: Server name or address.
        port: SSH port.
        user: Login name.
        password: Password (empty when a private key is used).
        private_key: Private key in OpenSSH or PEM text (empty when a password is used).
        host_key: The server's public host key, one OpenSSH line (``ssh-ed25519 AAAA...``): pinned.
        directory: Directory holding the files.
        pattern: Glob the file names must match (``*.csv``).
        post_action: After the import: ``leave``, ``move`` (to ``done/``) or ``delete``.
        settle_seconds: A file is complete once its size and mtime stayed the same this long
            across listings (ignored when ``done_marker`` is set).
        done_marker: Suffix of the marker the uploader writes when a file is complete
            (``.done``: ``a.csv`` is fetched once ``a.csv.done`` exists); empty: settle time.
        connect_timeout_s: How long connecting may take before the server counts as unreachable.
    """

    host: str
    user: str
    host_key: str
    port: int = DEFAULT_PORT
    password: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)
    directory: str = "."
    pattern: str = "*.csv"
    post_action: PostAction = "leave"
    settle_seconds: int = DEFAULT_SETTLE_SECONDS
    done_marker: str = ""
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S


def pickup_sftp(
    source: str, config: SftpSettings, target: ImportTarget, *, now: datetime, dry_run: bool = False
) -> PickupReport:
    """Fetch and import the source's complete, not yet imported files.

    Args:
        source: The source's name (ledger key).
        config: Connection and pickup settings.
        target: Warehouse, tenant and caps.
        now: The time of this listing (settle decisions are made against it).
        dry_run: Only list and say what would be fetched (``would_import``); no ledger writes, no
            downloads, nothing done on the server.

    Raises:
        PickupError: Unreachable server, refused login, host key not the pinned one, no such
            directory (one line, no secret).
    """
    return run_async(_pickup(source, config, target, now=now, dry_run=dry_run))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop, in a thread of its own when this one already has a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def fetch_host_key(host: str, port: int = DEFAULT_PORT, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> str:
    """The server's host key as one OpenSSH line (to pin it), without logging in.

    Raises:
        SourceUnreachable: No SSH server answered.
    """

    async def fetch() -> str:
        try:
            key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout_s)
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise _unreachable(host, port, exc) from None
        if key is None:
            raise SourceUnreachable(f"SFTP server {host}:{port} presented no host key")
        return key.export_public_key("openssh").decode().strip()

    return run_async(fetch())


def host_key_fingerprint(host_key: str) -> str:
    """``SHA256:...`` fingerprint of an OpenSSH public key line (what ``ssh-keygen -l`` prints).

    Raises:
        SourceConfigError: Not a public key.
    """
    return str(_pinned_key(host_key).get_fingerprint("sha256"))


async def _pickup(
    source: str, config: SftpSettings, target: ImportTarget, *, now: datetime, dry_run: bool
) -> PickupReport:
    report = PickupReport(source=source, kind="sftp", tenant=target.tenant.name)
    try:
        async with _connect(config) as conn, conn.start_sftp_client() as sftp:
            await _session(sftp, source, config, target, report, now=now, dry_run=dry_run)
    except asyncssh.DisconnectError as exc:  # ConnectionLost too
        # Files finished before the drop stay finished; the retry (transient) picks up the rest.
        raise SourceUnreachable(
            f"SFTP server {config.host}:{config.port} dropped the connection ({type(exc).__name__}): "
            "check the server and the network; the next run goes on where this one stopped"
        ) from None
    return report


async def _session(sftp: asyncssh.SFTPClient, source: str, config: SftpSettings, target: ImportTarget,
                   report: PickupReport, *, now: datetime, dry_run: bool) -> None:  # fmt: skip
    """List, decide and take the files of one connection (see the module docstring)."""
    files, names = await _listing(sftp, config)
    ledger = read_sftp_files(target.engine, source, [f.path for f in files])
    if not dry_run:
        unseen = [f for f in files if f not in ledger]
        note_sftp_files(target.engine, source=source, tenant=target.tenant.name, files=unseen, now=now)
    for file in files:
        record = ledger.get(file)
        if record is not None and record.status in (FILE_DONE, FILE_REFUSED):
            continue
        if record is not None and record.status == FILE_IMPORTED:
            if not dry_run:  # imported before a crash or a failed post-action: finish the job
                await _after_import(sftp, source, config, target, file, now)
            continue
        report.seen += 1
        if not _ready(file, record, names, config, now):
            report.waiting += 1
            report.note(posixpath.basename(file.path), "waiting")
            if dry_run and record is None and not config.done_marker:
                report.would_import.append(f"{file.path} (once unchanged for {config.settle_seconds} s)")
            continue
        if dry_run:
            report.would_import.append(file.path)
            continue
        await _take(sftp, source, config, target, file, report, now)


def _ready(file: RemoteFile, record: FileRecord | None, names: set[str], config: SftpSettings,
           now: datetime) -> bool:  # fmt: skip
    """Whether the upload of ``file`` is complete (see the module docstring)."""
    if config.done_marker:
        return posixpath.basename(file.path) + config.done_marker in names
    if config.settle_seconds <= 0:
        return True
    # Same (path, size, mtime) listed before, at least settle_seconds ago: nobody is writing it.
    return record is not None and (now - record.first_seen_at).total_seconds() >= config.settle_seconds


async def _take(sftp: asyncssh.SFTPClient, source: str, config: SftpSettings, target: ImportTarget,
                file: RemoteFile, report: PickupReport, now: datetime) -> None:  # fmt: skip
    """Fetch, check, import and record one ready file; a refused file is recorded, not raised."""
    name = posixpath.basename(file.path)
    with spool_slot(source) as slot:
        try:
            try:
                sha256 = await _download(sftp, file, slot / safe_name(name), target.limits)
            except asyncssh.SFTPNoSuchFile:
                report.note(name, "gone", "removed from the server before it was fetched")
                return
            if await _changed(sftp, file):
                report.waiting += 1  # written to while we read it: the next listing has its new key
                report.note(name, "waiting", "changed while fetched")
                return
            detail = await asyncio.to_thread(import_fetched, slot / safe_name(name), target, report)
        except FileRefused as exc:
            report.refuse(name, str(exc))
            set_sftp_file(target.engine, source=source, tenant=target.tenant.name, file=file,
                          status=FILE_REFUSED, now=now, detail=str(exc))  # fmt: skip
            return
    set_sftp_file(target.engine, source=source, tenant=target.tenant.name, file=file, status=FILE_IMPORTED,
                  now=now, sha256=sha256, detail=detail)  # fmt: skip
    await _after_import(sftp, source, config, target, file, now)


async def _download(sftp: asyncssh.SFTPClient, file: RemoteFile, local: Path, limits: Limits) -> str:
    """Stream ``file`` into ``local`` under the size cap; return its SHA-256."""
    if file.size > limits.max_file_bytes:
        raise FileRefused(f"{file.path}: {file.size} bytes, more than the cap of {limits.max_file_bytes} "
                          "bytes (max_file_bytes)")  # fmt: skip
    writer = HashingWriter(local, limits.max_file_bytes, file.path)
    try:
        async with sftp.open(file.path, "rb", encoding=None) as remote:
            while block := await remote.read(READ_BLOCK_BYTES):
                writer.write(cast(bytes, block))  # "rb" without an encoding reads bytes
    finally:
        writer.close()
    return writer.sha256


async def _changed(sftp: asyncssh.SFTPClient, file: RemoteFile) -> bool:
    """Whether the file's size or mtime differ from the listing's now (an upload still running)."""
    try:
        attrs = await sftp.stat(file.path)
    except asyncssh.SFTPNoSuchFile:
        return True
    return (attrs.size, int(attrs.mtime or 0)) != (file.size, file.mtime)


async def _after_import(sftp: asyncssh.SFTPClient, source: str, config: SftpSettings, target: ImportTarget,
                        file: RemoteFile, now: datetime) -> None:  # fmt: skip
    """The post-action, then ledger ``done``; a failure leaves the file ``imported`` for the next run."""
    try:
        await _post_action(sftp, config, file.path)
    except (asyncssh.Error, OSError) as exc:
        log.warning("%s: %s of %s failed (retried next run): %s", source, config.post_action, file.path,
                    describe_error(exc))  # fmt: skip
        return
    set_sftp_file(
        target.engine, source=source, tenant=target.tenant.name, file=file, status=FILE_DONE, now=now
    )


async def _post_action(sftp: asyncssh.SFTPClient, config: SftpSettings, path: str) -> None:
    marker = path + config.done_marker if config.done_marker else ""
    if config.post_action == "delete":
        for doomed in (path, marker):
            if doomed and await sftp.exists(doomed):
                await sftp.remove(doomed)
    elif config.post_action == "move":
        done = posixpath.join(posixpath.dirname(path), DONE_DIRECTORY)
        if not await sftp.isdir(done):
            await sftp.mkdir(done)
        for moving in (path, marker):
            if moving and await sftp.exists(moving):
                await _replace(sftp, moving, posixpath.join(done, posixpath.basename(moving)))


async def _replace(sftp: asyncssh.SFTPClient, source: str, destination: str) -> None:
    """Rename, replacing an earlier file of the same name in ``done/``."""
    try:
        await sftp.posix_rename(source, destination)
    except asyncssh.SFTPOpUnsupported:
        if await sftp.exists(destination):
            await sftp.remove(destination)
        await sftp.rename(source, destination)


async def _listing(sftp: asyncssh.SFTPClient, config: SftpSettings) -> tuple[list[RemoteFile], set[str]]:
    """The regular files matching the glob (sorted by path), and every name in the directory."""
    try:
        entries = await sftp.readdir(config.directory)
    except asyncssh.SFTPNoSuchFile:
        raise SourceConfigError(
            f"SFTP {config.where}: no directory {config.directory!r}: check directory"
        ) from None
    except asyncssh.SFTPPermissionDenied:
        raise SourceConfigError(
            f"SFTP {config.where}: may not list {config.directory!r}: check directory"
        ) from None
    names = {str(entry.filename) for entry in entries}
    files = [
        RemoteFile(
            posixpath.join(config.directory, str(e.filename)), int(e.attrs.size or 0), int(e.attrs.mtime or 0)
        )
        for e in entries
        if _is_file(e) and fnmatch.fnmatchcase(str(e.filename), config.pattern)
    ]
    return sorted(files, key=lambda f: f.path), names


def _is_file(entry: asyncssh.SFTPName) -> bool:
    if entry.filename in (".", ".."):
        return False
    if entry.attrs.type is not None and entry.attrs.type != asyncssh.FILEXFER_TYPE_UNKNOWN:
        return bool(entry.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR)
    return entry.attrs.permissions is not None and stat.S_ISREG(entry.attrs.permissions)


class _connect:
    """An SSH connection with the host key pinned; errors become one-line :class:`PickupError`."""

    def __init__(self, config: SftpSettings) -> None:
        self._config = config
        self._conn: asyncssh.SSHClientConnection | None = None

    async def __aenter__(self) -> asyncssh.SSHClientConnection:
        config = self._config
        if not config.password and not config.private_key:
            raise SourceConfigError(f"SFTP {config.where}: no password and no private key configured")
        options: dict[str, Any] = {
            "username": config.user,
            "known_hosts": ([_pinned_key(config.host_key, config.where)], [], []),
            "password": config.password or None,
            "client_keys": [_private_key(config.private_key, config.where)] if config.private_key else [],
            "agent_path": None,  # only the configured credentials, never the worker's own SSH agent
            "config": None,  # nor its ~/.ssh/config
            "preferred_auth": "publickey,password" if config.private_key else "password",
            "login_timeout": config.connect_timeout_s,
        }
        self._conn = await self._open(options)
        return self._conn

    async def _open(self, options: dict[str, Any]) -> asyncssh.SSHClientConnection:
        config = self._config
        connecting: Awaitable[asyncssh.SSHClientConnection] = asyncssh.connect(
            config.host, config.port, **options
        )
        try:
            return await asyncio.wait_for(connecting, config.connect_timeout_s)
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyMismatch(
                f"SFTP server {config.host}:{config.port} presented a host key that is not the pinned one: "
                f"check with the server's owner whether its key changed (ssh-keyscan -p {config.port} "
                f"{config.host}) and pin the new one (`audiapro source add sftp ... --trust-host-key`)"
            ) from None
        except asyncssh.PermissionDenied:
            raise SourceAuthError(
                f"SFTP server {config.host}:{config.port} refused the login of user {config.user!r}: "
                "check the user and its password or private key"
            ) from None
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise _unreachable(config.host, config.port, exc) from None

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()


def _unreachable(host: str, port: int, exc: BaseException) -> PickupError:
    return SourceUnreachable(
        f"SFTP server {host}:{port} unreachable ({type(exc).__name__}): check the host name, the port "
        "and that the server (and any firewall) lets this machine in"
    )


def _pinned_key(host_key: str, where: str = "") -> asyncssh.SSHKey:
    if not host_key.strip():
        raise HostKeyMismatch(
            f"SFTP {where}: no host key pinned, so the server cannot be verified: pin it with "
            "`audiapro source add sftp ... --trust-host-key` (shows its fingerprint) or --host-key"
        )
    try:
        return asyncssh.import_public_key(host_key.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise SourceConfigError(
            f"SFTP {where}: host_key is not an OpenSSH public key line (e.g. 'ssh-ed25519 AAAA...')"
        ) from None


def _private_key(text: str, where: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError):
        # The key's text is never part of the message.
        raise SourceConfigError(
            f"SFTP {where}: private_key is not a readable, unencrypted private key"
        ) from None
