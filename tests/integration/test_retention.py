"""Retention and purge on both warehouses: only what the policy says goes, nothing else; reruns are no-ops.

Two tenants each get an old call (40 days before the pinned clock) and a recent one (1 day before),
with legs, a quarantined row, an analysis with a transcript and sync state; the other tenant must
come through every cleanup and purge of ``acme`` untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.retention import (
    DiskUsage,
    RetentionCounts,
    cleanup_tenant,
    preview_purge,
    purge_tenant,
    recording_keeper,
    recording_path,
    recording_usage,
)
from audiapro.tenants import TenantSettings
from audiapro.warehouse import (
    RunInfo,
    calls,
    cdr_legs,
    ingest_runs,
    load_batch,
    metadata,
    rejected_rows,
    sync_state,
)
from audiapro.warehouse.tables import call_analyses
from tests.integration.warehouse_support import T0, leg, make_legs, make_rejects

NOW = T0
OLD, NEW = NOW - timedelta(days=40), NOW - timedelta(days=1)
TENANTS = ("acme", "other")
#: Stands for a Fernet token of the original transcript (redact_keep_encrypted).
ENCRYPTED = "gAAAA-encrypted-original"
TRANSCRIPT = '{"segments": [{"speaker": "agent", "text": "card four one one one"}]}'
WAV = b"RIFF-fake-wav-bytes"


def seed(engine: sa.Engine, tenant: str) -> None:
    """An old and a recent call of ``tenant`` (two legs each), a quarantined row of each age, one
    analysis per call with a transcript, and the tenant's cursor."""
    legs = [
        leg(f"{tenant}-{age}-{n}", session=f"{age}-call", start=start + timedelta(seconds=n), tenant=tenant)
        for age, start in (("old", OLD), ("new", NEW))
        for n in (0, 1)
    ]
    rejects = make_rejects(("poll", 1, "bad time", '{"old": 1}'), ("poll", 2, "bad time", '{"new": 2}'))
    load_batch(
        engine, tenant=tenant, legs=make_legs(legs), rejects=rejects, run=RunInfo(kind="poll"), cursor=NOW
    )
    with engine.begin() as conn:
        # Quarantine times come from the wall clock: pin them to the two ages.
        for position, when in ((1, OLD), (2, NEW)):
            conn.execute(
                sa.update(rejected_rows)
                .where(rejected_rows.c.tenant == tenant, rejected_rows.c.position == position)
                .values(created_at=when)
            )
        for age, when in (("old", OLD), ("new", NEW)):
            conn.execute(sa.insert(call_analyses).values(analysis_row(tenant, f"{age}-call", when)))


def analysis_row(tenant: str, session: str, when: Any) -> dict[str, Any]:
    return {
        "analysis_key": f"{tenant}/{session}", "tenant": tenant, "session": session, "analyzer": "offline",
        "prompt_version": "v1", "schema_version": 1, "status": "succeeded", "transcript": TRANSCRIPT,
        "transcript_encrypted": ENCRYPTED, "insights": '{"summary": "kept"}', "created_at": when,
        "updated_at": when,
    }  # fmt: skip


def snapshot(engine: sa.Engine, tenant: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tenant`` in every table, ordered (what "untouched" is compared against)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "tenant" in table.c:
                query = sa.select(table).where(table.c.tenant == tenant)
                rows = conn.execute(query.order_by(*table.primary_key.columns)).mappings().all()
                tables[table.name] = [dict(row) for row in rows]
    return tables


def values(engine: sa.Engine, column: sa.Column[Any], tenant: str, key: sa.Column[Any]) -> dict[str, Any]:
    with engine.connect() as conn:
        query = sa.select(key, column).where(key.table.c.tenant == tenant)
        return {str(k): v for k, v in conn.execute(query)}


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    for tenant in TENANTS:
        seed(engine, tenant)
    return engine


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """Kept recordings: for each tenant one written 8 days and one 1 day before the clock."""
    folder = tmp_path / "recordings"  # apart from the SQLite warehouse's lock files
    for tenant in TENANTS:
        keep = recording_keeper(tenant, days=7, root=folder)
        assert keep is not None
        for session, age in (("old-call", 8), ("new-call", 1)):
            keep(session, WAV)
            stamp = (NOW - timedelta(days=age)).timestamp()
            os.utime(recording_path(tenant, session, folder), (stamp, stamp))
    yield folder


def test_defaults_keep_transcripts_and_raw_json_forever_and_no_recording(seeded: sa.Engine) -> None:
    before = snapshot(seeded, "acme")
    far_future = NOW + timedelta(days=3650)
    counts = cleanup_tenant(seeded, TenantSettings("acme", "UTC"), far_future, root=Path("/nonexistent"))
    assert counts == RetentionCounts("acme")
    assert snapshot(seeded, "acme") == before
    assert recording_keeper("acme", 0) is None  # default: downloads are not kept at all


def test_cleanup_clears_only_what_is_older_than_the_tenant_periods(seeded: sa.Engine, root: Path) -> None:
    other = snapshot(seeded, "other")
    policy = TenantSettings(
        "acme", "UTC", recording_retention_days=7, transcript_retention_days=30, raw_cdr_retention_days=30
    )
    counts = cleanup_tenant(seeded, policy, NOW, root=root, batch_rows=1)  # one row per transaction

    assert counts == RetentionCounts(
        "acme", files_deleted=1, bytes_freed=len(WAV), transcripts_cleared=1, raw_rows_cleared=3
    )  # fmt: skip  (2 old legs + 1 old quarantined row)
    transcripts = values(seeded, call_analyses.c.transcript, "acme", call_analyses.c.session)
    assert transcripts == {"old-call": None, "new-call": TRANSCRIPT}
    originals = values(seeded, call_analyses.c.transcript_encrypted, "acme", call_analyses.c.session)
    assert originals == {"old-call": None, "new-call": ENCRYPTED}  # the encrypted original goes too
    raw = values(seeded, cdr_legs.c.raw, "acme", cdr_legs.c.leg_key)
    assert [key for key, value in sorted(raw.items()) if value is None] == ["acme-old-0", "acme-old-1"]
    assert values(seeded, rejected_rows.c.raw, "acme", rejected_rows.c.position) == {
        "1": None,
        "2": '{"new": 2}',
    }
    # Calls, legs and analyses all stay; insights too.
    assert len(values(seeded, calls.c.session, "acme", calls.c.session)) == 2
    assert len(raw) == 4
    assert set(values(seeded, call_analyses.c.insights, "acme", call_analyses.c.session).values()) == {
        '{"summary": "kept"}'
    }
    assert not recording_path("acme", "old-call", root).exists()
    assert recording_path("acme", "new-call", root).exists()
    # The other tenant: rows and files untouched.
    assert snapshot(seeded, "other") == other
    assert recording_usage(root)["other"] == DiskUsage(2, 2 * len(WAV))

    assert cleanup_tenant(seeded, policy, NOW, root=root) == RetentionCounts("acme")  # rerun: no-op


def test_a_tenant_that_keeps_no_recordings_loses_every_file_left_over(tmp_path: Path) -> None:
    keep = recording_keeper("acme", days=3, root=tmp_path)
    assert keep is not None
    keep("1700000000.12/x", WAV)  # a session is percent-encoded into one file name
    assert [p.name for p in (tmp_path / "acme").iterdir()] == ["1700000000.12%2Fx.wav"]
    stamp = (NOW - timedelta(days=1)).timestamp()
    os.utime(recording_path("acme", "1700000000.12/x", tmp_path), (stamp, stamp))
    from audiapro.retention import expire_recordings

    assert expire_recordings("acme", 3, NOW, tmp_path) == DiskUsage(0, 0)  # one day old: kept
    assert expire_recordings("acme", 0, NOW, tmp_path) == DiskUsage(1, len(WAV))
    assert expire_recordings("acme", 0, NOW, tmp_path) == DiskUsage(0, 0)


def test_full_purge_removes_every_row_and_file_of_the_tenant_and_nothing_else(
    seeded: sa.Engine, root: Path
) -> None:
    other = snapshot(seeded, "other")
    preview = preview_purge(seeded, "acme", None, root=root)
    report = purge_tenant(seeded, "acme", root=root, batch_rows=1)

    assert report.rows == preview.rows
    assert report.rows["cdr_legs"] == 4 and report.rows["calls"] == 2 and report.rows["call_analyses"] == 2
    assert (
        report.rows["rejected_rows"] == 2
        and report.rows["sync_state"] == 1
        and report.rows["ingest_runs"] == 1
    )
    assert report.files == DiskUsage(2, 2 * len(WAV))
    assert all(rows == [] for rows in snapshot(seeded, "acme").values())
    assert not (root / "acme").exists()
    assert snapshot(seeded, "other") == other
    assert recording_usage(root) == {"other": DiskUsage(2, 2 * len(WAV))}

    rerun = purge_tenant(seeded, "acme", root=root)
    assert rerun.empty and not any(rerun.rows.values())


def test_purge_before_a_date_keeps_later_calls_the_cursor_and_the_run_history(
    seeded: sa.Engine, root: Path
) -> None:
    other = snapshot(seeded, "other")
    cutoff = NOW - timedelta(days=10)
    with seeded.connect() as conn:
        cursor = conn.scalar(sa.select(sync_state.c.cursor_at).where(sync_state.c.tenant == "acme"))
    report = purge_tenant(seeded, "acme", cutoff, root=root, batch_rows=1)

    assert report.rows == {
        "call_analyses": 1,
        "cdr_legs": 2,
        "calls": 1,
        "rejected_rows": 1,
        "push_bodies": 0,
    }
    assert report.files == DiskUsage(1, len(WAV))  # the old call's recording; the new one stays
    after = snapshot(seeded, "acme")
    assert [row["session"] for row in after["calls"]] == ["new-call"]
    assert sorted(row["leg_key"] for row in after["cdr_legs"]) == ["acme-new-0", "acme-new-1"]
    assert [row["session"] for row in after["call_analyses"]] == ["new-call"]
    assert [row["position"] for row in after["rejected_rows"]] == [2]
    assert [row["cursor_at"] for row in after["sync_state"]] == [cursor]  # the poll does not re-read
    assert len(after["ingest_runs"]) == 1
    assert recording_path("acme", "new-call", root).exists()
    assert snapshot(seeded, "other") == other

    assert purge_tenant(seeded, "acme", cutoff, root=root).empty  # rerun: nothing left to remove
    assert preview_purge(seeded, "acme", cutoff, root=root).empty


def test_a_full_purge_after_a_dated_one_removes_the_rest(seeded: sa.Engine, root: Path) -> None:
    purge_tenant(seeded, "acme", NOW - timedelta(days=10), root=root)
    report = purge_tenant(seeded, "acme", root=root)
    assert report.rows["calls"] == 1 and report.rows["ingest_runs"] == 1
    with seeded.connect() as conn:
        left = conn.scalar(
            sa.select(sa.func.count()).select_from(ingest_runs).where(ingest_runs.c.tenant == "acme")
        )
    assert left == 0
