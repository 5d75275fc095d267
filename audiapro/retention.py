"""Retention and purge: how long recordings, transcripts and raw CDR JSON are kept, and removing a
tenant's data on request.

* Recordings: the analysis downloads a call's audio into a temporary folder and deletes it once
  read. A tenant with ``recording_retention_days`` > 0 keeps a copy under
  ``$AUDIAPRO_HOME/recordings/<tenant>/`` (one WAV per call) for that many days.
* Transcripts and raw CDR JSON: kept forever unless the tenant sets a retention period; older ones
  are cleared (set to NULL), the calls, legs and analyses stay.
* :func:`cleanup_tenant` enforces all three; the daily ``cleanup-retention`` flow runs it per tenant.
* :func:`purge_tenant` removes a tenant's data (``audiapro tenant purge``), all of it or what lies
  before a date, batch by batch; a rerun removes nothing.

Plain Python: the warehouse writes the SQL, the caller passes ``now``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote

from audiapro import settings
from audiapro.home import audiapro_home
from audiapro.tenants import TenantSettings
from audiapro.warehouse import (
    clear_raw_cdrs,
    clear_transcripts,
    count_purge,
    purge_rows,
    sessions_started_before,
    tenant_write_lock,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

#: Subdirectory of the home holding kept recordings, one folder per tenant.
RECORDINGS_SUBDIR: Final = "recordings"
RECORDING_SUFFIX: Final = ".wav"
#: How long a purge waits for the tenant's write lock (a poll or import holding it finishes first).
PURGE_LOCK_WAIT_S: Final = 300.0
SECONDS_PER_DAY: Final = 86_400

#: Keeps one call's joined recording: ``keep(session, wav_bytes)``.
RecordingKeeper = Callable[[str, bytes], None]


def recordings_root() -> Path:
    """Where kept recordings live: ``$AUDIAPRO_HOME/recordings``."""
    return audiapro_home() / RECORDINGS_SUBDIR


def _tenant_dir(tenant: str, root: Path | None) -> Path:
    return (root or recordings_root()) / tenant


def recording_path(tenant: str, session: str, root: Path | None = None) -> Path:
    """The file a call's recording is kept in (the session, percent-encoded, names it)."""
    return _tenant_dir(tenant, root) / (quote(session, safe="") + RECORDING_SUFFIX)


def _session_of(path: Path) -> str:
    return unquote(path.name.removesuffix(RECORDING_SUFFIX))


def recording_keeper(tenant: str, days: int, root: Path | None = None) -> RecordingKeeper | None:
    """What the analysis calls with each downloaded recording: None when the tenant keeps none.

    Args:
        tenant: Tenant key.
        days: The tenant's ``recording_retention_days`` (0: keep nothing).
        root: Recordings folder (default :func:`recordings_root`).
    """
    if days <= 0:
        return None

    def keep(session: str, audio: bytes) -> None:
        path = recording_path(tenant, session, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a crash never leaves a truncated recording under the final name.
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(audio)
        partial.replace(path)

    return keep


@dataclass(frozen=True)
class DiskUsage:
    """Files and their bytes."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: DiskUsage) -> DiskUsage:
        return DiskUsage(self.files + other.files, self.bytes + other.bytes)


def _recording_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file())


def recording_usage(root: Path | None = None) -> dict[str, DiskUsage]:
    """Disk used by kept recordings, per tenant folder (sorted; empty when nothing is kept)."""
    base = root or recordings_root()
    if not base.is_dir():
        return {}
    usage = {}
    for folder in sorted(path for path in base.iterdir() if path.is_dir()):
        files = _recording_files(folder)
        usage[folder.name] = DiskUsage(len(files), sum(path.stat().st_size for path in files))
    return usage


def _delete(paths: list[Path]) -> DiskUsage:
    freed = DiskUsage()
    for path in paths:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # removed meanwhile (a concurrent cleanup): nothing freed here
            continue
        freed += DiskUsage(1, size)
    return freed


def expire_recordings(tenant: str, days: int, now: datetime, root: Path | None = None) -> DiskUsage:
    """Delete the tenant's kept recordings written more than ``days`` days before ``now``.

    With ``days`` 0 every file goes (the tenant keeps none: files left by an earlier setting, or a
    partial write of a crash).
    """
    cutoff = (now - timedelta(days=days)).timestamp()
    files = _recording_files(_tenant_dir(tenant, root))
    return _delete([path for path in files if days <= 0 or path.stat().st_mtime < cutoff])


@dataclass(frozen=True)
class RetentionCounts:
    """What one tenant's cleanup removed."""

    tenant: str
    files_deleted: int = 0
    bytes_freed: int = 0
    transcripts_cleared: int = 0
    raw_rows_cleared: int = 0

    def as_row(self) -> dict[str, Any]:
        """The row of the cleanup's table artifact: every field, in order."""
        return asdict(self)


def cleanup_tenant(
    engine: sa.Engine,
    tenant: TenantSettings,
    now: datetime,
    *,
    root: Path | None = None,
    batch_rows: int = settings.RETENTION_BATCH_ROWS,
) -> RetentionCounts:
    """Enforce a tenant's retention periods once: expired recordings, transcripts, raw CDR JSON.

    Args:
        engine: The warehouse.
        tenant: The tenant's settings (its three retention periods).
        now: The cleanup's clock.
        root: Recordings folder (default :func:`recordings_root`).
        batch_rows: Rows changed per transaction.

    Returns:
        Counts of what was removed (all zero on a rerun with the same ``now``).
    """
    freed = expire_recordings(tenant.name, tenant.recording_retention_days, now, root)
    transcripts = raw = 0
    if tenant.transcript_retention_days > 0:
        cutoff = now - timedelta(days=tenant.transcript_retention_days)
        transcripts = clear_transcripts(engine, tenant.name, cutoff, batch_rows=batch_rows)
    if tenant.raw_cdr_retention_days > 0:
        cutoff = now - timedelta(days=tenant.raw_cdr_retention_days)
        raw = clear_raw_cdrs(engine, tenant.name, cutoff, batch_rows=batch_rows)
    return RetentionCounts(tenant.name, freed.files, freed.bytes, transcripts, raw)


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or would remove): rows per table, recording files and bytes."""

    tenant: str
    before: datetime | None
    rows: dict[str, int] = field(default_factory=dict)
    files: DiskUsage = DiskUsage()

    @property
    def empty(self) -> bool:
        """Nothing to remove (a rerun of a finished purge)."""
        return not any(self.rows.values()) and self.files.files == 0


def _purge_files(engine: sa.Engine, tenant: str, before: datetime | None, root: Path | None) -> list[Path]:
    """The tenant's kept recordings a purge removes: all, or those of calls that started before
    ``before`` and those written before it."""
    files = _recording_files(_tenant_dir(tenant, root))
    if before is None:
        return files
    old = sessions_started_before(engine, tenant, [_session_of(path) for path in files], before)
    cutoff = before.timestamp()
    return [path for path in files if _session_of(path) in old or path.stat().st_mtime < cutoff]


def preview_purge(
    engine: sa.Engine, tenant: str, before: datetime | None, *, root: Path | None = None
) -> PurgeReport:
    """What :func:`purge_tenant` would remove now, without removing anything."""
    paths = _purge_files(engine, tenant, before, root)
    usage = DiskUsage(len(paths), sum(path.stat().st_size for path in paths))
    return PurgeReport(tenant, before, count_purge(engine, tenant, before), usage)


def purge_tenant(
    engine: sa.Engine,
    tenant: str,
    before: datetime | None = None,
    *,
    root: Path | None = None,
    batch_rows: int = settings.RETENTION_BATCH_ROWS,
) -> PurgeReport:
    """Remove a tenant's data: files first, then rows table by table, ``batch_rows`` per transaction.

    Without ``before`` everything of the tenant goes, its sync state too: the poll cursor is reset,
    so an enabled tenant would be polled as a new one (disable it first for an offboarding). With
    ``before`` only calls that started before it (with their legs and analyses), legs that started
    before it and rows quarantined before it; the cursor and run history stay, so the poll does not
    read the removed period again. Runs under the tenant's write lock, so no load interleaves.

    Args:
        engine: The warehouse.
        tenant: Tenant key.
        before: Only data before this instant; None: all of it.
        root: Recordings folder (default :func:`recordings_root`).
        batch_rows: Rows deleted per transaction.

    Returns:
        What was removed (empty on a rerun).

    Raises:
        TenantBusyError: A load held the tenant's lock for ``PURGE_LOCK_WAIT_S``.
    """
    with tenant_write_lock(engine, tenant, timeout_s=PURGE_LOCK_WAIT_S):
        freed = _delete(_purge_files(engine, tenant, before, root))
        rows = purge_rows(engine, tenant, before, batch_rows=batch_rows)
    folder = _tenant_dir(tenant, root)
    if before is None and folder.is_dir() and not any(folder.iterdir()):
        os.rmdir(folder)
    return PurgeReport(tenant, before, rows, freed)
