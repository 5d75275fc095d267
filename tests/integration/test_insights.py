"""Insights on both back ends: KPIs of a hand-computed small day, late legs, idempotent reruns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from audiapro.insights import service
from audiapro.warehouse.insights import read_breakdowns, read_callbacks, read_daily_kpis, stale_days
from audiapro.warehouse.tables import callback_queue, daily_breakdowns, daily_kpis
from tests.integration.insights_support import DAY, NOW, SETTINGS, TZ, at, early_legs, late_legs
from tests.integration.warehouse_support import TENANT, load

#: Hand-computed from the legs in insights_support (see its docstring).
EXPECTED_KPIS = {
    "calls": 6, "inbound": 3, "outbound": 2, "internal": 1, "external": 0,
    "answered": 4,  # A, D, C, G (voicemail does not answer E)
    "missed": 2,  # B, E
    "asr": 66.67, "talk_s": 270, "acd_s": 67.5,  # 60 + 30 + 120 + 60 over 4 answered calls
    "busiest_hour": 9, "busiest_hour_calls": 3,  # A, D, B
    "peak_concurrent": 2,  # A and D overlap
    "peak_concurrent_outbound": 1, "after_hours_external": 0, "international": 1,  # C to London
    "callbacks_open": 1,  # B; E was called back by G within 24 h
}  # fmt: skip
EXPECTED_EXTENSIONS = {
    # calls, answered, missed, talk (placed + answered legs), avg ring
    "1001": (3, 1, 1, 30 + 60, 5.0),  # A answered, B missed, D placed
    "1002": (4, 1, 1, 120 + 60 + 30, 4.0),  # C and G placed, D answered, E missed
}


def _kpis(engine: sa.Engine) -> dict[str, Any]:
    (row,) = read_daily_kpis(engine, TENANT, DAY, DAY)
    return {name: row[name] for name in EXPECTED_KPIS}


def _breakdown(engine: sa.Engine, dimension: str) -> dict[str, tuple[Any, ...]]:
    rows = read_breakdowns(engine, TENANT, DAY, DAY, dimension)
    return {r["key"]: (r["calls"], r["answered"], r["missed"], r["talk_s"], r["avg_ring_s"]) for r in rows}


def _all_rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return [
            sorted(
                tuple(str(v) for k, v in row.items() if k != "computed_at")
                for row in conn.execute(sa.select(t)).mappings()
            )
            for t in (daily_kpis, daily_breakdowns, callback_queue)
        ]


def test_kpis_match_a_hand_computed_day(engine: sa.Engine) -> None:
    load(engine, early_legs() + late_legs())
    service.compute_days(engine, SETTINGS, [DAY], now=NOW)
    assert _kpis(engine) == EXPECTED_KPIS
    assert _breakdown(engine, "extension") == EXPECTED_EXTENSIONS
    dispositions = {key: row[0] for key, row in _breakdown(engine, "disposition").items()}
    assert dispositions == {"ANSWERED": 4, "NO ANSWER": 1, "VOICEMAIL": 1}
    assert {key: row[:3] for key, row in _breakdown(engine, "trunk").items()} == {
        "carrier": (3, 1, 2),
        "Carrier-A": (2, 2, 0),
    }
    assert {key: row[0] for key, row in _breakdown(engine, "country").items()} == {"GB": 1, "US": 1}
    assert {key: row[0] for key, row in _breakdown(engine, "hour").items()} == {
        "09": 3,
        "10": 1,
        "15": 1,
        "16": 1,
    }
    (callback,) = read_callbacks(engine, TENANT, DAY, DAY)
    assert (callback["number"], callback["missed_calls"], callback["first_missed_at"]) == (
        "+12125550111",
        1,
        at(9, 30),
    )


def test_late_legs_mark_the_day_stale_and_a_recompute_picks_them_up(engine: sa.Engine) -> None:
    load(engine, early_legs())
    service.compute_days(engine, SETTINGS, [DAY], now=NOW)
    early = _kpis(engine)
    assert (early["calls"], early["missed"], early["callbacks_open"]) == (4, 1, 1)
    span = (DAY, *service.day_span(DAY, TZ))
    assert stale_days(engine, TENANT, [span]) == []

    load(engine, late_legs())  # loaded after the day was computed
    assert stale_days(engine, TENANT, [span]) == [DAY]
    service.compute_days(engine, SETTINGS, [DAY], now=NOW + timedelta(hours=1))
    assert _kpis(engine) == EXPECTED_KPIS
    assert stale_days(engine, TENANT, [span]) == []


def test_recomputing_a_day_is_idempotent(engine: sa.Engine) -> None:
    load(engine, early_legs() + late_legs())
    service.compute_days(engine, SETTINGS, [DAY], now=NOW)
    first = _all_rows(engine)
    service.compute_days(engine, SETTINGS, [DAY - timedelta(days=1), DAY], now=NOW + timedelta(hours=2))
    again = _all_rows(engine)
    assert again[1:] == first[1:] and len(again[0]) == 2  # the empty day before got its own row
    assert [row for row in again[0] if row[1] == str(DAY)] == first[0]


def test_the_views_read_the_stored_day(engine: sa.Engine) -> None:
    load(engine, early_legs() + late_legs())
    service.compute_days(engine, SETTINGS, [DAY], now=NOW)
    with engine.connect() as conn:
        ext = conn.execute(
            sa.text("SELECT extension, calls, asr FROM insights_by_extension ORDER BY extension")
        ).all()
        worklist = conn.execute(sa.text("SELECT number FROM callback_worklist")).scalars().all()
    assert [(e, c) for e, c, _ in ext] == [("1001", 3), ("1002", 4)]
    assert worklist == ["+12125550111"]


def test_a_full_tenant_purge_removes_its_insights(engine: sa.Engine) -> None:
    from audiapro.warehouse import purge_rows

    load(engine, early_legs() + late_legs())
    service.compute_days(engine, SETTINGS, [DAY], now=NOW)
    removed = purge_rows(engine, TENANT, None, batch_rows=100)
    assert removed["daily_kpis"] == 1 and removed["callback_queue"] == 1 and removed["daily_breakdowns"] > 0
    assert _all_rows(engine) == [[], [], []]
