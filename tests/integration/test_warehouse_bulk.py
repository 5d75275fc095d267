"""Bulk load on Postgres: 100k legs through COPY + one merge. Asserts correctness, prints the rate."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import sqlalchemy as sa

from audiapro.warehouse import RunInfo, calls, cdr_legs, get_engine, load_batch, upgrade
from tests.integration.warehouse_support import NO_REJECTS, T0, TENANT, bulk_legs, union_seconds

ROWS = 100_000
LEGS_PER_CALL = 4


def expected_talk(frame: pd.DataFrame) -> int:
    """Talk seconds of all calls: per session, the union of its answered legs' intervals."""
    answered = frame[frame["answer_at"].notna()]
    total = 0
    for _session, legs in answered.groupby("session"):
        begin = (legs["answer_at"] - T0).dt.total_seconds().astype(int)
        end = (legs["end_at"] - T0).dt.total_seconds().astype(int)
        total += union_seconds(list(zip(begin, end, strict=True)))
    return total


@pytest.mark.postgres
def test_100k_rows_load_via_copy(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    engine = get_engine(pg_url)
    try:
        upgrade(engine)
        frame = bulk_legs(ROWS, legs_per_call=LEGS_PER_CALL)

        started = time.perf_counter()
        first = load_batch(engine, tenant=TENANT, legs=frame, rejects=NO_REJECTS, run=RunInfo(kind="import"))
        first_s = time.perf_counter() - started

        started = time.perf_counter()
        again = load_batch(engine, tenant=TENANT, legs=frame, rejects=NO_REJECTS, run=RunInfo(kind="import"))
        again_s = time.perf_counter() - started

        assert (first.inserted, first.updated, first.unchanged) == (ROWS, 0, 0)
        assert first.sessions_touched == ROWS // LEGS_PER_CALL
        assert (again.inserted, again.updated, again.unchanged, again.sessions_touched) == (0, 0, ROWS, 0)
        with engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(cdr_legs)) == ROWS
            assert conn.scalar(sa.select(sa.func.count()).select_from(calls)) == ROWS // LEGS_PER_CALL
            assert conn.scalar(sa.select(sa.func.sum(calls.c.leg_count))) == ROWS
            assert conn.scalar(sa.select(sa.func.sum(calls.c.talk_s))) == expected_talk(frame)
        with capsys.disabled():
            print(
                f"\n[warehouse bulk] {ROWS:,} legs: first load {first_s:.2f}s "
                f"({ROWS / first_s:,.0f} rows/s), "
                f"identical re-load {again_s:.2f}s ({ROWS / again_s:,.0f} rows/s)"
            )
    finally:
        engine.dispose()
