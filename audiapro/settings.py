"""Project-wide constants. Per-tenant settings live in the CloudUCM block; these are defaults."""

from __future__ import annotations

from audiapro.home import WAREHOUSE_FILE, audiapro_home

#: Where the embedded defaults keep their state (SQLite warehouse, spool, stack run files; see
#: ``audiapro.home``): ``$AUDIAPRO_HOME``, default ``~/.audiapro``, always absolute, so a command
#: run from another directory finds the same warehouse.
STATE_DIR = audiapro_home()

#: Embedded zero-setup warehouse. Postgres is the production target (AUDIAPRO_DATABASE_URL or a block).
DEFAULT_DATABASE_URL = f"sqlite:///{STATE_DIR / WAREHOUSE_FILE}"
DATABASE_URL_ENV = "AUDIAPRO_DATABASE_URL"

#: The import-cdr-file flow reads files only inside its import roots (its ``path`` parameter comes from
#: the Prefect UI and API): this spool directory, where upload pages and pickup sources put files...
IMPORT_SPOOL_DIR = STATE_DIR / "spool"
#: ...and the directories listed in this variable (``os.pathsep``-separated, ``:`` on Linux) in the
#: environment where the flows run (the worker's).
IMPORT_ROOTS_ENV = "AUDIAPRO_IMPORT_ROOTS"

#: cdrapi returns at most 1000 records per request (UCM CDR API guide).
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 1000
#: Hard stop for one window's paging loop; a window that needs more is split by the caller.
DEFAULT_MAX_PAGES = 200

#: Poll window = [cursor - lookback, now - safety]. The lookback must exceed the longest call,
#: because the PBX writes a leg's CDR only when the leg ends and filters on its start time.
DEFAULT_LOOKBACK_SECONDS = 2 * 3600
#: No margin by default: a CDR written after a tick (the call ended late, the PBX wrote it late, its
#: clock runs ahead) started inside the next tick's lookback, which re-reads it. A margin would only
#: add its seconds to every short call's freshness (docs/operations.md "Freshness").
DEFAULT_SAFETY_SECONDS = 0
#: First poll of a new tenant starts this far back (older history is a backfill's job).
DEFAULT_INITIAL_HISTORY_SECONDS = 24 * 3600
#: A poll window longer than this (after an outage, a pause, a first tick) is caught up in pieces of
#: at most this span, oldest first, the cursor committed after each.
POLL_PIECE_SECONDS = 6 * 3600
#: Most legs one piece may hold in memory; a fuller piece is split in halves (about 5 KB per leg).
POLL_PIECE_MAX_LEGS = 20_000
#: Pieces one tick loads at most; the next tick continues from the committed cursor.
POLL_MAX_PIECES_PER_TICK = 40
#: Calls longer than the lookback are never in a poll window (the PBX filters on start but writes
#: the CDR at the end). A sweep re-reads legs by their END time over this span, idempotently.
DEFAULT_SWEEP_SPAN_SECONDS = 24 * 3600
DEFAULT_SWEEP_EVERY_SECONDS = 3600
#: Empty poll windows in a row, where earlier weeks had traffic, before a tenant counts as silent.
DEFAULT_SILENT_TICKS = 3
#: Weeks of history looked at to decide whether an empty window is unexpected, and how many of
#: them must have had traffic in the same hours of the week.
TRAFFIC_HISTORY_WEEKS = 4
TRAFFIC_EXPECTED_WEEKS = 2

DEFAULT_PHONE_REGION = "US"

#: API sessions one tenant's PBX may hold for us at once (poll ticks and backfill windows share
#: them through the Prefect global concurrency limit ``ucm:<tenant>``). The PBX's own limit is not
#: documented; it answers surplus sessions with "operating too frequently" (-45).
DEFAULT_PBX_API_SESSIONS = 3

#: Retention (``audiapro.retention``, enforced by the daily cleanup-retention flow). Recordings:
#: days a downloaded recording is kept on disk after analysis (0: deleted once analysed).
#: Transcripts and raw CDR JSON: days they are kept (0: kept forever); older ones are cleared,
#: the calls, legs and analyses themselves stay.
DEFAULT_RECORDING_RETENTION_DAYS = 0
DEFAULT_TRANSCRIPT_RETENTION_DAYS = 0
DEFAULT_RAW_CDR_RETENTION_DAYS = 0
#: Rows one retention or purge statement touches: one transaction each, so a long purge never
#: holds locks on a large part of a table and a crash loses at most one batch of progress.
RETENTION_BATCH_ROWS = 5_000
