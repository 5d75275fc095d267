"""The warehouse: tables, migrations, the bulk load path with its cursor, sync state and tenant locks.

The only package that writes SQL. Typical use::

    engine = get_engine()              # AUDIAPRO_DATABASE_URL or the embedded SQLite file
    upgrade(engine)                    # alembic upgrade head (idempotent, safe to race)
    with tenant_lock(engine, "acme", wait=False) as locked:
        if locked:
            result = load_batch(engine, tenant="acme", legs=batch.legs, rejects=batch.rejects,
                                run=RunInfo(kind="poll"), cursor=window_end)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from audiapro.warehouse.analyses import (
        PendingAnalysis,
        RecordingRef,
        Spend,
        analysis_counts,
        calls_needing_analysis,
        pending_analyses,
        read_calls,
        recording_refs,
        spent_today,
    )
    from audiapro.warehouse.analysis_batches import (
        BatchRow,
        confirm_batch,
        finish_batch,
        open_batches,
        release_batch,
        reserve_batch,
    )
    from audiapro.warehouse.analysis_store import confirm_existing, store_pending, store_records
    from audiapro.warehouse.engine import begin_write, get_engine
    from audiapro.warehouse.frames import PreparedLegs, prepare_batch
    from audiapro.warehouse.history import (
        IMPORT_DONE,
        ImportConflictError,
        ImportedFile,
        KnownChunk,
        claim_import,
        completed_backfill_windows,
        finish_import,
        import_rejects,
        known_chunk,
        record_backfill_window,
        record_chunk_digest,
        record_import_chunk,
        record_known_chunk,
        rejects_sql,
    )
    from audiapro.warehouse.insights import (
        StoredDay,
        acknowledge_alert,
        latest_run_id,
        list_alerts,
        read_breakdowns,
        read_call_legs,
        read_callbacks,
        read_daily_kpis,
        read_insight_settings,
        stale_days,
        store_day,
        upsert_alerts,
        write_insight_settings,
    )
    from audiapro.warehouse.load import CommitHook, LoadResult, load_batch, record_failure
    from audiapro.warehouse.lock import (
        DEFAULT_LOCK_TIMEOUT_S,
        TenantBusyError,
        login_lock,
        login_lock_session,
        tenant_lock,
        tenant_write_lock,
    )
    from audiapro.warehouse.login_blocks import (
        LoginBlock,
        clear_login_block,
        list_login_blocks,
        read_login_block,
        set_login_block,
    )
    from audiapro.warehouse.migrate import current_revision, head_revision, upgrade
    from audiapro.warehouse.pickups import (
        FILE_DONE,
        FILE_IMPORTED,
        FILE_REFUSED,
        FILE_WAITING,
        MAIL_FAILED,
        MAIL_IMPORTED,
        MAIL_REFUSED,
        MAIL_SKIPPED,
        FileRecord,
        MailMark,
        MailRecord,
        RemoteFile,
        note_sftp_files,
        pickup_totals,
        read_mail_mark,
        read_sftp_files,
        record_mail_message,
        set_sftp_file,
    )
    from audiapro.warehouse.queries import CALL_COLUMNS, legs_per_day, recent_calls, summary_counts
    from audiapro.warehouse.reconcile import (
        DayReconciliation,
        read_reconcile_days,
        recent_reconcile_days,
        record_reconcile_day,
        stored_day_keys,
    )
    from audiapro.warehouse.retention import (
        clear_raw_cdrs,
        clear_transcripts,
        count_purge,
        purge_rows,
        sessions_started_before,
    )
    from audiapro.warehouse.runs import RunInfo
    from audiapro.warehouse.sync import (
        SyncState,
        commit_unchanged_window,
        list_sync_states,
        note_sweep,
        note_traffic,
        read_sync_state,
        weeks_with_traffic,
    )
    from audiapro.warehouse.tables import (
        backfill_windows,
        callback_queue,
        calls,
        cdr_legs,
        daily_breakdowns,
        daily_kpis,
        fraud_alerts,
        imported_chunks,
        imported_files,
        ingest_runs,
        insight_settings,
        login_blocks,
        mail_messages,
        metadata,
        reconcile_days,
        rejected_rows,
        sftp_files,
        sync_state,
    )
    from audiapro.warehouse.upsert import OnConflict

#: Where each name of this package lives. Importing the package imports none of them: a command that
#: only reads sync state must not pay for pandas (``analyses``, ``frames``) on every call.
_HOMES: dict[str, str] = {
    "BatchRow": "audiapro.warehouse.analysis_batches",
    "CALL_COLUMNS": "audiapro.warehouse.queries",
    "CommitHook": "audiapro.warehouse.load",
    "DEFAULT_LOCK_TIMEOUT_S": "audiapro.warehouse.lock",
    "DayReconciliation": "audiapro.warehouse.reconcile",
    "IMPORT_DONE": "audiapro.warehouse.history",
    "ImportConflictError": "audiapro.warehouse.history",
    "ImportedFile": "audiapro.warehouse.history",
    "LoadResult": "audiapro.warehouse.load",
    "LoginBlock": "audiapro.warehouse.login_blocks",
    "OnConflict": "audiapro.warehouse.upsert",
    "PendingAnalysis": "audiapro.warehouse.analyses",
    "PreparedLegs": "audiapro.warehouse.frames",
    "RecordingRef": "audiapro.warehouse.analyses",
    "RunInfo": "audiapro.warehouse.runs",
    "Spend": "audiapro.warehouse.analyses",
    "SyncState": "audiapro.warehouse.sync",
    "TenantBusyError": "audiapro.warehouse.lock",
    "analysis_counts": "audiapro.warehouse.analyses",
    "backfill_windows": "audiapro.warehouse.tables",
    "begin_write": "audiapro.warehouse.engine",
    "calls": "audiapro.warehouse.tables",
    "calls_needing_analysis": "audiapro.warehouse.analyses",
    "cdr_legs": "audiapro.warehouse.tables",
    "claim_import": "audiapro.warehouse.history",
    "clear_raw_cdrs": "audiapro.warehouse.retention",
    "clear_transcripts": "audiapro.warehouse.retention",
    "count_purge": "audiapro.warehouse.retention",
    "purge_rows": "audiapro.warehouse.retention",
    "sessions_started_before": "audiapro.warehouse.retention",
    "clear_login_block": "audiapro.warehouse.login_blocks",
    "completed_backfill_windows": "audiapro.warehouse.history",
    "confirm_batch": "audiapro.warehouse.analysis_batches",
    "confirm_existing": "audiapro.warehouse.analysis_store",
    "current_revision": "audiapro.warehouse.migrate",
    "finish_batch": "audiapro.warehouse.analysis_batches",
    "finish_import": "audiapro.warehouse.history",
    "get_engine": "audiapro.warehouse.engine",
    "head_revision": "audiapro.warehouse.migrate",
    "import_rejects": "audiapro.warehouse.history",
    "imported_files": "audiapro.warehouse.tables",
    "ingest_runs": "audiapro.warehouse.tables",
    "list_login_blocks": "audiapro.warehouse.login_blocks",
    "list_sync_states": "audiapro.warehouse.sync",
    "legs_per_day": "audiapro.warehouse.queries",
    "load_batch": "audiapro.warehouse.load",
    "login_blocks": "audiapro.warehouse.tables",
    "login_lock": "audiapro.warehouse.lock",
    "metadata": "audiapro.warehouse.tables",
    "note_sweep": "audiapro.warehouse.sync",
    "note_traffic": "audiapro.warehouse.sync",
    "open_batches": "audiapro.warehouse.analysis_batches",
    "pending_analyses": "audiapro.warehouse.analyses",
    "prepare_batch": "audiapro.warehouse.frames",
    "read_calls": "audiapro.warehouse.analyses",
    "read_login_block": "audiapro.warehouse.login_blocks",
    "read_reconcile_days": "audiapro.warehouse.reconcile",
    "read_sync_state": "audiapro.warehouse.sync",
    "recent_reconcile_days": "audiapro.warehouse.reconcile",
    "reconcile_days": "audiapro.warehouse.tables",
    "record_backfill_window": "audiapro.warehouse.history",
    "record_failure": "audiapro.warehouse.load",
    "record_import_chunk": "audiapro.warehouse.history",
    "record_reconcile_day": "audiapro.warehouse.reconcile",
    "recent_calls": "audiapro.warehouse.queries",
    "recording_refs": "audiapro.warehouse.analyses",
    "rejected_rows": "audiapro.warehouse.tables",
    "rejects_sql": "audiapro.warehouse.history",
    "release_batch": "audiapro.warehouse.analysis_batches",
    "reserve_batch": "audiapro.warehouse.analysis_batches",
    "set_login_block": "audiapro.warehouse.login_blocks",
    "spent_today": "audiapro.warehouse.analyses",
    "store_pending": "audiapro.warehouse.analysis_store",
    "store_records": "audiapro.warehouse.analysis_store",
    "stored_day_keys": "audiapro.warehouse.reconcile",
    "summary_counts": "audiapro.warehouse.queries",
    "sync_state": "audiapro.warehouse.tables",
    "tenant_lock": "audiapro.warehouse.lock",
    "tenant_write_lock": "audiapro.warehouse.lock",
    "upgrade": "audiapro.warehouse.migrate",
    "weeks_with_traffic": "audiapro.warehouse.sync",
    "commit_unchanged_window": "audiapro.warehouse.sync",
    "login_lock_session": "audiapro.warehouse.lock",
    "KnownChunk": "audiapro.warehouse.history",
    "known_chunk": "audiapro.warehouse.history",
    "record_chunk_digest": "audiapro.warehouse.history",
    "record_known_chunk": "audiapro.warehouse.history",
    "imported_chunks": "audiapro.warehouse.tables",
    "FILE_DONE": "audiapro.warehouse.pickups",
    "FILE_IMPORTED": "audiapro.warehouse.pickups",
    "FILE_REFUSED": "audiapro.warehouse.pickups",
    "FILE_WAITING": "audiapro.warehouse.pickups",
    "MAIL_FAILED": "audiapro.warehouse.pickups",
    "MAIL_IMPORTED": "audiapro.warehouse.pickups",
    "MAIL_REFUSED": "audiapro.warehouse.pickups",
    "MAIL_SKIPPED": "audiapro.warehouse.pickups",
    "FileRecord": "audiapro.warehouse.pickups",
    "MailMark": "audiapro.warehouse.pickups",
    "MailRecord": "audiapro.warehouse.pickups",
    "RemoteFile": "audiapro.warehouse.pickups",
    "mail_messages": "audiapro.warehouse.tables",
    "note_sftp_files": "audiapro.warehouse.pickups",
    "pickup_totals": "audiapro.warehouse.pickups",
    "read_mail_mark": "audiapro.warehouse.pickups",
    "read_sftp_files": "audiapro.warehouse.pickups",
    "record_mail_message": "audiapro.warehouse.pickups",
    "set_sftp_file": "audiapro.warehouse.pickups",
    "sftp_files": "audiapro.warehouse.tables",
    # Insights and toll-fraud alerts (revision 0009).
    "StoredDay": "audiapro.warehouse.insights",
    "acknowledge_alert": "audiapro.warehouse.insights",
    "latest_run_id": "audiapro.warehouse.insights",
    "list_alerts": "audiapro.warehouse.insights",
    "read_breakdowns": "audiapro.warehouse.insights",
    "read_call_legs": "audiapro.warehouse.insights",
    "read_callbacks": "audiapro.warehouse.insights",
    "read_daily_kpis": "audiapro.warehouse.insights",
    "read_insight_settings": "audiapro.warehouse.insights",
    "stale_days": "audiapro.warehouse.insights",
    "store_day": "audiapro.warehouse.insights",
    "upsert_alerts": "audiapro.warehouse.insights",
    "write_insight_settings": "audiapro.warehouse.insights",
    "callback_queue": "audiapro.warehouse.tables",
    "daily_breakdowns": "audiapro.warehouse.tables",
    "daily_kpis": "audiapro.warehouse.tables",
    "fraud_alerts": "audiapro.warehouse.tables",
    "insight_settings": "audiapro.warehouse.tables",
}


class _Package(types.ModuleType):
    """This package's module type: two tables keep their names when their namesake module loads.

    ``calls`` and ``login_blocks`` name both a table exported here and a submodule. Importing a
    submodule binds its name on the package, which would replace the table by the module once
    ``audiapro.warehouse.calls`` is first imported (lazily now). These properties keep the table.
    """

    @property
    def calls(self) -> sa.Table:
        """The ``calls`` table (``audiapro.warehouse.tables.calls``)."""
        return importlib.import_module("audiapro.warehouse.tables").calls

    @calls.setter
    def calls(self, value: object) -> None:
        """Ignore the import system binding the submodule ``audiapro.warehouse.calls`` here."""

    @property
    def login_blocks(self) -> sa.Table:
        """The ``login_blocks`` table (``audiapro.warehouse.tables.login_blocks``)."""
        return importlib.import_module("audiapro.warehouse.tables").login_blocks

    @login_blocks.setter
    def login_blocks(self, value: object) -> None:
        """Ignore the import system binding the submodule ``audiapro.warehouse.login_blocks`` here."""


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "CALL_COLUMNS",
    "DEFAULT_LOCK_TIMEOUT_S",
    "FILE_DONE",
    "FILE_IMPORTED",
    "FILE_REFUSED",
    "FILE_WAITING",
    "IMPORT_DONE",
    "MAIL_FAILED",
    "MAIL_IMPORTED",
    "MAIL_REFUSED",
    "MAIL_SKIPPED",
    "BatchRow",
    "CommitHook",
    "DayReconciliation",
    "FileRecord",
    "ImportConflictError",
    "ImportedFile",
    "KnownChunk",
    "LoadResult",
    "LoginBlock",
    "MailMark",
    "MailRecord",
    "OnConflict",
    "PendingAnalysis",
    "PreparedLegs",
    "RecordingRef",
    "RemoteFile",
    "RunInfo",
    "Spend",
    "StoredDay",
    "SyncState",
    "TenantBusyError",
    "acknowledge_alert",
    "analysis_counts",
    "backfill_windows",
    "begin_write",
    "callback_queue",
    "calls",
    "calls_needing_analysis",
    "cdr_legs",
    "claim_import",
    "clear_login_block",
    "clear_raw_cdrs",
    "clear_transcripts",
    "commit_unchanged_window",
    "completed_backfill_windows",
    "confirm_batch",
    "confirm_existing",
    "count_purge",
    "current_revision",
    "daily_breakdowns",
    "daily_kpis",
    "finish_batch",
    "finish_import",
    "fraud_alerts",
    "get_engine",
    "head_revision",
    "import_rejects",
    "imported_chunks",
    "imported_files",
    "ingest_runs",
    "insight_settings",
    "known_chunk",
    "latest_run_id",
    "legs_per_day",
    "list_alerts",
    "list_login_blocks",
    "list_sync_states",
    "load_batch",
    "login_blocks",
    "login_lock",
    "login_lock_session",
    "mail_messages",
    "metadata",
    "note_sftp_files",
    "note_sweep",
    "note_traffic",
    "open_batches",
    "pending_analyses",
    "pickup_totals",
    "prepare_batch",
    "purge_rows",
    "read_breakdowns",
    "read_call_legs",
    "read_callbacks",
    "read_calls",
    "read_daily_kpis",
    "read_insight_settings",
    "read_login_block",
    "read_mail_mark",
    "read_reconcile_days",
    "read_sftp_files",
    "read_sync_state",
    "recent_calls",
    "recent_reconcile_days",
    "reconcile_days",
    "record_backfill_window",
    "record_chunk_digest",
    "record_failure",
    "record_import_chunk",
    "record_known_chunk",
    "record_mail_message",
    "record_reconcile_day",
    "recording_refs",
    "rejected_rows",
    "rejects_sql",
    "release_batch",
    "reserve_batch",
    "sessions_started_before",
    "set_login_block",
    "set_sftp_file",
    "sftp_files",
    "spent_today",
    "stale_days",
    "store_day",
    "store_pending",
    "store_records",
    "stored_day_keys",
    "summary_counts",
    "sync_state",
    "tenant_lock",
    "tenant_write_lock",
    "upgrade",
    "upsert_alerts",
    "weeks_with_traffic",
    "write_insight_settings",
]
