"""A backfill window is loaded as its pages arrive, a few thousand legs per transaction: the warehouse ends
up exactly as when the window is loaded whole, and a failure mid-window followed by a rerun loses and
duplicates nothing (the window is recorded done only with its last legs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import audiapro.backfill as backfill
from audiapro.backfill import backfill_window, plan_backfill
from audiapro.ingest import CdrSource, ingest_window
from audiapro.ucm.records import CdrPage
from audiapro.warehouse import backfill_windows, calls, cdr_legs, ingest_runs
from tests.integration.pipeline_support import DAY, TENANT, make_client, simulator

NOW = datetime(2026, 3, 4, tzinfo=UTC)
#: Legs per load transaction in these tests: a day of ~300 legs in pages of 25 loads in about eight.
PIECE_LEGS = 40
PAGE_SIZE = 25
#: Columns that name the run or the moment a row was written, not what it holds.
LOAD_BOOKKEEPING = {"id", "ingest_run_id", "last_ingest_run_id", "loaded_at", "updated_at", "created_at"}


def content(engine: sa.Engine, table: sa.Table, order: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` without its load bookkeeping, in ``order``."""
    columns = [c for c in table.c if c.name not in LOAD_BOOKKEEPING]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(*columns).order_by(table.c[order]))]


def snapshot(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return content(engine, cdr_legs, "leg_key"), content(engine, calls, "session")


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def clear(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in ("backfill_windows", "calls", "cdr_legs", "rejected_rows", "ingest_runs"):
            conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backfill, "LOAD_PIECE_LEGS", PIECE_LEGS)
    monkeypatch.setattr(backfill, "FETCH_AHEAD_PAGES", 2)


def test_a_window_loaded_in_pieces_stores_what_loading_it_whole_stores(
    pg_engine: sa.Engine, small_pieces: None
) -> None:
    sim = simulator(days=1, calls_per_day=150)
    sim.clock.set(NOW)
    plan = plan_backfill(pg_engine, TENANT, DAY, DAY, now=NOW)
    (window,) = plan.windows
    truth = sim.ground_truth(start=plan.span.start, end=plan.span.end)
    with sim.serve() as url, make_client(sim, url, page_size=PAGE_SIZE) as client:
        whole = ingest_window(
            client, pg_engine, TENANT, window.start, window.end, kind="backfill", advance_cursor=False
        )
        reference = snapshot(pg_engine)
        clear(pg_engine)
        outcome = backfill_window(client, pg_engine, TENANT, window, settled_until=plan.settled_until)

    assert whole.inserted == len(truth) > 4 * PIECE_LEGS
    assert snapshot(pg_engine) == reference
    assert (outcome.pieces, outcome.recorded) == (1, True)  # one piece of the window ...
    # ... loaded in many transactions (one once the legs held reach PIECE_LEGS and another page comes)
    assert count(pg_engine, ingest_runs) >= len(truth) // (PIECE_LEGS + PAGE_SIZE) > 1
    assert (outcome.fetched, outcome.inserted, outcome.updated, outcome.unchanged) == (
        whole.fetched,
        whole.inserted,
        0,
        0,
    )
    with pg_engine.connect() as conn:
        done = conn.execute(sa.select(backfill_windows.c.window_start, backfill_windows.c.window_end)).all()
    assert done == [(window.start, window.end)]


class FailingSource:
    """The client's pages until ``fail_after`` of them were handed out, then a dropped connection."""

    def __init__(self, source: CdrSource, fail_after: int) -> None:
        self._source = source
        self._left = fail_after

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        for page in self._source.iter_cdr_pages(start_utc, end_utc, time_filter=time_filter):
            if self._left == 0:
                raise ConnectionError("connection reset by the PBX")
            self._left -= 1
            yield page


@pytest.mark.parametrize("failing", ["fetch", "load"])
def test_a_failure_mid_window_then_a_rerun_loses_and_duplicates_nothing(
    pg_engine: sa.Engine, small_pieces: None, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    sim = simulator(days=1, calls_per_day=150)
    sim.clock.set(NOW)
    plan = plan_backfill(pg_engine, TENANT, DAY, DAY, window=timedelta(days=1), now=NOW)
    (window,) = plan.windows
    truth = sim.ground_truth(start=plan.span.start, end=plan.span.end)
    with sim.serve() as url, make_client(sim, url, page_size=PAGE_SIZE) as client:
        ingest_window(
            client, pg_engine, TENANT, window.start, window.end, kind="backfill", advance_cursor=False
        )
        reference = snapshot(pg_engine)
        clear(pg_engine)

        source: CdrSource = client
        if failing == "fetch":
            source = FailingSource(client, fail_after=6)
        else:
            real_load, loads = backfill.load_normalized, []

            def load_then_fail(*args: Any, **kwargs: Any) -> Any:
                loads.append(1)
                if len(loads) == 3:
                    raise RuntimeError("database went away")
                return real_load(*args, **kwargs)

            monkeypatch.setattr(backfill, "load_normalized", load_then_fail)
        with pytest.raises((ConnectionError, RuntimeError)):
            backfill_window(source, pg_engine, TENANT, window, settled_until=plan.settled_until)
        monkeypatch.undo()
        monkeypatch.setattr(backfill, "LOAD_PIECE_LEGS", PIECE_LEGS)

        kept = count(pg_engine, cdr_legs)
        assert 0 < kept < len(truth)  # the transactions before the failure stay committed
        assert count(pg_engine, backfill_windows) == 0  # but the window is not recorded done
        rerun = plan_backfill(pg_engine, TENANT, DAY, DAY, window=timedelta(days=1), now=NOW)
        assert rerun.windows == [window]
        outcome = backfill_window(client, pg_engine, TENANT, window, settled_until=rerun.settled_until)

    assert (outcome.inserted, outcome.unchanged, outcome.recorded) == (len(truth) - kept, kept, True)
    assert snapshot(pg_engine) == reference
    assert plan_backfill(pg_engine, TENANT, DAY, DAY, now=NOW).windows == []
