"""Backfill benchmark: a year of simulated CloudUCM history (>= 500,000 legs) over loopback.

Measured in one run, each in its own child process against the same simulator, which runs in a
process of its own (started with ``spawn``: it generates and caches every day before any timing and
serves them over HTTP on 127.0.0.1):

* **fetch-only**: the UCM client (``UcmClient``, pages of ``--page-size``) fetching every window of
  the plan completely (``audiapro.windows.fetch_pieces``), loading nothing: what the PBX paging
  alone costs.
* **backfill**: the real backfill path, ``plan_backfill`` then ``backfill_windows`` into a freshly
  migrated Postgres warehouse: one background thread pages the PBX, another normalizes and renders
  the COPY text of about ``LOAD_PIECE_LEGS`` legs at a time, and the calling thread loads them (COPY
  + upsert, calls rebuilt, the window recorded done with its last legs).
* **whole windows** (``--sequential``): the backfill as it was before it streamed (for a same-run
  comparison): each window (piece) fetched completely, then normalized and loaded in one
  transaction with its ``backfill_windows`` row, no threads; off by default.
* **peak RSS per window size**: the backfill again, each in its own fresh warehouse, with every
  window length of ``--rss-window-days`` (default 1 and 30 days; ``""`` for none).

Fetch-only and backfill use the same windows (``--window-days``, default 7). Legs/s are legs
fetched per second of each child's timed part. Peak RSS is each child's own high-water mark
(``VmHWM``, see :func:`own_peak_rss_mb`); the kernel's ``ru_maxrss`` from ``os.wait4`` is reported
beside it (``rusage_peak_rss_mb``): it includes the size of the process the child was forked from,
which is why the simulator does not live in the parent. The last line of the output is one JSON
object with the figures. Targets (issue 17): backfill >= 0.6 of fetch-only, peak RSS < 300 MB.

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/backfill_bench.py [--days 365] [--calls-per-day 800]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchlib import (
    TIMEZONE,
    BenchServer,
    add_common_options,
    bench_main,
    count_rows,
    log,
    migrated_engine,
    rate,
    run_child_logged,
    tenant_settings,
)

from audiapro.warehouse.scratch import scratch_database

SCRIPT = Path(__file__).resolve()
SEED = 2027
FIRST_DAY = date(2025, 1, 1)
DEFAULT_DAYS = 365
#: With the simulator's default mix (weekends at 35 %), 800 calls per weekday give ~535,000 legs a year.
DEFAULT_CALLS_PER_DAY = 800
DEFAULT_WINDOW_DAYS = 7
DEFAULT_PAGE_SIZE = 1000
PASSWORD = "bench-Pa55word"
MIN_LEGS_FOR_ISSUE = 500_000
DEFAULT_RSS_WINDOW_DAYS = "1,30"
TARGET_VS_FETCH_ONLY = 0.6
TARGET_RSS_MB = 300.0


def simulator_config(days: int, calls_per_day: int) -> Any:
    from audiapro.ucm.simulator import SimulatorConfig

    return SimulatorConfig(
        seed=SEED,
        calls_per_day=calls_per_day,
        start=FIRST_DAY,
        days=days,
        tz=TIMEZONE,
        password=PASSWORD,
        day_cache_size=days + 10,  # every generated day stays cached: both runs read the same data
        control_endpoints=False,
    )


def make_client(base_url: str, page_size: int) -> Any:
    from pydantic import SecretStr

    from audiapro.ucm.client import UcmClient, UcmConnection

    connection = UcmConnection.from_url(
        base_url, api_user="cdrapi", password=SecretStr(PASSWORD), timezone=TIMEZONE, page_size=page_size
    )
    return UcmClient(connection)


def plan_args(args: argparse.Namespace) -> tuple[date, date, timedelta, datetime]:
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    return FIRST_DAY, last_day, timedelta(days=args.window_days), datetime.fromisoformat(args.now)


# --- child processes -------------------------------------------------------------------------------


def run_fetch(args: argparse.Namespace) -> dict[str, Any]:
    """Fetch-only: every window of the plan, completely, through the client; nothing is loaded."""
    from audiapro.windows import Window, fetch_pieces

    windows = [
        Window(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in json.loads(args.windows)
    ]
    legs = pieces = 0
    rss_before = own_rss_mb()
    began = time.perf_counter()
    with make_client(args.base_url, args.page_size) as client:
        for window in windows:
            for _, fetched in fetch_pieces(client, window):
                legs += len(fetched.legs)
                pieces += 1
    seconds = time.perf_counter() - began
    return {
        "seconds": round(seconds, 3),
        "legs": legs,
        "windows": len(windows),
        "pieces": pieces,
        "rss_before_mb": rss_before,
        "peak_rss_mb": own_peak_rss_mb(),
    }


def run_backfill(args: argparse.Namespace) -> dict[str, Any]:
    """The real backfill path into a freshly migrated warehouse (``--mode``: overlap or sequential)."""
    from audiapro.backfill import backfill_windows, plan_backfill

    first, last, step, now = plan_args(args)
    tenant = tenant_settings()
    engine = migrated_engine(args.url)
    totals = {"fetched": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "pieces": 0}
    rss_before = own_rss_mb()
    began = time.perf_counter()
    plan = plan_backfill(engine, tenant, first, last, window=step, now=now)
    with make_client(args.base_url, args.page_size) as client:
        outcomes: Iterator[Any]
        if args.mode == "sequential":
            outcomes = (whole_window(client, engine, tenant, window) for window in plan.windows)
        else:
            outcomes = backfill_windows(
                client, engine, tenant, plan.windows, settled_until=plan.settled_until
            )
        for outcome in outcomes:
            for name in totals:
                totals[name] += outcome[name] if isinstance(outcome, dict) else getattr(outcome, name)
    seconds = time.perf_counter() - began
    legs, calls, done = count_rows(engine, "cdr_legs", "calls", "backfill_windows")
    engine.dispose()
    windows = [[w.start.isoformat(), w.end.isoformat()] for w in plan.windows]
    return {
        "seconds": round(seconds, 3),
        "windows": len(plan.windows),
        "same_windows": windows == json.loads(args.windows),
        **totals,
        "legs_in_db": legs,
        "calls_in_db": calls,
        "windows_done": done,
        "rss_before_mb": rss_before,
        "peak_rss_mb": own_peak_rss_mb(),
    }


def whole_window(client: Any, engine: Any, tenant: Any, window: Any) -> dict[str, int]:
    """One window the way the backfill loaded it before streaming: each piece fetched completely,
    then zone-checked, normalized and loaded in one transaction that records it done (all settled)."""
    from audiapro.backfill import mark_piece_done
    from audiapro.ingest import load_window
    from audiapro.warehouse import tenant_write_lock
    from audiapro.windows import fetch_pieces

    totals = dict.fromkeys(("fetched", "inserted", "updated", "unchanged", "rejected", "pieces"), 0)
    for piece, legs in fetch_pieces(client, window):
        hook = mark_piece_done(tenant.name, piece, None)
        with tenant_write_lock(engine, tenant.name):
            summary = load_window(
                engine, tenant, legs, piece.start, piece.end, kind="backfill", on_commit=hook
            )
        for name in ("fetched", "inserted", "updated", "unchanged", "rejected"):
            totals[name] += getattr(summary, name)
        totals["pieces"] += 1
    return totals


#: The methods a child process runs, by their ``--run`` name.
RUNNERS = {"fetch": run_fetch, "backfill": run_backfill}


# --- parent ----------------------------------------------------------------------------------------


def warm_up(sim: Any, days: int) -> int:
    """Generate (and cache) every day of history; return the number of legs the PBX holds."""
    legs = 0
    start = datetime.combine(FIRST_DAY, datetime.min.time(), sim.zone).astimezone(UTC)
    end = sim.history_end_utc
    while start < end:
        piece_end = min(start + timedelta(days=30), end)
        legs += len(sim.true_start_utc(start=start, end=piece_end - timedelta(seconds=1)))
        start = piece_end
    return legs


def own_rss_mb() -> float:
    """This process's resident set size now, in MB (``VmRSS``; 0 where there is no /proc)."""
    return _proc_status_mb("VmRSS")


def _proc_status_mb(field: str) -> float:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return round(int(line.split()[1]) / 1024, 1)


def own_peak_rss_mb() -> float:
    """This process's peak resident set size in MB: the high-water mark of its own address space.

    Read from ``VmHWM`` in ``/proc/self/status``, which starts at zero with the address space that
    ``exec`` creates. ``ru_maxrss`` (what ``os.wait4`` reports) does not: the kernel carries the
    address space that ``exec`` replaced (the parent's, copied by fork) into it, so a child of a large
    parent reports at least the parent's size. Falls back to ``ru_maxrss`` where there is no /proc.
    """
    if not Path("/proc/self/status").exists():
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return _proc_status_mb("VmHWM")


def serve_simulator(days: int, calls_per_day: int, control: Connection) -> None:
    """Simulator process: generate the history, serve it, send ``(url, legs, now)``, serve until told.

    The history lives here, not in the bench's parent: children the parent starts would otherwise
    begin with the parent's size as their peak RSS (see :func:`own_peak_rss_mb`).
    """
    from audiapro.ucm.simulator import UcmSimulator

    sim = UcmSimulator(simulator_config(days, calls_per_day))
    truth = warm_up(sim, days)
    # A day after the history ends: every call has long ended, so every window is recorded done.
    now = sim.history_end_utc + timedelta(days=1)
    sim.clock.set(now)
    handle = sim.start()
    try:
        control.send((handle.base_url, truth, now.isoformat()))
        control.recv()  # the parent's stop (or EOFError when it went away)
    except EOFError:
        pass
    finally:
        handle.stop()


@contextmanager
def served_simulator(days: int, calls_per_day: int) -> Iterator[tuple[str, int, datetime]]:
    """The simulator in a freshly started interpreter (``spawn``): its base URL, legs and ``now``."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_simulator, args=(days, calls_per_day, theirs), name="ucm-simulator"
    )
    process.start()
    try:
        base_url, truth, now = ours.recv()
        yield base_url, truth, datetime.fromisoformat(now)
    finally:
        ours.send("stop")
        process.join()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The figures of one run: the simulator served by a process of its own, each method in a child."""
    server = BenchServer.from_option(args.database_url)
    log(f"generating {args.days} days at {args.calls_per_day} calls/weekday (not timed) ...")
    began = time.perf_counter()
    with served_simulator(args.days, args.calls_per_day) as (base_url, truth, now):
        log(f"  {truth:,} legs in {time.perf_counter() - began:.1f} s")
        return measured(args, server, base_url, truth, now)


def measured(
    args: argparse.Namespace, server: BenchServer, base_url: str, truth: int, now: datetime
) -> dict[str, Any]:
    """Every measured run against the simulator served at ``base_url``; the figures."""
    with scratch_database(server.url, "bench_backfill") as url:
        windows, common = planned(url, args, base_url, now, args.window_days)
        log(f"fetch-only: {windows} windows of {args.window_days} days ...")
        fetch = run_child_logged(SCRIPT, ["--run", "fetch", *common])
        log("backfill: plan_backfill + backfill_windows (fetch ahead) into Postgres ...")
        backfill = run_child_logged(SCRIPT, ["--run", "backfill", "--url", url, *common])
    sequential = None
    if args.sequential:
        log("whole windows: each fetched completely, then loaded in one transaction (as before) ...")
        sequential = backfill_child(server.url, args, base_url, now, args.window_days, "sequential")
    per_size = {args.window_days: size_figures(backfill)}
    for days in window_sizes(args.rss_window_days):
        if days not in per_size:
            log(f"backfill with windows of {days} days ...")
            per_size[days] = size_figures(backfill_child(server.url, args, base_url, now, days, "overlap"))
    fetch_rate = rate(fetch.figures["legs"], fetch.figures["seconds"])
    backfill_rate = rate(backfill.figures["fetched"], backfill.figures["seconds"])
    return {
        "bench": "backfill",
        "days": args.days,
        "calls_per_day": args.calls_per_day,
        "window_days": args.window_days,
        "page_size": args.page_size,
        "windows": windows,
        "legs": truth,
        "backfill_legs_per_s": backfill_rate,
        "fetch_only_legs_per_s": fetch_rate,
        "backfill_vs_fetch_only": round(backfill_rate / fetch_rate, 3) if fetch_rate else None,
        "backfill_seconds": backfill.figures["seconds"],
        "fetch_only_seconds": fetch.figures["seconds"],
        "backfill_peak_rss_mb": backfill.figures["peak_rss_mb"],
        "fetch_only_peak_rss_mb": fetch.figures["peak_rss_mb"],
        "rusage_peak_rss_mb": {
            "fetch_only": round(fetch.peak_rss_mb, 1),
            "backfill": round(backfill.peak_rss_mb, 1),
        },
        "issue_min_legs_met": truth >= MIN_LEGS_FOR_ISSUE,
        "sequential_vs_fetch_only": (
            round(rate(sequential.figures["fetched"], sequential.figures["seconds"]) / fetch_rate, 3)
            if sequential and fetch_rate
            else None
        ),
        "peak_rss_mb_per_window_days": {str(days): f["peak_rss_mb"] for days, f in sorted(per_size.items())},
        "targets": {
            "vs_fetch_only_min": TARGET_VS_FETCH_ONLY,
            "rss_max_mb": TARGET_RSS_MB,
            "met_vs_fetch_only": bool(fetch_rate) and backfill_rate / fetch_rate >= TARGET_VS_FETCH_ONLY,
            "met_rss": all(f["peak_rss_mb"] < TARGET_RSS_MB for f in per_size.values()),
        },
        "details": {
            "fetch_only": fetch.figures,
            "backfill": backfill.figures,
            "sequential": None if sequential is None else sequential.figures_with_rss(),
            "per_window_days": {str(days): f for days, f in sorted(per_size.items())},
        },
        "machine": server.machine(),
    }


def window_sizes(listed: str) -> list[int]:
    """``"1,30"`` -> ``[1, 30]`` (``""``: none)."""
    return [int(part) for part in listed.split(",") if part.strip()]


def backfill_child(
    server: str, args: argparse.Namespace, base_url: str, now: datetime, window_days: int, mode: str
) -> Any:
    """One more backfill child into its own fresh warehouse, with windows of ``window_days``."""
    with scratch_database(server, "bench_backfill") as url:
        _, common = planned(url, args, base_url, now, window_days)
        return run_child_logged(SCRIPT, ["--run", "backfill", "--url", url, "--mode", mode, *common])


def planned(
    url: str, args: argparse.Namespace, base_url: str, now: datetime, window_days: int
) -> tuple[int, list[str]]:
    """Plan the backfill in the fresh warehouse at ``url``: its number of windows, and the options a
    child process runs that plan with (the child plans again and checks it got the same windows)."""
    from audiapro.backfill import plan_backfill

    engine = migrated_engine(url)
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    step = timedelta(days=window_days)
    plan = plan_backfill(engine, tenant_settings(), FIRST_DAY, last_day, window=step, now=now)
    engine.dispose()
    windows = json.dumps([[w.start.isoformat(), w.end.isoformat()] for w in plan.windows])
    common = ["--base-url", base_url, "--page-size", str(args.page_size), "--days", str(args.days)]
    common += ["--window-days", str(window_days), "--now", now.isoformat(), "--windows", windows]
    return len(plan.windows), common


def size_figures(result: Any) -> dict[str, Any]:
    """Seconds, legs/s, windows and peak RSS (the child's own, see :func:`own_peak_rss_mb`)."""
    figures = result.figures
    return {
        "seconds": figures["seconds"],
        "windows": figures["windows"],
        "legs_per_s": rate(figures["fetched"], figures["seconds"]),
        "peak_rss_mb": figures["peak_rss_mb"],
        "rusage_peak_rss_mb": round(result.peak_rss_mb, 1),
    }


def table_lines(figures: dict[str, Any]) -> Iterator[str]:
    """The human-readable table above the machine line and the JSON line."""
    yield (
        f"backfill benchmark: {figures['legs']:,} legs, {figures['days']} days, {figures['windows']} windows "
        f"of {figures['window_days']} days, pages of {figures['page_size']}"
    )
    for label, name in (
        ("fetch-only (client paging)", "fetch_only"),
        ("backfill (fetch + load)", "backfill"),
    ):
        yield (
            f"  {label:<27} {figures[f'{name}_seconds']:>9.2f} s "
            f"{figures[f'{name}_legs_per_s']:>10,.0f} legs/s"
            f"  peak RSS {figures[f'{name}_peak_rss_mb']:.0f} MB"
        )
    yield f"  backfill / fetch-only = {figures['backfill_vs_fetch_only']} (target >= {TARGET_VS_FETCH_ONLY})"
    if figures["sequential_vs_fetch_only"] is not None:
        yield f"  whole windows (before streaming) / fetch-only = {figures['sequential_vs_fetch_only']}"
    for days, size in figures["details"]["per_window_days"].items():
        yield (
            f"  windows of {days:>3} days: {size['windows']:>4} windows {size['legs_per_s']:>10,.0f} legs/s"
            f"  peak RSS {size['peak_rss_mb']:.0f} MB (target < {TARGET_RSS_MB:.0f})"
        )
    details = figures["details"]["backfill"]
    yield (
        f"  stored: {details['legs_in_db']:,} legs, {details['calls_in_db']:,} calls, "
        f"{details['windows_done']} windows recorded done"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days of simulated history")
    parser.add_argument("--calls-per-day", type=int, default=DEFAULT_CALLS_PER_DAY, help="calls per weekday")
    parser.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS, help="backfill window length")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="cdrapi numRecords")
    parser.add_argument(
        "--rss-window-days",
        default=DEFAULT_RSS_WINDOW_DAYS,
        help="more window lengths (days, comma list) to report the backfill's peak RSS for",
    )
    parser.add_argument("--sequential", action="store_true", help="also time whole-window loads (as before)")
    parser.add_argument("--mode", default="overlap", help=argparse.SUPPRESS)
    add_common_options(parser)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--windows", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    bench_main(parse_args(), RUNNERS, measure, table_lines)


if __name__ == "__main__":
    main()
