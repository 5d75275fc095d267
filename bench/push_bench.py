"""Push benchmark: how fresh are rows with the push receiver vs the poll alone, and how fast it takes legs.

Measured in one run against a throwaway Postgres warehouse and the admin API served by uvicorn on
127.0.0.1 (the receiver's background loader running, as under ``audiapro api``):

* **push freshness**: the simulator's emitter POSTs each leg the moment it ends (one body per leg,
  over HTTP); the seconds from that POST to the leg's row being readable in ``cdr_legs``. A UCM may
  add its own delay before sending; none is known, none is added.
* **poll-only freshness**: the live poll runs every ``POLL_INTERVAL_S`` and reads up to ``now -
  safety`` (the tenant default): a leg ending at ``e`` is read by the first tick at or after
  ``e + safety``. The ticks' times are laid out on the simulated clock; each tick's own duration is
  measured (a real ``ingest_window`` against the simulator over HTTP) and added.
* **throughput**: a replayed buffer (``--burst`` legs, one body each, from ``--senders`` threads):
  legs/s accepted (all answered 202) and legs/s loaded (all rows readable), from the first POST.

The last line of the output is one JSON object with the figures (goal: push p95 < 5 s).

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/push_bench.py [--minutes 30] [--burst 2000]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from benchlib import (
    TENANT_NAME,
    TIMEZONE,
    BenchServer,
    add_common_options,
    log,
    migrated_engine,
    print_report,
    rate,
    tenant_settings,
)

from audiapro.warehouse.scratch import scratch_database

SEED = 2029
FIRST_DAY = date(2026, 3, 2)
CALLS_PER_DAY = 2000
#: The live poll's schedule (prefect.yaml) and the tenant's default safety margin.
POLL_INTERVAL_S = 120
SAFETY_S = 60
USER, PASSWORD = "ucm-bench", "bench-push-Pa55word-0123456789"
PBX_PASSWORD = "bench-Pa55word"
GOAL_P95_S = 5.0
#: Seconds to wait for a pushed leg's row before giving up on the run.
ROW_DEADLINE_S = 120.0
#: How often the watcher reads the warehouse for newly loaded legs.
WATCH_EVERY_S = 0.01
URL_PATH = f"/api/push/ucm/{TENANT_NAME}"


def main() -> None:
    """Parse options, run both measurements, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30, help="Simulated live minutes pushed (freshness)")
    parser.add_argument("--burst", type=int, default=2000, help="Legs in the replayed buffer (throughput)")
    parser.add_argument("--senders", type=int, default=4, help="Threads POSTing the burst")
    add_common_options(parser)
    args = parser.parse_args()
    server = BenchServer.from_option(args.database_url)
    with scratch_database(server.url, "push_bench") as url:
        figures = run(url, args)
    figures["machine"] = server.machine()
    print_report(figures, table(figures))


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both measurements against the warehouse at ``url``."""
    from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

    engine = migrated_engine(url)
    sim = UcmSimulator(SimulatorConfig(seed=SEED, calls_per_day=CALLS_PER_DAY, start=FIRST_DAY, days=2,
                                       tz=TIMEZONE, password=PBX_PASSWORD))  # fmt: skip
    sim.clock.set(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))  # 10:00 in New York: a busy hour
    with served(engine) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        push = push_freshness(sim, engine, client, args.minutes)
        burst = throughput(sim, engine, client, args.burst, args.senders)
    poll = poll_freshness(sim, engine, args.minutes)
    engine.dispose()
    return {
        "bench": "push",
        "legs": push["legs"],
        "push_p50_s": _pct(push["ages"], 50),
        "push_p95_s": _pct(push["ages"], 95),
        "poll_p50_s": _pct(poll["ages"], 50),
        "poll_p95_s": _pct(poll["ages"], 95),
        "poll_tick_s": round(statistics.mean(poll["ticks"]), 3) if poll["ticks"] else 0.0,
        "burst_legs": burst["legs"],
        "accepted_legs_per_s": rate(burst["legs"], burst["accepted_s"]),
        "loaded_legs_per_s": rate(burst["legs"], burst["loaded_s"]),
        "goal_p95_s": GOAL_P95_S,
        "met_goal": _pct(push["ages"], 95) < GOAL_P95_S,
    }


@contextmanager
def served(engine: sa.Engine) -> Iterator[str]:
    """The admin API with the push receiver (its loader thread running) on a free loopback port."""
    from audiapro.api.app import create_app
    from audiapro.api.fake import InMemoryOrchestrator
    from audiapro.api.serve import served_in_thread
    from audiapro.push.config import PushTenant
    from audiapro.push.receiver import PushReceiver

    tenant = PushTenant(settings=tenant_settings(), mode="load", user=USER, password=PASSWORD)
    orchestrator = InMemoryOrchestrator(push_tenants={TENANT_NAME: tenant})
    receiver = PushReceiver(engine, orchestrator.push_tenant)
    app = create_app(orchestrator, list, push=receiver)
    with served_in_thread(app) as url:
        receiver.start()
        try:
            yield url
        finally:
            receiver.stop()


def _auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def _stored(engine: sa.Engine, keys: set[str]) -> set[str]:
    from audiapro.warehouse import cdr_legs

    with engine.connect() as conn:
        return set(conn.scalars(sa.select(cdr_legs.c.leg_key).where(cdr_legs.c.leg_key.in_(list(keys)))))


def _await_rows(engine: sa.Engine, sent: dict[str, float]) -> dict[str, float]:
    """When each sent leg's row became readable (``perf_counter``), reading every ``WATCH_EVERY_S``."""
    landed: dict[str, float] = {}
    deadline = time.perf_counter() + ROW_DEADLINE_S
    while len(landed) < len(sent):
        now = time.perf_counter()
        if now > deadline:
            raise SystemExit(f"{len(sent) - len(landed)} pushed legs never reached the warehouse")
        for key in _stored(engine, set(sent) - set(landed)):
            landed[key] = now
        time.sleep(WATCH_EVERY_S)
    return landed


def push_freshness(sim: Any, engine: sa.Engine, client: httpx.Client, minutes: int) -> dict[str, Any]:
    """Each leg POSTed as it ends (simulated minute by minute); seconds until its row is readable."""
    from audiapro.cdr.keys import raw_leg_keys
    from audiapro.ucm.simulator.push import PushEmitter

    emitter = PushEmitter(sim, client, URL_PATH, user=USER, password=PASSWORD)
    ages: list[float] = []
    for _ in range(minutes):
        sim.clock.advance(60)
        legs = emitter.ended()
        if not legs:
            continue
        keys = raw_leg_keys(legs).keys
        sent: dict[str, float] = {}
        for key, leg in zip(keys, legs, strict=True):
            sent[key] = time.perf_counter()
            answer = client.post(URL_PATH, json=leg, headers=_auth())
            answer.raise_for_status()
        landed = _await_rows(engine, sent)
        ages.extend(landed[key] - sent[key] for key in sent)
    log(f"push freshness: {len(ages)} legs over {minutes} simulated minutes")
    return {"legs": len(ages), "ages": ages}


def poll_freshness(sim: Any, engine: sa.Engine, minutes: int) -> dict[str, Any]:
    """Poll-only: each leg waits for the first tick that reads it, plus that tick's measured duration."""
    from pydantic import SecretStr

    from audiapro.ingest import ingest_window
    from audiapro.ucm.client import UcmClient, UcmConnection

    end = sim.clock.now()
    start = end - timedelta(minutes=minutes)
    ends = sim.true_start_utc(start=start - timedelta(hours=2), end=end)  # AcctId -> start (for the ids)
    truth = {leg["AcctId"]: leg for leg in sim.ground_truth(start=start - timedelta(hours=2), end=end)}
    leg_ends = [_leg_end_utc(ends[acct], truth[acct]) for acct in truth]
    leg_ends = [e for e in leg_ends if start <= e <= end]
    ticks: list[float] = []
    tick_at = start.replace(second=0, microsecond=0)
    with sim.serve() as base_url:
        connection = UcmConnection.from_url(base_url, api_user=sim.config.api_user,
                                            password=SecretStr(PBX_PASSWORD), timezone=TIMEZONE)  # fmt: skip
        pbx = UcmClient(connection)
        while tick_at < end + timedelta(seconds=SAFETY_S + POLL_INTERVAL_S):
            began = time.perf_counter()
            window_end = min(tick_at - timedelta(seconds=SAFETY_S), end)
            ingest_window(pbx, engine, tenant_settings(), window_end - timedelta(seconds=POLL_INTERVAL_S * 2),
                          window_end, kind="poll", advance_cursor=False)  # fmt: skip
            ticks.append(time.perf_counter() - began)
            tick_at += timedelta(seconds=POLL_INTERVAL_S)
        pbx.close()
    tick_s = statistics.mean(ticks) if ticks else 0.0
    ages = [_next_tick(e, start) - e.timestamp() + tick_s for e in leg_ends]
    log(f"poll-only freshness: {len(ages)} legs, {len(ticks)} ticks of {tick_s:.3f} s on average")
    return {"ages": ages, "ticks": ticks}


def _leg_end_utc(start_utc: datetime, leg: dict[str, str]) -> datetime:
    return start_utc + timedelta(seconds=int(leg.get("duration") or 0))


def _next_tick(leg_end: datetime, first_tick: datetime) -> float:
    """The first tick (every ``POLL_INTERVAL_S`` from ``first_tick``) whose window covers ``leg_end``."""
    due = leg_end.timestamp() + SAFETY_S
    origin = first_tick.replace(second=0, microsecond=0).timestamp()
    ticks = max(0, -(-(due - origin) // POLL_INTERVAL_S))
    return origin + ticks * POLL_INTERVAL_S


def throughput(sim: Any, engine: sa.Engine, client: httpx.Client, burst: int, senders: int) -> dict[str, Any]:
    """A replayed buffer of ``burst`` legs, one body each, POSTed from ``senders`` threads."""
    from audiapro.cdr.keys import raw_leg_keys

    # The first simulated day: legs the freshness run never pushed (else they would load at once).
    first_day = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    legs = sim.ground_truth(start=first_day, end=first_day + timedelta(hours=20))[:burst]
    keys = set(raw_leg_keys(legs).keys)
    began = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        codes = list(pool.map(lambda leg: client.post(URL_PATH, json=leg, headers=_auth()).status_code, legs))
    accepted_s = time.perf_counter() - began
    if set(codes) != {202}:
        raise SystemExit(f"burst answered {sorted(set(codes))}")
    while len(_stored(engine, keys)) < len(keys):
        if time.perf_counter() - began > ROW_DEADLINE_S:
            raise SystemExit("the burst never fully loaded")
        time.sleep(WATCH_EVERY_S)
    loaded_s = time.perf_counter() - began
    log(f"burst: {len(legs)} legs accepted in {accepted_s:.2f} s, loaded in {loaded_s:.2f} s")
    return {"legs": len(legs), "accepted_s": accepted_s, "loaded_s": loaded_s}


def _pct(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))], 3)


def table(f: dict[str, Any]) -> list[str]:
    """The human-readable summary."""
    return [
        f"push bench: {f['legs']} live legs, burst of {f['burst_legs']}",
        f"  freshness push      p50 {f['push_p50_s']:>8.3f} s   p95 {f['push_p95_s']:>8.3f} s "
        f"(goal p95 < {f['goal_p95_s']} s: {'met' if f['met_goal'] else 'NOT met'})",
        f"  freshness poll only p50 {f['poll_p50_s']:>8.3f} s   p95 {f['poll_p95_s']:>8.3f} s "
        f"(every {POLL_INTERVAL_S} s, safety {SAFETY_S} s, tick {f['poll_tick_s']} s)",
        f"  receiver: {f['accepted_legs_per_s']} legs/s accepted, {f['loaded_legs_per_s']} legs/s loaded",
    ]


if __name__ == "__main__":
    main()
