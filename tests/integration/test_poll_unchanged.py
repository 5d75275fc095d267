"""A poll piece whose legs are all stored as fetched is committed without normalizing (issue 13).

An idle tenant's lookback re-reads the same few legs every tick; normalizing them was ~45 % of the
CPU of its poll. The piece is compared with the warehouse as fetched (raw text) instead, and only a
piece whose every leg is found unchanged skips the load: a leg the PBX changed, a new leg or one
whose stored raw text retention cleared is still loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro import ingest
from audiapro.ingest import ingest_window
from audiapro.ucm.records import CdrPage
from audiapro.warehouse import cdr_legs, ingest_runs, read_sync_state
from tests.integration.pipeline_support import TENANT, simulator

START = datetime(2026, 3, 2, 5, tzinfo=UTC)
END = datetime(2026, 3, 3, 5, tzinfo=UTC)
LEGS = 20


class _ListSource:
    """A PBX whose window holds exactly ``legs`` (copies: a test may change one between ticks)."""

    def __init__(self, legs: list[dict[str, str]]) -> None:
        self.legs = [dict(leg) for leg in legs]

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        if self.legs:
            yield CdrPage(offset=0, legs=list(self.legs), item_count=len(self.legs))


def _tick(source: _ListSource, engine: sa.Engine, end: datetime) -> ingest.WindowSummary:
    return ingest_window(source, engine, TENANT, START, end, kind="poll", advance_cursor=True)


def _forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("normalized or merged again")

    monkeypatch.setattr(ingest, "normalize_legs", refuse)
    monkeypatch.setattr(ingest, "load_batch", refuse)


def _stored(engine: sa.Engine, column: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cdr_legs.c.acct_id, cdr_legs.c[column])).all()
    return {str(row[0]): row[1] for row in rows}


@pytest.fixture
def source() -> _ListSource:
    return _ListSource(simulator(days=1).ground_truth()[:LEGS])


def test_a_re_read_of_stored_legs_moves_the_cursor_without_normalizing(
    engine: sa.Engine, source: _ListSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _tick(source, engine, END)
    assert first.inserted == LEGS
    raw_before = _stored(engine, "raw")
    _forbid_loading(monkeypatch)

    again = _tick(source, engine, END + timedelta(minutes=2))

    assert (again.fetched, again.inserted, again.updated, again.unchanged) == (LEGS, 0, 0, LEGS)
    state = read_sync_state(engine, TENANT.name)
    assert state is not None and state.cursor_at == END + timedelta(minutes=2)
    assert state.last_run_id == again.run_id
    with engine.connect() as conn:
        run = conn.execute(sa.select(ingest_runs).where(ingest_runs.c.id == again.run_id)).one()
    assert (run.kind, run.status, run.fetched, run.unchanged, run.inserted) == (
        "poll",
        "succeeded",
        LEGS,
        LEGS,
        0,
    )
    assert run.finished_at is not None and run.flow_run_id is None
    assert _stored(engine, "raw") == raw_before

    quiet = _tick(_ListSource([]), engine, END + timedelta(minutes=4))  # an empty piece: no load either
    assert (quiet.fetched, quiet.unchanged) == (0, 0)
    state = read_sync_state(engine, TENANT.name)
    assert state is not None and state.cursor_at == END + timedelta(minutes=4)


def test_a_leg_changed_at_the_pbx_or_a_new_one_is_still_loaded(
    engine: sa.Engine, source: _ListSource
) -> None:
    extra = source.legs.pop()
    _tick(source, engine, END)
    changed = source.legs[3]
    changed["recordfiles"] = "2026-03/auto-1772430000-1000-2000.wav@"  # a recording appeared later
    source.legs.append(extra)

    again = _tick(source, engine, END + timedelta(minutes=2))

    assert (again.inserted, again.updated, again.unchanged) == (1, 1, LEGS - 2)
    assert _stored(engine, "recording_count")[changed["AcctId"]] == 1
    assert len(_stored(engine, "raw")) == LEGS


def test_a_leg_whose_raw_text_retention_cleared_is_loaded_again(
    engine: sa.Engine, source: _ListSource
) -> None:
    _tick(source, engine, END)
    cleared = source.legs[0]["AcctId"]
    with engine.begin() as conn:
        conn.execute(sa.update(cdr_legs).where(cdr_legs.c.acct_id == cleared).values(raw=None))

    again = _tick(source, engine, END + timedelta(minutes=2))

    assert (again.inserted, again.updated, again.unchanged) == (0, 1, LEGS - 1)
    assert _stored(engine, "raw")[cleared] is not None
