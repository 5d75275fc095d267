"""Warehouse tables (SQLAlchemy Core): the one definition the load path and alembic's env.py share.

Migrations are frozen snapshots written out by hand (``migrations/versions``); a test checks that the
migrated schema matches these definitions, so a change here without a migration fails CI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from audiapro.cdr.schema import LEG_COLUMNS

#: Deterministic constraint names, so later migrations (and SQLite batch mode) can address them.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: Run kinds written by the flows; free text in the table so new kinds need no migration.
RUN_KINDS: Final = ("poll", "backfill", "import", "reconcile")
RUN_SUCCEEDED: Final = "succeeded"
RUN_FAILED: Final = "failed"

#: The disposition that makes a leg (and its call) answered.
ANSWERED: Final = "ANSWERED"

#: Surrogate keys: BIGINT on Postgres; on SQLite only "INTEGER PRIMARY KEY" aliases the rowid and
#: autoincrements, so the variant is required there.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A UTC instant: ``timestamptz`` on Postgres, a fixed-width text timestamp on SQLite.

    Binding converts to UTC (naive values are refused: a wall-clock time without a zone is a bug
    upstream), so SQLite's text values sort and compare chronologically. Results are always
    tz-aware UTC datetimes on both back ends.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and normalize aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the warehouse stores UTC instants only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return tz-aware UTC (SQLite hands back naive values that were stored as UTC)."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"unexpected timestamp value {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: SQL type per logical type of ``audiapro.cdr.schema.LEG_COLUMNS``. JSON stays text on both back
#: ends: byte-exact round trips, identical change detection, and ``raw::jsonb`` still works ad hoc.
LEG_SQL_TYPES: Final[dict[str, type[sa.types.TypeEngine[Any]] | sa.types.TypeEngine[Any]]] = {
    "str": sa.Text,
    "utc": UtcDateTime,
    "int": sa.Integer,
    "json": sa.Text,
}

#: Leg columns that identify a row; every other leg column is compared to detect a real change.
LEG_IDENTITY: Final = ("tenant", "leg_key")
LEG_CONTENT_COLUMNS: Final = tuple(name for name in LEG_COLUMNS if name not in LEG_IDENTITY)

#: Text of a key (leg key, session): compared as bytes on Postgres (``COLLATE "C"``, migration 0011),
#: a ``memcmp`` instead of the C library's ``strcoll`` on every index insert, sort and probe. SQLite
#: compares text as bytes anyway. Every column compared with a key column (temp tables included) must
#: use it too: on Postgres a comparison of columns of different collations can use neither's index.
KeyText: Final = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
#: Leg columns holding keys (typed :data:`KeyText`).
LEG_KEY_TEXT_COLUMNS: Final = ("leg_key", "session")


def leg_columns() -> list[sa.Column[Any]]:
    """Fresh Column objects for the canonical leg columns (for ``cdr_legs`` and staging tables)."""
    return [
        sa.Column(
            name,
            KeyText if name in LEG_KEY_TEXT_COLUMNS else LEG_SQL_TYPES[kind],
            nullable=name not in LEG_IDENTITY,
        )
        for name, kind in LEG_COLUMNS.items()
    ]


def _run_fk(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, IdType, sa.ForeignKey("ingest_runs.id"), nullable=nullable)


def _surrogate_id() -> sa.Column[Any]:
    """The ``id`` key of a table whose rows have no natural key of their own."""
    return sa.Column("id", IdType, primary_key=True, autoincrement=True)


def _counters(*names: str, column_type: type[sa.types.TypeEngine[Any]] = sa.Integer) -> list[sa.Column[Any]]:
    """NOT NULL counts that start at zero, in the order given (integers unless ``column_type`` says)."""
    return [sa.Column(name, column_type, nullable=False, server_default="0") for name in names]


def _provenance(created: str) -> list[sa.Column[Any]]:
    """Where a merged row comes from: the run that inserted it (at ``created``) and the run that last
    changed it (at ``updated_at``); ``cdr_legs`` and ``calls`` are loaded by the same runs.

    No foreign keys: triggers check these references once per statement on Postgres (a foreign key
    checks each written row; see migration 0010), refusing the same writes.
    """
    return [
        sa.Column("ingest_run_id", IdType, nullable=False),
        sa.Column("last_ingest_run_id", IdType, nullable=False),
        sa.Column(created, UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ]


ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("window_start", UtcDateTime),
    sa.Column("window_end", UtcDateTime),
    sa.Column("source_ref", sa.Text),  # request window or file hash
    sa.Column("flow_run_id", sa.Text),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    *_counters("fetched", "inserted", "updated", "unchanged", "rejected"),
    sa.Column("error", sa.Text),
    sa.Index("ix_ingest_runs_tenant_started_at", "tenant", "started_at"),
)

cdr_legs = sa.Table(
    "cdr_legs",
    metadata,
    _surrogate_id(),
    *leg_columns(),
    *_provenance("loaded_at"),
    sa.UniqueConstraint("tenant", "leg_key"),
    sa.Index("ix_cdr_legs_tenant_start_at", "tenant", "start_at"),
    sa.Index("ix_cdr_legs_tenant_session", "tenant", "session"),
    # No AcctId index (dropped in 0010): no query looks a leg up by AcctId, and every API leg paid for it.
)

calls = sa.Table(
    "calls",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("session", KeyText, nullable=False),
    # Computed from the session's call legs: ForkCDR bookkeeping rows left out (see warehouse.calls).
    sa.Column("started_at", UtcDateTime),  # earliest leg start
    sa.Column("ended_at", UtcDateTime),  # latest leg end
    sa.Column("direction", sa.Text),  # of the first leg
    sa.Column("answered", sa.Boolean, nullable=False),  # any leg ANSWERED
    sa.Column("answered_by", sa.Text),  # answered leg with the longest billsec
    sa.Column("leg_count", sa.Integer, nullable=False),
    sa.Column("talk_s", sa.Integer, nullable=False),  # union of the answered legs' talk intervals
    sa.Column("duration_s", sa.Integer),  # ended_at - started_at
    sa.Column("recording_count", sa.Integer, nullable=False),  # distinct recording files
    sa.Column("src_e164", sa.Text),  # first leg's numbers
    sa.Column("src_raw", sa.Text),
    sa.Column("dst_raw", sa.Text),
    *_provenance("created_at"),
    sa.UniqueConstraint("tenant", "session"),
    sa.Index("ix_calls_tenant_started_at", "tenant", "started_at"),
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cursor_at", UtcDateTime),  # live poll watermark; only moves forward
    sa.Column("last_success_at", UtcDateTime),
    sa.Column("last_attempt_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    *_counters("consecutive_failures"),
    _run_fk("last_run_id", nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # revision 0003: the long-call sweep's last run, and unexpectedly empty poll windows in a row
    sa.Column("last_sweep_at", UtcDateTime),
    *_counters("empty_ticks"),
)

rejected_rows = sa.Table(
    "rejected_rows",
    metadata,
    _surrogate_id(),
    _run_fk("ingest_run_id", nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("position", sa.Integer),  # 1-based line or record number in the source
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text),  # JSON of the raw leg, or the raw line when it was not parseable
    sa.Column("created_at", UtcDateTime, nullable=False),
    # Hash of (source, reason, raw): a bad leg re-read by every poll's lookback is stored once.
    sa.Column("fingerprint", sa.Text),
    sa.Index("ix_rejected_rows_ingest_run_id", "ingest_run_id"),
    sa.Index("uq_rejected_rows_tenant_fingerprint", "tenant", "fingerprint", unique=True),
)

# --- revision 0002: history (backfill windows, imported files) and analysis -----------------------

#: Backfill windows that loaded completely: a rerun after a crash skips them (unless forced).
backfill_windows = sa.Table(
    "backfill_windows",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # done
    _run_fk("ingest_run_id", nullable=True),
    sa.Column("flow_run_id", sa.Text),
    sa.Column("completed_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "window_start", "window_end"),
)

#: Imported CDR files by content hash: the same file imported twice adds nothing; a crashed import
#: resumes after its last committed chunk.
imported_files = sa.Table(
    "imported_files",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # loading | done | failed
    *_counters("chunks_done", "rows_read", "inserted", "duplicates", "rejected"),
    sa.Column("error", sa.Text),
    sa.Column("flow_run_id", sa.Text),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.UniqueConstraint("tenant", "sha256"),
)

#: One analysis per (call, recording content, model, prompt version): ``analysis_key`` is unique, so
#: reruns and retries never pay twice. Skipped calls get a row with ``skip_reason``.
call_analyses = sa.Table(
    "call_analyses",
    metadata,
    _surrogate_id(),
    sa.Column("analysis_key", sa.Text, nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("session", KeyText, nullable=False),
    sa.Column("recording_sha256", sa.Text),
    sa.Column("analyzer", sa.Text, nullable=False),  # openai | offline
    sa.Column("model", sa.Text),
    sa.Column("transcription_model", sa.Text),
    sa.Column("prompt_version", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # succeeded | failed | skipped | pending_batch
    sa.Column("skip_reason", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("transcript", sa.Text),  # JSON, redacted unless the tenant's privacy policy is off
    sa.Column("insights", sa.Text),  # JSON
    sa.Column("flags", sa.Text),  # JSON (offline flags)
    *_counters("audio_seconds", column_type=sa.Float),
    *_counters("input_tokens", "output_tokens"),
    *_counters("cost_usd", column_type=sa.Float),
    *_counters("attempts"),
    sa.Column("batch_id", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Revision 0005: redaction counts by category (JSON; NULL: not redacted) and the original
    # transcript encrypted with the tenant's key (privacy policy redact_keep_encrypted only).
    sa.Column("redactions", sa.Text),
    sa.Column("transcript_encrypted", sa.Text),
    sa.UniqueConstraint("analysis_key"),
    sa.Index("ix_call_analyses_tenant_session", "tenant", "session"),
    sa.Index("ix_call_analyses_tenant_created_at", "tenant", "created_at"),
    sa.Index("ix_call_analyses_batch_id", "batch_id"),
)

#: Batch API jobs for the text-analysis step of backfills; collected by a later run.
analysis_batches = sa.Table(
    "analysis_batches",
    metadata,
    sa.Column("batch_id", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # submitted | collected | failed
    sa.Column("request_count", sa.Integer, nullable=False),
    sa.Column("submitted_at", UtcDateTime, nullable=False),
    sa.Column("collected_at", UtcDateTime),
    sa.Column("error", sa.Text),
)

# --- revision 0003: PBX login blocks --------------------------------------------------------------

#: A tenant whose PBX refused a login (wrong password, ban, unknown user, no permission): no path
#: (poll, backfill, reconcile, recordings) tries again before ``blocked_until``, because every failed
#: login counts towards the PBX's IP ban, which on CloudUCM may be the customer's office NAT.
login_blocks = sa.Table(
    "login_blocks",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("blocked_until", UtcDateTime, nullable=False),
    sa.Column("status", sa.Integer),  # the UCM status of the failed login, e.g. -37
    sa.Column("reason", sa.Text, nullable=False),  # one line, no secrets
    sa.Column("failed_at", UtcDateTime, nullable=False),
)

# --- revision 0004: completeness per tenant and PBX-local day ---------------------------------------

#: The latest reconciliation of each tenant's PBX-local day against its PBX (``audiapro.reconcile``).
reconcile_days = sa.Table(
    "reconcile_days",
    metadata,
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the PBX's local calendar day
    sa.Column("pbx_legs", sa.Integer, nullable=False),  # legs the PBX has for the day (readable ones)
    sa.Column("malformed", sa.Integer, nullable=False, server_default="0"),  # unreadable cdrapi entries
    sa.Column("malformed_legs", sa.Integer, nullable=False, server_default="0"),  # ...that stand for a leg
    sa.Column("stored_legs", sa.Integer, nullable=False),  # warehouse legs of the day before this run
    sa.Column("missing_before", sa.Integer, nullable=False),  # PBX legs not stored before this run
    sa.Column("loaded_now", sa.Integer, nullable=False),  # legs this run inserted
    sa.Column("rejected", sa.Integer, nullable=False),  # PBX legs quarantined while loading
    sa.Column("phantom_legs", sa.Integer, nullable=False),  # stored legs of the day the PBX does not have
    sa.Column("matched_legs", sa.Integer, nullable=False),  # PBX legs stored, after loading
    sa.Column("completeness", sa.Float, nullable=False),  # matched / (pbx_legs + malformed_legs)
    sa.Column("checked_at", UtcDateTime, nullable=False),
    sa.Column("flow_run_id", sa.Text),
    _run_fk("ingest_run_id", nullable=True),  # the load of the missing legs, if any
    sa.PrimaryKeyConstraint("tenant", "day"),
)

# --- revision 0006: chunks of imported files, by content ---------------------------------------------

#: Content digests of committed import chunks (the raw rows as read, with the tenant's time zone and
#: region they were normalized with). A chunk of a later file with a known digest stored all its legs
#: then, so it is counted (duplicates, rejects) without being normalized or merged again. A purge of
#: the tenant's legs deletes the tenant's digests first.
imported_chunks = sa.Table(
    "imported_chunks",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),  # file rows: legs and rejects
    sa.Column("legs", sa.Integer, nullable=False),  # legs after in-chunk deduplication
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "digest"),
)

# --- revision 0007: file pickup ledgers (SFTP drops, e-mailed exports) ------------------------------

#: Every file an SFTP pickup source listed, one row per (path, size, mtime) seen: a file that changes
#: is a new row (fetched again; its content hash decides whether anything is new). Status ``waiting``
#: (not yet stable), ``imported`` (in the warehouse; post-action pending), ``done`` (post-action
#: done too), ``refused`` (permanently unusable: too big, a zip bomb, not a CDR file).
sftp_files = sa.Table(
    "sftp_files",
    metadata,
    sa.Column("source", sa.Text, nullable=False),  # the pickup source's block name
    sa.Column("remote_path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime", sa.BigInteger, nullable=False),  # seconds since the epoch, as the server says
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text),  # of the file as fetched (the archive for a zip)
    sa.Column("detail", sa.Text),  # one line: why refused, or what the import did
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("source", "remote_path", "size", "mtime"),
)

#: Every message an IMAP pickup source looked at, by (mailbox, UIDVALIDITY, UID): the IMAP identity of
#: a message (a UID means nothing under another UIDVALIDITY). Status ``imported``, ``skipped`` (sender
#: not allowed, no matching attachment), ``refused`` (an attachment is unusable), ``failed`` (retried
#: by the next run).
mail_messages = sa.Table(
    "mail_messages",
    metadata,
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("mailbox", sa.Text, nullable=False),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    *_counters("attachments"),
    sa.Column("detail", sa.Text),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("source", "mailbox", "uidvalidity", "uid"),
)

# --- revision 0008: bodies pushed by a PBX (CDR real-time output) -----------------------------------

#: Push body states: waiting for the loader, its legs loaded, unparseable (kept with the reason), or
#: kept only (the tenant's push runs in capture mode).
PUSH_PENDING: Final = "pending"
PUSH_LOADED: Final = "loaded"
PUSH_QUARANTINED: Final = "quarantined"
PUSH_CAPTURED: Final = "captured"

#: Every body a PBX pushed, stored verbatim before it is parsed: a format nobody foresaw is never lost,
#: and a quarantined body can be parsed again once the parser learned it (``audiapro push reparse``).
push_bodies = sa.Table(
    "push_bodies",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("peer", sa.Text),  # the sender's address as the server saw it
    sa.Column("content_type", sa.Text),
    sa.Column("headers", sa.Text, nullable=False),  # JSON; Authorization and Cookie left out
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | loaded | quarantined | captured
    sa.Column("reason", sa.Text),  # why it was quarantined
    sa.Column("body_format", sa.Text),  # json | form | xml, once parsed
    *_counters("legs", "inserted"),
    _run_fk("ingest_run_id", nullable=True),  # the load that took its legs
    sa.Column("processed_at", UtcDateTime),
    sa.Index("ix_push_bodies_status_tenant_id", "status", "tenant", "id"),
    sa.Index("ix_push_bodies_tenant_sha256", "tenant", "sha256"),
)

# --- revision 0009: insights (daily KPIs, callback worklist) and toll-fraud alerts -----------------

#: Per tenant and PBX-local day: the headline KPIs (``audiapro.insights.kpis``), replaced whole when
#: the day is recomputed (late legs), so a rerun writes the same row.
daily_kpis = sa.Table(
    "daily_kpis",
    metadata,
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the PBX's local calendar day
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("inbound", sa.Integer, nullable=False),
    sa.Column("outbound", sa.Integer, nullable=False),
    sa.Column("internal", sa.Integer, nullable=False),
    sa.Column("external", sa.Integer, nullable=False),  # trunk to trunk
    sa.Column("answered", sa.Integer, nullable=False),
    sa.Column("missed", sa.Integer, nullable=False),  # inbound calls no person answered
    sa.Column("asr", sa.Float),  # answered / calls, percent (NULL without calls)
    sa.Column("acd_s", sa.Float),  # talk seconds / answered calls (NULL without answered calls)
    sa.Column("talk_s", sa.Integer, nullable=False),
    sa.Column("busiest_hour", sa.Integer),  # local hour 0-23 with the most call starts
    sa.Column("busiest_hour_calls", sa.Integer, nullable=False),
    sa.Column("peak_concurrent", sa.Integer, nullable=False),  # sweep over call intervals
    sa.Column("peak_concurrent_outbound", sa.Integer, nullable=False),  # calls leaving over a trunk
    sa.Column("after_hours_external", sa.Integer, nullable=False),  # outside the business hours
    sa.Column("international", sa.Integer, nullable=False),  # calls to another country
    sa.Column("callbacks_open", sa.Integer, nullable=False),  # the day's callback worklist length
    # The newest ingest run when the day was read: a call changed by a later run makes the day stale.
    sa.Column("through_run_id", sa.BigInteger),
    sa.Column("computed_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant", "day"),
)

#: Per tenant, day, dimension (hour, disposition, trunk, country, extension, repeat_caller) and key:
#: the day's figures broken down, for the views ``insights_by_*``.
daily_breakdowns = sa.Table(
    "daily_breakdowns",
    metadata,
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("dimension", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("answered", sa.Integer, nullable=False),
    sa.Column("missed", sa.Integer, nullable=False),
    sa.Column("talk_s", sa.Integer, nullable=False),
    sa.Column("avg_ring_s", sa.Float),  # extensions: mean seconds from ringing to answer
    sa.PrimaryKeyConstraint("tenant", "day", "dimension", "key"),
)

#: The missed-call callback worklist of each tenant-day (rule in ``audiapro.insights.kpis``).
callback_queue = sa.Table(
    "callback_queue",
    metadata,
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # local day of the last missed call
    sa.Column("number", sa.Text, nullable=False),  # the caller's E.164 number
    sa.Column("missed_calls", sa.Integer, nullable=False),
    sa.Column("first_missed_at", UtcDateTime, nullable=False),
    sa.Column("last_missed_at", UtcDateTime, nullable=False),
    sa.Column("last_session", sa.Text, nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant", "day", "number"),
)

#: Suspected toll fraud (read-only: alerts, never blocking), one row per (tenant, rule, subject,
#: window): re-evaluating the same calls updates the row instead of adding one.
fraud_alerts = sa.Table(
    "fraud_alerts",
    metadata,
    _surrogate_id(),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),  # warning | critical
    sa.Column("subject", sa.Text, nullable=False),  # ext:1001, trunk:A->B, prefix:+4470, number:..
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON: counts, destinations, sessions, cost
    sa.Column("estimated_cost", sa.Float),  # when the tenant has a rate table
    sa.Column("detected_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("acknowledged_by", sa.Text),
    sa.UniqueConstraint("tenant", "rule", "subject", "window_start"),
    sa.Index("ix_fraud_alerts_tenant_detected_at", "tenant", "detected_at"),
)

#: Per-tenant insight and fraud settings (JSON of ``audiapro.insights.settings.InsightSettings``
#: fields that differ from the defaults).
insight_settings = sa.Table(
    "insight_settings",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
