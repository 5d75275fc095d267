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

CPU seconds, which the machine's load changes far less than wall times (``details.<method>.cpu``,
summed in ``cpu_s``): the child's own (``getrusage``), by thread (the main thread exactly, the
backfill's named threads sampled from ``/proc``), the simulator process's and the Postgres cluster's
(postmaster, reaped and live children) over each child's run, and the child's own backends.
``idle_ceiling`` turns them into the best ratio an idle machine allows and names the floor that
decides it (see :func:`idle_ceiling`). ``--piece-legs`` measures another load batch size.

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/backfill_bench.py [--days 365] [--calls-per-day 800]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchlib import (
    TIMEZONE,
    BenchServer,
    ChildResult,
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
#: How often a child samples its threads' CPU times (a thread's last ~0.2 s after its final sample is
#: not counted; the sampling itself costs well under 1 % of a core).
THREAD_SAMPLE_S = 0.2
#: Clock ticks per second of /proc's CPU times.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
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
    with ThreadCpu() as cpu, make_client(args.base_url, args.page_size) as client:
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
        "cpu": cpu.figures,
    }


def run_backfill(args: argparse.Namespace) -> dict[str, Any]:
    """The real backfill path into a freshly migrated warehouse (``--mode``: overlap or sequential)."""
    from audiapro.backfill import backfill_windows, plan_backfill

    first, last, step, now = plan_args(args)
    tenant = tenant_settings()
    engine = migrated_engine(args.url)
    totals = {"fetched": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "pieces": 0}
    apply_levers(args)
    backends = backends_cpu_s(engine)
    rss_before = own_rss_mb()
    began = time.perf_counter()
    with ThreadCpu() as cpu:
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
    cpu.figures["postgres_backends_s"] = spent_since(backends, backends_cpu_s(engine))
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
        "cpu": cpu.figures,
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


# --- CPU accounting ---------------------------------------------------------------------------------


def proc_cpu_s(pid: int | str, *, task: int | None = None, children: bool = False) -> float:
    """CPU seconds (user + system) of process ``pid`` or one of its threads, from ``/proc``.

    Args:
        pid: A process id, or ``"self"``.
        task: A thread's native id: that thread alone.
        children: Add the CPU of the process's exited children it has waited for (Postgres' postmaster
            reaps every backend, so this keeps the work of closed connections).

    Returns:
        The seconds, 0.0 when the process is gone or there is no ``/proc``.
    """
    fields = _stat_fields(f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat")
    if not fields:
        return 0.0
    # After the command: state, ppid, ... utime, stime, cutime, cstime are the 12th to 15th.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _stat_fields(path: str) -> list[str]:
    """The fields of a ``/proc`` stat file after the command's closing parenthesis ([] if unreadable)."""
    try:
        stat = Path(path).read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def cluster_cpu_s(postmaster: int) -> float:
    """CPU seconds of a whole Postgres cluster so far: the postmaster with the children it reaped
    (closed connections), and every live child (backends, WAL writer, checkpointer, autovacuum).

    A child that exits between the two reads is missed (a few milliseconds of a short connection).
    """
    total = proc_cpu_s(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(f"/proc/{entry.name}/stat")
            if fields and int(fields[1]) == postmaster:
                total += proc_cpu_s(entry.name)
    return total


def postmaster_pid(url: str) -> int | None:
    """The pid of the postmaster serving ``url`` (the parent of a backend), None if not on this host."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            backend = int(conn.scalar(sa.text("SELECT pg_backend_pid()")))
    finally:
        engine.dispose()
    fields = _stat_fields(f"/proc/{backend}/stat")
    return int(fields[1]) if fields else None


class ThreadCpu:
    """This process's CPU by thread name while a block runs: the main thread exactly
    (``time.thread_time``), the others sampled every :data:`THREAD_SAMPLE_S` (a thread's CPU after
    its last sample is missed, which ``unsampled_s`` shows), and the whole process (``getrusage``).

    The backfill names its threads (``backfill-fetch``, ``backfill-prepare``), so the figures say
    which part of the client bounds it.
    """

    def __init__(self) -> None:
        self._latest: dict[int, tuple[str, float]] = {}
        self._before: dict[int, float] = {}  # threads already running at the start: their CPU then
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._main = self._process = 0.0
        self.figures: dict[str, Any] = {}

    def __enter__(self) -> ThreadCpu:
        self._main, self._process = time.thread_time(), _process_cpu_s()
        self._sample()
        self._before = {tid: cpu for tid, (_name, cpu) in self._latest.items()}
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        main = time.thread_time() - self._main
        self._stop.set()
        self._sampler.join()
        self._sample()
        process = _process_cpu_s() - self._process
        threads: dict[str, float] = {"main": main}
        for tid, (name, cpu) in self._latest.items():
            spent = cpu - self._before.get(tid, 0.0)  # only what the block spent
            if spent > 0:
                threads[name] = threads.get(name, 0.0) + spent
        self.figures = {
            "process_s": round(process, 2),
            "threads_s": {name: round(cpu, 2) for name, cpu in sorted(threads.items())},
            "unsampled_s": round(process - sum(threads.values()), 2),
        }

    def _run(self) -> None:
        while not self._stop.wait(THREAD_SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        main = threading.main_thread()
        for thread in threading.enumerate():
            if thread is main or thread is self._sampler or thread.native_id is None:
                continue
            cpu = proc_cpu_s("self", task=thread.native_id)
            if cpu:
                self._latest[thread.native_id] = (thread.name, cpu)


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backends_cpu_s(engine: Any) -> dict[int, float]:
    """CPU seconds so far of every Postgres backend connected to ``engine``'s database, by pid."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        pids = conn.scalars(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
    return {int(pid): proc_cpu_s(pid) for pid in pids}


def spent_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends of ``after`` spent since ``before`` (new backends: all of theirs)."""
    return round(sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()), 2)


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
def served_simulator(days: int, calls_per_day: int) -> Iterator[tuple[str, int, datetime, int]]:
    """The simulator in a freshly started interpreter (``spawn``): its base URL, legs, ``now``, pid."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_simulator, args=(days, calls_per_day, theirs), name="ucm-simulator"
    )
    process.start()
    try:
        base_url, truth, now = ours.recv()
        assert process.pid is not None
        yield base_url, truth, datetime.fromisoformat(now), process.pid
    finally:
        ours.send("stop")
        process.join()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The figures of one run: the simulator served by a process of its own, each method in a child."""
    server = BenchServer.from_option(args.database_url)
    log(f"generating {args.days} days at {args.calls_per_day} calls/weekday (not timed) ...")
    began = time.perf_counter()
    with served_simulator(args.days, args.calls_per_day) as (base_url, truth, now, sim_pid):
        log(f"  {truth:,} legs in {time.perf_counter() - began:.1f} s")
        meter = CpuMeter(sim_pid, postmaster_pid(server.url))
        return measured(args, server, Served(base_url, truth, now, meter))


@dataclass(frozen=True)
class CpuMeter:
    """Measures the CPU the simulator and Postgres spend while one child runs (see :meth:`run`)."""

    simulator_pid: int
    postmaster_pid: int | None

    def run(self, args: list[str]) -> ChildResult:
        """:func:`run_child_logged`, its figures' ``cpu`` completed with the simulator's and
        Postgres' seconds and a ``bound`` summary (cores used in total and per process kind)."""
        simulator, postgres = self._readings()
        result = run_child_logged(SCRIPT, args)
        simulator_after, postgres_after = self._readings()
        cpu = dict(result.figures.get("cpu", {}))
        cpu["simulator_s"] = round(simulator_after - simulator, 2)
        if postgres is not None and postgres_after is not None:
            cpu["postgres_s"] = round(postgres_after - postgres, 2)
        cpu["cores"] = cores_used(cpu, result.figures["seconds"])
        result.figures["cpu"] = cpu
        return result

    def _readings(self) -> tuple[float, float | None]:
        postgres = None if self.postmaster_pid is None else cluster_cpu_s(self.postmaster_pid)
        return proc_cpu_s(self.simulator_pid), postgres


def cores_used(cpu: dict[str, Any], seconds: float) -> dict[str, float]:
    """CPU seconds per wall second of the timed part: the client process, each of its threads, the
    simulator, Postgres and all together (2.0 on this 2-core machine is the ceiling)."""
    if seconds <= 0:
        return {}
    parts = {"client": cpu.get("process_s", 0.0), "simulator": cpu["simulator_s"]}
    parts["postgres"] = cpu.get("postgres_s", 0.0)
    cores = {name: round(value / seconds, 2) for name, value in parts.items()}
    cores |= {f"thread_{name}": round(v / seconds, 2) for name, v in cpu.get("threads_s", {}).items()}
    cores["total"] = round(sum(parts.values()) / seconds, 2)
    return cores


@dataclass(frozen=True)
class Served:
    """The simulator a run measures against: its URL, legs, clock and the CPU meter."""

    base_url: str
    truth: int
    now: datetime
    meter: CpuMeter


def measured(args: argparse.Namespace, server: BenchServer, served: Served) -> dict[str, Any]:
    """Every measured run against the simulator served at ``base_url``; the figures."""
    base_url, truth, now, meter = served.base_url, served.truth, served.now, served.meter
    with scratch_database(server.url, "bench_backfill") as url:
        windows, common = planned(url, args, base_url, now, args.window_days)
        log(f"fetch-only: {windows} windows of {args.window_days} days ...")
        fetch = meter.run(["--run", "fetch", *common])
        log("backfill: plan_backfill + backfill_windows (fetch ahead) into Postgres ...")
        backfill = meter.run(["--run", "backfill", "--url", url, *common, *lever_args(args)])
    sequential = None
    if args.sequential:
        log("whole windows: each fetched completely, then loaded in one transaction (as before) ...")
        sequential = backfill_child(server.url, args, served, args.window_days, "sequential")
    per_size = {args.window_days: size_figures(backfill)}
    for days in window_sizes(args.rss_window_days):
        if days not in per_size:
            log(f"backfill with windows of {days} days ...")
            per_size[days] = size_figures(backfill_child(server.url, args, served, days, "overlap"))
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
        "cpu_s": {"fetch_only": cpu_summary(fetch.figures), "backfill": cpu_summary(backfill.figures)},
        "idle_ceiling": idle_ceiling(fetch.figures.get("cpu", {}), backfill.figures.get("cpu", {})),
        "details": {
            "fetch_only": fetch.figures,
            "backfill": backfill.figures,
            "sequential": None if sequential is None else sequential.figures_with_rss(),
            "per_window_days": {str(days): f for days, f in sorted(per_size.items())},
        },
        "machine": server.machine(),
    }


def cpu_summary(figures: dict[str, Any]) -> dict[str, float]:
    """CPU seconds of one method's timed part by process (client, simulator, Postgres) and in all."""
    cpu = figures.get("cpu", {})
    parts = {name: cpu.get(f"{key}_s") for name, key in CPU_PARTS.items()}
    known = {name: value for name, value in parts.items() if value is not None}
    return {**known, "total": round(sum(known.values()), 2), "wall": figures["seconds"]}


#: The processes whose CPU the summary adds up, and the key each is reported under.
CPU_PARTS = {"client": "process", "simulator": "simulator", "postgres": "postgres"}


def idle_ceiling(fetch: dict[str, Any], backfill: dict[str, Any], cores: int | None = None) -> dict[str, Any]:
    """What the CPU seconds allow on an idle machine: the best backfill / fetch-only ratio and its bound.

    Wall times follow the machine's load (other jobs take the cores a backfill needs); CPU seconds do
    not. Fetch-only is a ping-pong (the client waits for each page, the simulator for each request),
    so on an idle machine it takes about its client's plus its simulator's CPU seconds. The backfill
    cannot be faster than the largest of: its client process's CPU (its threads' Python work takes
    turns on one interpreter lock), everything's CPU over the cores, and its pager's chain (pager
    thread plus simulator, the same ping-pong). The ratio of the two is an upper bound (it assumes
    perfect overlap); ``bound`` names the floor that decides it.

    Args:
        fetch: Fetch-only's ``cpu`` figures.
        backfill: The backfill's ``cpu`` figures.
        cores: CPUs of the machine (default: this one's).
    """
    cores = cores or os.cpu_count() or 1
    threads = backfill.get("threads_s", {})
    if not fetch or not backfill or FETCH_THREAD_NAME not in threads:
        return {}
    chain = fetch["process_s"] + fetch["simulator_s"]
    total = backfill["process_s"] + backfill["simulator_s"] + backfill.get("postgres_s", 0.0)
    floors = {
        "client_interpreter": backfill["process_s"],
        "cores": total / cores,
        "pager_chain": threads[FETCH_THREAD_NAME] + backfill["simulator_s"],
    }
    bound = max(floors, key=floors.__getitem__)
    return {
        "fetch_only_s": round(chain, 2),
        "backfill_floor_s": {name: round(value, 2) for name, value in floors.items()},
        "bound": bound,
        "ratio": round(chain / floors[bound], 3) if floors[bound] else None,
    }


#: The backfill's pager thread (``audiapro.backfill.FETCH_THREAD``, named here to keep the parent
#: free of the product's imports).
FETCH_THREAD_NAME = "backfill-fetch"


def window_sizes(listed: str) -> list[int]:
    """``"1,30"`` -> ``[1, 30]`` (``""``: none)."""
    return [int(part) for part in listed.split(",") if part.strip()]


def backfill_child(server: str, args: argparse.Namespace, served: Served, window_days: int, mode: str) -> Any:
    """One more backfill child into its own fresh warehouse, with windows of ``window_days``."""
    with scratch_database(server, "bench_backfill") as url:
        _, common = planned(url, args, served.base_url, served.now, window_days)
        run = ["--run", "backfill", "--url", url, "--mode", mode, *common, *lever_args(args)]
        return served.meter.run(run)


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


def lever_args(args: argparse.Namespace) -> list[str]:
    """The lever options (``--piece-legs``) passed on to a backfill child."""
    return ["--piece-legs", str(args.piece_legs)] if args.piece_legs else []


def apply_levers(args: argparse.Namespace) -> None:
    """In a backfill child: set the levers a run measures instead of the product's defaults."""
    import audiapro.backfill as backfill

    if args.piece_legs:
        setattr(backfill, "LOAD_PIECE_LEGS", args.piece_legs)  # noqa: B010 - a Final, on purpose


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
    for label, name in (("fetch-only", "fetch_only"), ("backfill", "backfill")):
        cpu = figures["cpu_s"][name]
        parts = ", ".join(f"{part} {cpu[part]:.1f}" for part in CPU_PARTS if part in cpu)
        yield f"  CPU s of {label}: {parts}; total {cpu['total']:.1f} over {cpu['wall']:.1f} s wall"
    ceiling = figures["idle_ceiling"]
    if ceiling:
        yield (
            f"  idle-machine ceiling from CPU seconds: backfill / fetch-only <= {ceiling['ratio']} "
            f"(bound: {ceiling['bound']})"
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
    parser.add_argument(
        "--piece-legs", type=int, help="legs per load transaction (default: the backfill's LOAD_PIECE_LEGS)"
    )
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
