"""The warehouse: tables, migrations, the bulk load path with its cursor, sync state and tenant locks.

The only package that writes SQL. Typical use::

    engine = get_engine()              # AUDIAPRO_DATABASE_URL or the embedded SQLite file
    upgrade(engine)                    # alembic upgrade head (idempotent, safe to race)
    with tenant_lock(engine, "acme", wait=False) as locked:
        if locked:
            result = load_batch(engine, tenant="acme", legs=batch.legs, rejects=batch.rejects,
                                run=RunInfo(kind="poll"), cursor=window_end)
"""

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
    claim_import,
    completed_backfill_windows,
    finish_import,
    import_rejects,
    record_backfill_window,
    record_import_chunk,
    rejects_sql,
)
from audiapro.warehouse.load import CommitHook, LoadResult, load_batch, record_failure
from audiapro.warehouse.lock import (
    DEFAULT_LOCK_TIMEOUT_S,
    TenantBusyError,
    login_lock,
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
from audiapro.warehouse.queries import CALL_COLUMNS, legs_per_day, recent_calls, summary_counts
from audiapro.warehouse.reconcile import (
    DayReconciliation,
    read_reconcile_days,
    recent_reconcile_days,
    record_reconcile_day,
    stored_day_keys,
)
from audiapro.warehouse.runs import RunInfo
from audiapro.warehouse.sync import (
    SyncState,
    list_sync_states,
    note_sweep,
    note_traffic,
    read_sync_state,
    weeks_with_traffic,
)
from audiapro.warehouse.tables import (
    backfill_windows,
    calls,
    cdr_legs,
    imported_files,
    ingest_runs,
    login_blocks,
    metadata,
    reconcile_days,
    rejected_rows,
    sync_state,
)
from audiapro.warehouse.upsert import OnConflict

__all__ = [
    "CALL_COLUMNS",
    "DEFAULT_LOCK_TIMEOUT_S",
    "IMPORT_DONE",
    "BatchRow",
    "CommitHook",
    "DayReconciliation",
    "ImportConflictError",
    "ImportedFile",
    "LoadResult",
    "LoginBlock",
    "OnConflict",
    "PendingAnalysis",
    "PreparedLegs",
    "RecordingRef",
    "RunInfo",
    "Spend",
    "SyncState",
    "TenantBusyError",
    "analysis_counts",
    "backfill_windows",
    "begin_write",
    "calls",
    "calls_needing_analysis",
    "cdr_legs",
    "claim_import",
    "clear_login_block",
    "completed_backfill_windows",
    "confirm_batch",
    "confirm_existing",
    "current_revision",
    "finish_batch",
    "finish_import",
    "get_engine",
    "head_revision",
    "import_rejects",
    "imported_files",
    "ingest_runs",
    "legs_per_day",
    "list_login_blocks",
    "list_sync_states",
    "load_batch",
    "login_blocks",
    "login_lock",
    "metadata",
    "note_sweep",
    "note_traffic",
    "open_batches",
    "pending_analyses",
    "prepare_batch",
    "read_calls",
    "read_login_block",
    "read_reconcile_days",
    "read_sync_state",
    "recent_calls",
    "recent_reconcile_days",
    "reconcile_days",
    "record_backfill_window",
    "record_failure",
    "record_import_chunk",
    "record_reconcile_day",
    "recording_refs",
    "rejected_rows",
    "rejects_sql",
    "release_batch",
    "reserve_batch",
    "set_login_block",
    "spent_today",
    "store_pending",
    "store_records",
    "stored_day_keys",
    "summary_counts",
    "sync_state",
    "tenant_lock",
    "tenant_write_lock",
    "upgrade",
    "weeks_with_traffic",
]
