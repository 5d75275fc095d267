"""The warehouse: tables, migrations, the bulk load path with its cursor, sync state and tenant locks.

The only package that writes SQL. Typical use::

    engine = get_engine()              # AUDIAPRO_DATABASE_URL or the embedded SQLite file
    upgrade(engine)                    # alembic upgrade head (idempotent, safe to race)
    with tenant_lock(engine, "acme", wait=False) as locked:
        if locked:
            result = load_batch(engine, tenant="acme", legs=batch.legs, rejects=batch.rejects,
                                run=RunInfo(kind="poll"), cursor=window_end)
"""

from audiapro.warehouse.engine import begin_write, get_engine
from audiapro.warehouse.load import LoadResult, load_batch, record_failure
from audiapro.warehouse.lock import tenant_lock
from audiapro.warehouse.migrate import current_revision, head_revision, upgrade
from audiapro.warehouse.queries import summary_counts
from audiapro.warehouse.runs import RunInfo
from audiapro.warehouse.sync import SyncState, list_sync_states, read_sync_state
from audiapro.warehouse.tables import calls, cdr_legs, ingest_runs, metadata, rejected_rows, sync_state

__all__ = [
    "LoadResult",
    "RunInfo",
    "SyncState",
    "begin_write",
    "calls",
    "cdr_legs",
    "current_revision",
    "get_engine",
    "head_revision",
    "ingest_runs",
    "list_sync_states",
    "load_batch",
    "metadata",
    "read_sync_state",
    "record_failure",
    "rejected_rows",
    "summary_counts",
    "sync_state",
    "tenant_lock",
    "upgrade",
]
