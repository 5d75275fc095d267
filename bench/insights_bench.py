"""Insights and toll-fraud evaluation for one tenant-year, and the per-poll fraud check's overhead.

1. A simulated tenant-year (default 365 days x 760 calls: about 500 000 legs, with the simulator's
   two fraud scenarios) is loaded into a fresh Postgres database (not timed).
2. **Year**: every day's insights are computed and stored (``compute_days``, a month per read) and
   every fraud rule is evaluated on each day with its baseline (``evaluate_day``): seconds, legs/s.
3. **Per-poll overhead**: on the following days, ``--ticks`` poll windows of about ``--tick-legs``
   new legs each (in start order) are polled the way a tick polls a tenant: fetched from the simulated
   PBX over HTTP on loopback, checked, normalized and loaded with the cursor (``ingest_window``), and
   the cheap fraud rules run after each (``check_after_poll``). ``fraud_check_overhead`` is check /
   tick (goal: under 10 %). The PBX is on loopback and answers at once: a remote PBX makes the tick
   longer and the share smaller.

Prints a table, then one JSON line of figures (last line). ``--days 10 --calls-per-day 80`` is the
smoke size ``make test`` runs (no timing assertions there).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchlib import (
    TIMEZONE,
    BenchServer,
    add_common_options,
    log,
    migrated_engine,
    print_report,
    rate,
    tenant_settings,
)

FIRST_DAY = date(2025, 1, 6)  # a Monday
#: Goal for the per-poll fraud check, as a share of a poll tick's load time.
OVERHEAD_GOAL = 0.10
#: How long after its newest leg's start a tick runs (about the poll's safety margin).
TICK_SAFETY = timedelta(minutes=5)
#: Days after the history whose legs feed the measured poll ticks.
TICK_DAYS = 3
#: Days computed per read of the warehouse.
CHUNK_DAYS = 31


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365, help="Days of history (default 365)")
    parser.add_argument("--calls-per-day", type=int, default=760, help="Mean weekday calls (default 760)")
    parser.add_argument("--tick-legs", type=int, default=1000, help="New legs per poll tick (default 1000)")
    parser.add_argument("--ticks", type=int, default=3, help="Poll ticks measured (default 3)")
    add_common_options(parser)
    return parser.parse_args(argv)


def _simulator(days: int, calls_per_day: int) -> Any:
    from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
    from audiapro.ucm.simulator.config import FraudScenario

    last = FIRST_DAY + timedelta(days=days - 1)
    fraud = (
        FraudScenario("premium_night", last - timedelta(days=2), hour=1),
        FraudScenario("pumping_burst", last - timedelta(days=1), hour=14, calls=15, spacing_s=30),
    )
    # TICK_DAYS more than the history: their legs are the poll ticks' new legs.
    now = datetime.combine(last + timedelta(days=TICK_DAYS + 1), datetime.min.time(), UTC) + timedelta(
        hours=12
    )
    config = SimulatorConfig(
        seed=1, start=FIRST_DAY, days=days + TICK_DAYS, calls_per_day=calls_per_day, now=now, fraud=fraud
    )
    return UcmSimulator(config)


def _load_history(engine: Any, sim: Any, days: int) -> int:
    from audiapro.ingest import load_raw_legs
    from audiapro.warehouse import RunInfo

    tenant, legs = tenant_settings(), 0
    for start in range(0, days, CHUNK_DAYS):
        first = datetime.combine(FIRST_DAY + timedelta(days=start), datetime.min.time(), UTC)
        last = datetime.combine(
            FIRST_DAY + timedelta(days=min(start + CHUNK_DAYS, days)), datetime.min.time(), UTC
        )
        raw = sim.ground_truth(start=first, end=last - timedelta(microseconds=1))
        load_raw_legs(engine, tenant, raw, run=RunInfo(kind="import"), source="api")
        legs += len(raw)
    return legs


def _year(engine: Any, days: int) -> dict[str, Any]:
    from audiapro.insights import service

    tenant, now = tenant_settings(), datetime.now(UTC)
    all_days = [FIRST_DAY + timedelta(days=n) for n in range(days)]
    alerts: list[dict[str, Any]] = []
    compute_s = evaluate_s = 0.0
    for start in range(0, days, CHUNK_DAYS):
        began = time.perf_counter()
        results = service.compute_days(engine, tenant, all_days[start : start + CHUNK_DAYS], now=now)
        middle = time.perf_counter()
        for result in results:
            alerts += service.evaluate_day(engine, tenant, result, now=now)
        compute_s += middle - began
        evaluate_s += time.perf_counter() - middle
    return {
        "compute_s": round(compute_s, 2),
        "evaluate_s": round(evaluate_s, 2),
        "alerts": sorted({f"{a['rule']}:{a['severity']}" for a in alerts}),
    }


def _ticks(engine: Any, sim: Any, days: int, tick_legs: int, ticks: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from audiapro.ingest import ingest_window
    from audiapro.insights import service
    from audiapro.ucm.client import UcmClient, UcmConnection

    tenant = tenant_settings()
    zone = ZoneInfo(TIMEZONE)
    day = datetime.combine(FIRST_DAY + timedelta(days=days), datetime.min.time(), UTC)
    starts = sorted(
        datetime.fromisoformat(leg["start"]).replace(tzinfo=zone).astimezone(UTC)
        for leg in sim.ground_truth(start=day, end=day + timedelta(days=TICK_DAYS))
    )
    # Tick n polls [its first leg's start, the next tick's first start): about tick_legs legs.
    bounds = [starts[n * tick_legs] for n in range(ticks + 1) if n * tick_legs < len(starts)]
    totals, checks, legs = [], [], []
    with sim.serve() as base_url:
        connection = UcmConnection.from_url(
            base_url, api_user=sim.config.api_user, password=SecretStr(sim.config.password),
            timezone=TIMEZONE, page_size=1000,
        )  # fmt: skip
        with UcmClient(connection) as client:
            for first, after in itertools.pairwise(bounds):
                began = time.perf_counter()
                last = after - timedelta(seconds=1)
                summary = ingest_window(client, engine, tenant, first, last, kind="poll", advance_cursor=True)
                polled = time.perf_counter()
                # The tick's clock: the poll's safety margin after its window's end.
                service.check_after_poll(engine, tenant, now=after + TICK_SAFETY)
                checks.append(time.perf_counter() - polled)
                totals.append(polled - began)
                legs.append(summary.fetched)
    if not totals:
        raise SystemExit("no whole poll tick in the days simulated: more --calls-per-day, fewer --tick-legs")
    tick_s, check_s = statistics.median(totals), statistics.median(checks)
    return {
        "tick_legs": round(statistics.median(legs)),
        "ticks": len(totals),
        "tick_s": round(tick_s, 3),
        "fraud_check_s": round(check_s, 3),
        "fraud_check_overhead": round(check_s / tick_s, 3),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the bench; print the table and the JSON figures."""
    args = _parse(argv)
    from audiapro.warehouse.scratch import scratch_database

    server = BenchServer.from_option(args.database_url)
    with scratch_database(server.url, "bench_insights") as url:
        engine = migrated_engine(url)
        sim = _simulator(args.days, args.calls_per_day)
        log(f"loading {args.days} days of about {args.calls_per_day} calls ...")
        legs = _load_history(engine, sim, args.days)
        log(f"{legs} legs loaded; computing insights and fraud rules ...")
        year = _year(engine, args.days)
        log("poll ticks ...")
        ticks = _ticks(engine, sim, args.days, args.tick_legs, args.ticks)
        engine.dispose()
    total = year["compute_s"] + year["evaluate_s"]
    figures = {
        "bench": "insights",
        "days": args.days,
        "legs": legs,
        "insights_s": year["compute_s"],
        "fraud_daily_s": year["evaluate_s"],
        "year_legs_per_s": rate(legs, total),
        "alerts": year["alerts"],
        **ticks,
        "targets": {
            "fraud_check_overhead_below": OVERHEAD_GOAL,
            "met": ticks["fraud_check_overhead"] < OVERHEAD_GOAL,
        },
        "machine": server.machine(),
    }
    print_report(
        figures,
        [
            f"insights bench: {args.days} days, {legs} legs",
            f"  insights (daily_kpis, breakdowns, worklist): {year['compute_s']:.1f} s",
            f"  fraud rules, every day with its baseline:      {year['evaluate_s']:.1f} s",
            f"  together: {figures['year_legs_per_s']:.0f} legs/s",
            f"  alerts: {', '.join(year['alerts']) or 'none'}",
            f"  poll tick of {ticks['tick_legs']} legs (fetch, check, load): {ticks['tick_s']:.3f} s, "
            f"fraud check {ticks['fraud_check_s']:.3f} s = "
            f"{100 * ticks['fraud_check_overhead']:.1f} % (goal < 10 %)",
        ],
    )


if __name__ == "__main__":
    main()
