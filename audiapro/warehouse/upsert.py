"""Stage a leg frame and merge it into ``cdr_legs``, counting inserted / updated / unchanged exactly.

Flow (inside the caller's transaction):

1. Staging: a temp table filled by ``COPY`` of text-format data streamed piece by piece (Postgres,
   psycopg2 ``copy_expert``, one COPY per chunk of rows) or one ``executemany`` (SQLite).
2. Merge: ``INSERT ... SELECT ... ON CONFLICT (tenant, leg_key) DO UPDATE ... WHERE <any content
   column IS DISTINCT FROM the staged one>``, so an identical re-read writes nothing and keeps
   ``last_ingest_run_id``/``updated_at``. File imports merge with ``DO NOTHING`` instead
   (``on_conflict="ignore"``): a leg already stored, typically from the API with its AcctId and
   richer fields, is never overwritten by an export row; it counts as unchanged (a duplicate).
3. The inserted or updated legs land in a second temp table ``changed`` with their new and previous
   session; calls are recomputed from it and the counts come from it.

   - Postgres: the merge runs as a data-modifying CTE with ``RETURNING``; a new row is one whose
     ``ingest_run_id`` is this run. The outer query reads ``cdr_legs`` from the statement's snapshot,
     i.e. *before* the merge, which yields the previous session of updated legs.
   - SQLite (no data-modifying CTEs): the same rows are classified by a join just before the merge.
     The transaction holds SQLite's write lock (``BEGIN IMMEDIATE``), so nothing changes in between.

Postgres, batches of :data:`DIRECT_COPY_MIN_ROWS` legs or more (file imports, backfills): first an
optimistic ``COPY`` straight into ``cdr_legs`` inside a savepoint. When no leg of the batch is stored
yet (a first import or backfill) that is the whole merge: every leg is new under either conflict
mode, so the counts are exact (all inserted), and the staging COPY, the ``INSERT ... SELECT`` and
its conflict arbiter are skipped. The unique index on ``(tenant, leg_key)`` still decides: on a
unique violation (a leg already stored: a re-import, an overlap) the savepoint is rolled back and
the batch takes the staged merge above. Small batches (polls, whose lookback re-reads known legs
most of the time) go straight to the staged merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

import sqlalchemy as sa

from audiapro.cdr.schema import LEG_COLUMN_NAMES
from audiapro.warehouse.dialect import POSTGRES, SQLITE, upsert_insert
from audiapro.warehouse.frames import PreparedLegs, TextStream, copy_text_pieces, to_rows
from audiapro.warehouse.tables import (
    LEG_CONTENT_COLUMNS,
    LEG_IDENTITY,
    KeyText,
    UtcDateTime,
    cdr_legs,
    leg_columns,
)

_scratch = sa.MetaData()

#: Temp table holding one batch as loaded. Postgres drops it at commit; SQLite code drops it.
stage = sa.Table(
    "_audiapro_stage_legs", _scratch, *leg_columns(), prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
)

#: Temp table of the legs this batch inserted or changed, with their previous session.
changed = sa.Table(
    "_audiapro_changed_legs",
    _scratch,
    sa.Column("leg_key", KeyText, primary_key=True),
    sa.Column("session", KeyText),
    sa.Column("old_session", KeyText),
    sa.Column("inserted", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

#: What a staged leg does to a stored one with the same key: ``update`` (API sources: the newest
#: read wins) or ``ignore`` (file imports: the stored row stays as it is).
OnConflict = Literal["update", "ignore"]
ON_CONFLICT_MODES: Final = ("update", "ignore")

_BOOKKEEPING: Final = ("ingest_run_id", "last_ingest_run_id", "loaded_at", "updated_at")
#: Rows rendered per COPY, so only one CSV buffer (tens of MB) is held at a time whatever the frame
#: size; all chunks land in the same staging table, in the same transaction.
COPY_CHUNK_ROWS: Final = 200_000
#: Batches of at least this many legs first try the optimistic COPY straight into ``cdr_legs`` (see
#: the module docstring); smaller ones (polls: mostly known legs re-read) never do.
DIRECT_COPY_MIN_ROWS: Final = 1_000
#: The unique constraint whose violation sends a batch from the direct COPY to the staged merge.
_LEG_IDENTITY_CONSTRAINT: Final = "uq_cdr_legs_tenant_leg_key"
#: SQLSTATE of a unique violation.
_UNIQUE_VIOLATION: Final = "23505"


@dataclass(frozen=True)
class MergeCounts:
    """Outcome of merging one batch; ``inserted + updated + unchanged`` is the deduplicated size."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        """Legs written (inserted or updated)."""
        return self.inserted + self.updated


def merge_legs(
    conn: sa.Connection,
    batch: PreparedLegs,
    *,
    tenant: str,
    run_id: int,
    now: datetime,
    on_conflict: OnConflict = "update",
) -> MergeCounts:
    """Stage ``batch`` (from ``prepare_batch``) and merge it into ``cdr_legs``; fills :data:`changed`.

    Args:
        conn: Connection inside the load transaction.
        batch: Prepared legs of ``tenant``, unique by ``leg_key``; may be empty.
        tenant: Tenant of every row.
        run_id: The ``ingest_runs`` row of this load.
        now: Timestamp for ``loaded_at``/``updated_at``.
        on_conflict: ``update`` changed legs, or ``ignore`` legs already stored (counted unchanged).

    Returns:
        Exact counts.
    """
    if on_conflict not in ON_CONFLICT_MODES:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT_MODES}, got {on_conflict!r}")
    frame = batch.frame
    if len(frame) == 0:
        return MergeCounts()
    changed.create(conn)
    direct = conn.dialect.name == POSTGRES and len(frame) >= DIRECT_COPY_MIN_ROWS
    if direct and _copy_new_legs(conn, batch, run_id=run_id, now=now):
        return MergeCounts(inserted=len(frame))
    stage.create(conn)
    if conn.dialect.name == POSTGRES:
        _copy_into_stage(conn, batch)
        # Temp tables have no statistics: without them Postgres guesses their size and either reads
        # the whole stored table for a small poll batch or runs per-row lookups for a million-row
        # import. ANALYZE samples them (milliseconds) so the plan fits the batch.
        if on_conflict == "update":  # only the update merge joins the staged legs to stored ones
            conn.exec_driver_sql(f"ANALYZE {stage.name}")
        conn.execute(
            _merge_returning_changes(conn, tenant=tenant, run_id=run_id, now=now, on_conflict=on_conflict)
        )
        if on_conflict == "update":
            # Plans the orphaned-call delete, which only an update can need (a leg changing
            # session); the calls rebuild probes the session index with an array either way.
            conn.exec_driver_sql(f"ANALYZE {changed.name}")
    elif conn.dialect.name == SQLITE:
        conn.exec_driver_sql(_insert_stage_sql(), to_rows(frame))
        conn.execute(_classify_changes(tenant, only_new=on_conflict == "ignore"))
        conn.execute(_merge(conn, run_id=run_id, now=now, on_conflict=on_conflict))
    else:
        raise NotImplementedError(f"the warehouse supports Postgres and SQLite, not {conn.dialect.name}")
    written, inserted = conn.execute(
        sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((changed.c.inserted, 1), else_=0)), 0)
        )
    ).one()
    return MergeCounts(inserted=inserted, updated=written - inserted, unchanged=len(frame) - written)


def touched_sessions() -> sa.Subquery:
    """Sessions whose call must be recomputed: new and previous sessions of the changed legs."""
    return sa.union(
        sa.select(changed.c.session.label("session")).where(changed.c.session.is_not(None)),
        sa.select(changed.c.old_session).where(changed.c.old_session.is_not(None)),
    ).subquery("touched")


def drop_scratch(conn: sa.Connection) -> None:
    """Drop the temp tables (Postgres already drops them at commit)."""
    if conn.dialect.name != POSTGRES:
        for table in (changed, stage):
            conn.execute(sa.schema.DropTable(table, if_exists=True))


def _copy_into_stage(conn: sa.Connection, batch: PreparedLegs) -> None:
    _copy_legs(conn, batch, f"COPY {stage.name} ({', '.join(LEG_COLUMN_NAMES)}) FROM STDIN")


def _copy_new_legs(conn: sa.Connection, batch: PreparedLegs, *, run_id: int, now: datetime) -> bool:
    """Postgres: COPY ``batch`` straight into ``cdr_legs`` as new legs; fill :data:`changed`.

    Returns:
        ``True`` when every leg was inserted; ``False`` (nothing written) when one is stored already.
    """
    columns = ", ".join([*LEG_COLUMN_NAMES, *_BOOKKEEPING])
    instant = now.astimezone(UTC).isoformat()  # with its offset: read alike whatever the time zone
    # Each COPY line ends with the only unescaped newline of its row, so the bookkeeping columns
    # (constant for the batch) are appended by one replace per piece.
    ending = f"\t{run_id}\t{run_id}\t{instant}\t{instant}\n"
    # The raw COPY raises the driver's own errors (SQLAlchemy never sees the statement).
    integrity_error = conn.dialect.loaded_dbapi.IntegrityError
    savepoint = conn.begin_nested()
    try:
        _copy_legs(conn, batch, f"COPY {cdr_legs.name} ({columns}) FROM STDIN", ending=ending)
    except integrity_error as exc:
        constraint = getattr(getattr(exc, "diag", None), "constraint_name", None)
        if getattr(exc, "pgcode", None) != _UNIQUE_VIOLATION or constraint != _LEG_IDENTITY_CONSTRAINT:
            raise
        savepoint.rollback()
        return False
    savepoint.commit()
    # All legs are new: no previous session. The calls rebuild reads the sessions from here.
    frame = batch.frame
    conn.exec_driver_sql(
        f"INSERT INTO {changed.name} (leg_key, session, old_session, inserted) "
        "SELECT leg_key, session, NULL, true FROM unnest(%(keys)s::text[], %(sessions)s::text[]) "
        "AS legs (leg_key, session)",
        {"keys": frame["leg_key"].tolist(), "sessions": _texts_or_none(frame["session"].tolist())},
    )
    return True


def _texts_or_none(values: list[Any]) -> list[str | None]:
    """Text values with every missing value (``None``, NaN, ``pd.NA``) as ``None`` (SQL NULL)."""
    return [value if isinstance(value, str) else None for value in values]


def _copy_legs(conn: sa.Connection, batch: PreparedLegs, sql: str, *, ending: str | None = None) -> None:
    """Run ``sql`` (a ``COPY ... FROM STDIN`` of the leg columns, then any columns ``ending`` adds).

    Args:
        conn: Connection inside the load transaction (Postgres, psycopg2).
        batch: The legs; their rendered COPY text when present, else rendered here.
        sql: The COPY statement.
        ending: Replaces each line's newline (extra columns that are the same on every row).
    """
    # The raw psycopg2 connection is the one this transaction runs on, so COPY joins the transaction.
    dbapi = cast(Any, conn.connection.dbapi_connection)
    if not hasattr(dbapi, "cursor") or conn.dialect.driver != "psycopg2":
        raise NotImplementedError(f"bulk load needs the psycopg2 driver, not {conn.dialect.driver}")
    with dbapi.cursor() as cursor:
        # The data carries naive UTC timestamps (fast to render); read them as UTC. SET LOCAL ends
        # with this transaction, and every other statement binds tz-aware values anyway.
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        if batch.copy_text is not None:
            cursor.copy_expert(sql, TextStream(_with_ending(iter(batch.copy_text), ending)))
            return
        frame = batch.frame
        for start in range(0, len(frame), COPY_CHUNK_ROWS):
            # Streamed piece by piece: the server ingests one piece while the next is rendered.
            pieces = copy_text_pieces(frame.iloc[start : start + COPY_CHUNK_ROWS])
            cursor.copy_expert(sql, TextStream(_with_ending(pieces, ending)))


def _with_ending(pieces: Iterator[str], ending: str | None) -> Iterator[str]:
    """The COPY text pieces with each line's newline replaced by ``ending`` (unchanged if ``None``)."""
    if ending is None:
        return pieces
    return (piece.replace("\n", ending) for piece in pieces)


def _insert_stage_sql() -> str:
    placeholders = ", ".join("?" for _ in LEG_COLUMN_NAMES)
    return f"INSERT INTO {stage.name} ({', '.join(LEG_COLUMN_NAMES)}) VALUES ({placeholders})"


def _merge(conn: sa.Connection, *, run_id: int, now: datetime, on_conflict: OnConflict) -> Any:
    """The ``INSERT ... ON CONFLICT DO UPDATE ... WHERE distinct`` (or ``DO NOTHING``) into ``cdr_legs``."""
    source = sa.select(
        *(stage.c[name] for name in LEG_COLUMN_NAMES),
        sa.literal(run_id, sa.BigInteger),
        sa.literal(run_id, sa.BigInteger),
        sa.literal(now, UtcDateTime),
        sa.literal(now, UtcDateTime),
    )
    if conn.dialect.name == SQLITE:
        # SQLite's grammar needs a WHERE before ON CONFLICT in INSERT ... SELECT to parse it.
        source = source.where(sa.true())
    insert = upsert_insert(conn, cdr_legs).from_select([*LEG_COLUMN_NAMES, *_BOOKKEEPING], source)
    if on_conflict == "ignore":
        return insert.on_conflict_do_nothing(index_elements=list(LEG_IDENTITY))
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=list(LEG_IDENTITY),
        set_={
            **{name: excluded[name] for name in LEG_CONTENT_COLUMNS},
            "last_ingest_run_id": excluded.last_ingest_run_id,
            "updated_at": excluded.updated_at,
        },
        where=sa.or_(*(cdr_legs.c[name].is_distinct_from(excluded[name]) for name in LEG_CONTENT_COLUMNS)),
    )


def _merge_returning_changes(
    conn: sa.Connection, *, tenant: str, run_id: int, now: datetime, on_conflict: OnConflict
) -> sa.Insert:
    """Postgres: merge and record the written legs (with their pre-merge session) in one statement."""
    merged = (
        _merge(conn, run_id=run_id, now=now, on_conflict=on_conflict)
        .returning(
            cdr_legs.c.leg_key,
            cdr_legs.c.session,
            (cdr_legs.c.ingest_run_id == run_id).label("inserted"),
        )
        .cte("merged")
    )
    columns = ["leg_key", "session", "old_session", "inserted"]
    if on_conflict == "ignore":
        # DO NOTHING returns inserted rows only, and those had no previous version: no lookup.
        new_only = sa.select(merged.c.leg_key, merged.c.session, sa.null(), merged.c.inserted)
        return sa.insert(changed).from_select(columns, new_only)
    before = cdr_legs.alias("before_merge")
    rows = sa.select(merged.c.leg_key, merged.c.session, before.c.session, merged.c.inserted).select_from(
        merged.outerjoin(before, sa.and_(before.c.tenant == tenant, before.c.leg_key == merged.c.leg_key))
    )
    return sa.insert(changed).from_select(columns, rows)


def _classify_changes(tenant: str, *, only_new: bool) -> sa.Insert:
    """SQLite: record the staged legs the merge will insert (or, unless ``only_new``, change)."""
    current = cdr_legs
    differs = sa.or_(*(current.c[name].is_distinct_from(stage.c[name]) for name in LEG_CONTENT_COLUMNS))
    is_new = current.c.id.is_(None)
    rows = (
        sa.select(stage.c.leg_key, stage.c.session, current.c.session, is_new)
        .select_from(
            stage.outerjoin(
                current, sa.and_(current.c.tenant == tenant, current.c.leg_key == stage.c.leg_key)
            )
        )
        .where(is_new if only_new else sa.or_(is_new, differs))
    )
    return sa.insert(changed).from_select(["leg_key", "session", "old_session", "inserted"], rows)
