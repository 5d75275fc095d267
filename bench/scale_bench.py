"""Scale benchmark: poll ticks of 1 to 1,000 simulated PBXs through real deployments and workers,
with one and two workers, and the freshness of live calls under the real 2-minute schedule.

Everything is real except the PBXs: a Prefect server on Postgres, `deployments/deploy.sh`, process
workers (each ``--limit`` flow runs at once, as one machine would), `poll-cdrs` fanning out into
`poll-shard` runs, a Postgres warehouse. The PBXs are one in-process multi-tenant simulator
(``audiapro.ucm.simulator.multi``): one port, ``/<tenant>/api``, each tenant its own password and
clock.

* **Tick**: for each size (``--sizes``, default 1,100,1000) the tenants' first tick loads their
  history (not timed), then, with 1 worker and then with 2: an *idle* tick (no PBX clock moved) and
  a *busy* tick (every PBX clock moved ``--step-minutes`` with ``--new-calls`` calls arriving in that
  time). A tick's figure is its run's wall time, Running to final state (``run_s``); ``e2e_s`` adds
  the wait for a worker to pick the run up (``PREFECT_WORKER_QUERY_SECONDS``, ``--worker-query-s``).
  The schedule is off meanwhile: only measured ticks run.
* **Freshness** (first): ``--freshness-minutes`` (default 30; 0 skips it) of live calls on
  ``--live-tenants`` real-clock PBXs with the deployment's schedule on (``--interval``, 120 s as in
  prefect.yaml): for each leg that ended in the measured span, ``loaded_at`` minus its end.

The last line is one JSON object (``tick_idle_1_tenant_s``, ``tick_idle_1000_tenants_s`` (largest
size), ``workers_2_vs_1``, ``freshness_p50_s``, ``freshness_p95_s``, ``freshness_interval_s`` ...).

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/scale_bench.py [--sizes 1,100,1000] \\
        [--freshness-minutes 30]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from benchlib import admin_url, load_average, log, machine, print_report

from audiapro.ops import processes
from audiapro.prefect_names import POLL_DEPLOYMENT, WORK_POOL
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.multi import MultiSimulator
from audiapro.warehouse.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TZ = "UTC"
DEFAULT_SIZES = "1,100,1000"
DEFAULT_NEW_CALLS = 20
DEFAULT_STEP_MINUTES = 2.0
#: History per tenant (calls a day): the first tick loads a day of it, so it is kept small.
HISTORY_CALLS_PER_DAY = 24
DEFAULT_SHARD_SIZE = 100  # flows/poll.py DEFAULT_SHARD_SIZE
#: A worker's query interval (PREFECT_WORKER_QUERY_SECONDS; Prefect's default is 10 s): how long a
#: shard run may wait for a worker to notice it (as `make up` starts its workers).
DEFAULT_WORKER_QUERY_S = 2.0
#: Flow runs one worker runs at once (as one machine's share of the pool).
DEFAULT_WORKER_LIMIT = 4
DEFAULT_INTERVAL_S = 120
DEFAULT_FRESHNESS_MINUTES = 30.0
DEFAULT_LIVE_TENANTS = 5
#: Live calls a minute on each freshness PBX, and their longest span (so most end inside the run).
LIVE_RATE = 2.0
LIVE_MAX_CALL_S = 300
SERVER_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 1800.0
#: The manual clocks stand this far behind the wall clock (as tests/wall_clock_pbx.py explains):
#: the poll window's safety margin plus room for the steps the clocks are moved.
BEHIND = timedelta(seconds=60 + 20 * 60)
SAVE_THREADS = 8
#: Tenant name prefixes of the tick and the freshness PBXs (both kinds share the simulator).
TICK_PREFIX, LIVE_PREFIX = "t", "live"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
#: Memory of one generated live call in the simulator (measured: ~30 MB for a PBX's 13,800 calls),
#: and the share of the available memory the live streams may take.
LIVE_CALL_BYTES = 2_300
LIVE_MEMORY_SHARE = 0.4
#: Port of the Postgres server the bench uses (its processes' CPU is counted apart); set by main().
PG_PORT: int | None = None
#: Wait after a tick before reading CPU times, so its flow-run processes are reaped.
REAP_WAIT_S = 3.0
#: Before a measured tick the Prefect server must have drained what the previous one left it (a
#: first tick of 1,000 tenants, and their 1,000 block creations, leave it minutes of events to
#: record): its CPU over ``SETTLE_SAMPLE_S`` must fall below this share of one core...
SETTLED_SERVER_CORES = 0.15
SETTLE_SAMPLE_S = 5.0
#: ...or the bench measures anyway after this long (and reports how long it waited).
SETTLE_MAX_S = 300.0
#: Clock ticks per second of /proc's CPU times.
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Stack:
    """The Prefect server, its workers and the environment they share."""

    api_url: str
    env: dict[str, str]
    home: Path
    workers: list[tuple[processes.Tracked, subprocess.Popen[bytes]]] = field(default_factory=list)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait(what: str, ready: Any, timeout: float) -> None:
    """Poll ``ready()`` every half second; exit with a message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.5)


@contextmanager
def prefect_stack(prefect_db: str, warehouse: str, query_s: float) -> Iterator[Stack]:
    """Start a Prefect server on ``prefect_db``, deploy, and point this process at it."""
    import httpx

    asyncpg = (
        sa.make_url(prefect_db).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    )
    home = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    port = free_port()
    api_url = f"http://{HOST}:{port}/api"
    env = dict(os.environ, PREFECT_API_URL=api_url, PREFECT_HOME=str(home), DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", AUDIAPRO_DATABASE_URL=warehouse,
               PREFECT_WORKER_QUERY_SECONDS=str(query_s))  # fmt: skip
    server_env = dict(env, PREFECT_API_DATABASE_CONNECTION_URL=asyncpg, PREFECT_UI_ENABLED="false",
                      PREFECT_SERVER_LOGGING_LEVEL="WARNING")  # fmt: skip
    argv = [str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(port)]
    tracked, popen = processes.spawn(
        "server", "server", argv, env=server_env, log_path=home / "server.log", cwd=ROOT
    )
    stack = Stack(api_url=api_url, env=env, home=home)
    os.environ.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home))
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait("Prefect server", healthy, SERVER_TIMEOUT_S)
        log("deploying (deployments/deploy.sh)")
        deploy = [str(ROOT / "deployments" / "deploy.sh")]
        done = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"deploy failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        pause_other_schedules()
        yield stack
    finally:
        for worker, handle in stack.workers:
            processes.stop(worker, processes.WORKER_STOP, popen=handle)
        processes.stop(tracked, processes.SERVER_STOP, popen=popen)


def start_worker(stack: Stack, limit: int) -> None:
    """One more process worker in the pool, running at most ``limit`` flow runs at once."""
    name = f"bench-worker-{len(stack.workers) + 1}"
    argv = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", name,
            "--limit", str(limit)]  # fmt: skip
    stack.workers.append(
        processes.spawn(name, "worker", argv, env=stack.env, log_path=stack.home / f"{name}.log", cwd=ROOT)
    )
    from prefect.client.orchestration import get_client

    started = datetime.now(UTC)

    def heartbeat() -> bool:  # this process's own, not one left by an earlier worker of the name
        with get_client(sync_client=True) as client:
            return any(w.name == name and w.last_heartbeat_time and w.last_heartbeat_time >= started
                       for w in client.read_workers_for_work_pool(WORK_POOL))  # fmt: skip

    wait(name, heartbeat, SERVER_TIMEOUT_S)


def stop_last_worker(stack: Stack) -> None:
    """Stop the most recently started worker."""
    tracked, handle = stack.workers.pop()
    processes.stop(tracked, processes.WORKER_STOP, popen=handle)


def pause_other_schedules() -> None:
    """Switch off every schedule but poll-cdrs' (which the bench switches itself): an hourly
    `cdr-insights` or `analyze-calls` run, or the 10-minute file pickup, would otherwise take a
    worker slot and CPU in the middle of a measured tick (one did: a 1,000-tenant busy tick's third
    shard waited two minutes for the slot an insights run held)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments():
            if (
                f"{deployment.name}/{deployment.name}" == POLL_DEPLOYMENT
                or deployment.name in POLL_DEPLOYMENT
            ):
                continue
            for schedule in deployment.schedules:
                client.update_deployment_schedule(deployment.id, schedule.id, active=False)


def poll_deployment(parameters: dict[str, Any], *, schedule_on: bool) -> UUID:
    """poll-cdrs as deployed, with ``parameters`` and its schedule switched on or off."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(POLL_DEPLOYMENT)
        client.update_deployment(deployment.id, DeploymentUpdate(parameters=parameters))
        for schedule in deployment.schedules:
            client.update_deployment_schedule(deployment.id, schedule.id, active=schedule_on)
        return deployment.id


def tree_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by this process's tree, per kind of process.

    Each live process of the tree counts its own user + system time plus that of its children it has
    waited for (/proc's cutime, cstime): a worker's finished flow-run processes are in the worker's
    figure, a running one under ``flow_run``. Postgres (the Prefect database and the warehouse) is
    not in the tree (scripts/with-postgres.sh starts it): its postmaster on ``PG_PORT`` and its
    backends count as ``postgres``. Linux only; empty elsewhere.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    parent: dict[int, int] = {}
    info: dict[int, tuple[str, float]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        info[pid] = (cmdline, sum(int(f) for f in fields[11:15]) / CLK_TCK)  # utime stime cutime cstime
    postmaster = {pid for pid, (cmdline, _) in info.items()
                  if PG_PORT and "postgres" in cmdline and f" -p {PG_PORT} " in cmdline}  # fmt: skip
    totals: dict[str, float] = {}
    for pid in _descendants({os.getpid()}, parent):
        cmdline, seconds = info[pid]
        server = " server start" in cmdline or "uvicorn" in cmdline
        kind = ("bench" if pid == os.getpid() else "server" if server
                else "worker" if " worker start" in cmdline else "flow_run")  # fmt: skip
        totals[kind] = totals.get(kind, 0.0) + seconds
    for pid in _descendants(postmaster, parent) if postmaster else set():
        totals["postgres"] = totals.get("postgres", 0.0) + info[pid][1]
    return totals


def _descendants(roots: set[int], parent: dict[int, int]) -> set[int]:
    """``roots`` and every process below them."""
    mine = set(roots)
    grew = True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in mine} - mine
        mine |= more
        grew = bool(more)
    return mine


def cpu_since(before: dict[str, float], tenants: int) -> dict[str, Any]:
    """CPU seconds of the tree since ``before`` (:func:`tree_cpu_s`), per kind and per tenant poll."""
    after = tree_cpu_s()
    used = {kind: round(after.get(kind, 0.0) - before.get(kind, 0.0), 1) for kind in sorted(after)}
    # A flow-run process that ended moves its time into its worker's figure: compare the total only.
    total = round(sum(after.values()) - sum(before.values()) - used.get("postgres", 0.0), 1)
    return {"cpu_s": total, "cpu_s_per_tenant": round(total / max(1, tenants), 3),
            "cpu_s_per_tenant_with_postgres": round((total + used.get("postgres", 0.0)) / max(1, tenants), 3),
            "cpu_s_by_kind": used}  # fmt: skip


def settle_server(sample_s: float = SETTLE_SAMPLE_S, max_s: float = SETTLE_MAX_S) -> float:
    """Wait until the Prefect server's CPU is below ``SETTLED_SERVER_CORES``; return the seconds waited.

    A measured tick must pay for its own bookkeeping, not for the previous tick's: the server
    records task/flow-run events in the background, after the runs that caused them have ended.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        before = tree_cpu_s().get("server", 0.0)
        time.sleep(sample_s)
        if tree_cpu_s().get("server", 0.0) - before < SETTLED_SERVER_CORES * sample_s:
            break
    return round(time.monotonic() - started, 1)


def run_tick(deployment_id: UUID, tenants: int = 1, warehouse: str | None = None) -> dict[str, Any]:
    """Create one poll-cdrs run and wait for it; its timings, state and the CPU it cost the tree."""
    from prefect.client.orchestration import get_client

    cpu_before = tree_cpu_s()
    with get_client(sync_client=True) as client:
        created = time.monotonic()
        run_id = client.create_flow_run_from_deployment(deployment_id).id
        while True:
            run = client.read_flow_run(run_id)
            state = run.state.type.value if run.state else ""
            if state in FINAL:
                break
            if time.monotonic() - created > RUN_TIMEOUT_S:
                raise SystemExit(f"tick {run.name} still {state} after {RUN_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        finished = time.monotonic()
    # Finished flow-run processes are reaped by their worker within a moment (their CPU then shows
    # up in its cutime): let that happen before reading the tree again.
    time.sleep(REAP_WAIT_S)
    run_s = (run.end_time - run.start_time).total_seconds() if run.start_time and run.end_time else None
    return {"run_s": round(run_s, 2) if run_s is not None else None, "e2e_s": round(finished - created, 2),
            "state": state, "message": (run.state.message if run.state else "") or "",
            **cpu_since(cpu_before, tenants), "timeline": tick_timeline(run, warehouse)}  # fmt: skip


def tick_timeline(tick: Any, warehouse: str | None) -> list[dict[str, Any]]:
    """When each shard of ``tick`` was created, handed to a worker, running, polling and done.

    Seconds from the tick's start, one row per shard run (the tick itself first): ``created``
    (``run_deployment``), ``pending`` (a worker took it: its query interval), ``running`` (its
    process started and the flow began: process start-up), ``first_poll`` / ``last_poll`` (its first
    tenant's ingest run began / its last one finished, from the warehouse's ``ingest_runs``) and
    ``end``. Where a shard waited is what the gaps between these say.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    if tick.start_time is None:
        return []
    origin = tick.start_time

    def at(moment: datetime | None) -> float | None:
        return round((moment - origin).total_seconds(), 1) if moment else None

    with get_client(sync_client=True) as client:
        shards = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=f"{tick.name}-shard-"))
        )
        runs = [tick, *sorted(shards, key=lambda run: run.created or origin)]
        pending = {run.id: min((s.timestamp for s in client.read_flow_run_states(run.id)
                                if s.type.value == "PENDING"), default=None) for run in runs}  # fmt: skip
    polls = _poll_times(warehouse, [str(run.id) for run in runs]) if warehouse else {}
    return [{"run": run.name, "created": at(run.created), "pending": at(pending[run.id]),
             "running": at(run.start_time), "first_poll": at(polls.get(str(run.id), (None, None))[0]),
             "last_poll": at(polls.get(str(run.id), (None, None))[1]), "end": at(run.end_time)}
            for run in runs]  # fmt: skip


def _poll_times(warehouse: str, run_ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    """First start and last finish of the ingest runs of each flow run id."""
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            query = sa.text(
                "SELECT flow_run_id, min(started_at), max(finished_at) FROM ingest_runs "
                "WHERE flow_run_id = ANY(:ids) GROUP BY flow_run_id"
            )
            rows = conn.execute(query, {"ids": run_ids}).all()
    finally:
        engine.dispose()
    return {row[0]: (row[1], row[2]) for row in rows}


def affordable_live_rate(per_minute: float, tenants: int, now: datetime | None = None) -> float:
    """``per_minute``, lowered (and said so) where the simulators' live streams would not fit in
    ``LIVE_MEMORY_SHARE`` of the machine's memory.

    The simulator generates a PBX's whole day of live calls when a window first touches it: the
    calls until midnight UTC at ``per_minute``, ~``LIVE_CALL_BYTES`` each, for every tenant. 1,000
    tenants at 10 a minute early in the day are ~30 GB (the kernel killed such a run).
    """
    now = now or datetime.now(UTC)
    minutes_left = max(1.0, (24 * 60) - (now.hour * 60 + now.minute))
    budget = LIVE_MEMORY_SHARE * _available_memory()
    need = tenants * per_minute * minutes_left * LIVE_CALL_BYTES
    if not budget or need <= budget:
        return per_minute
    lowered = per_minute * budget / need
    log(f"live calls lowered to {lowered:.2f} a minute per PBX (from {per_minute:g}): {tenants} PBXs' "
        f"live streams until midnight UTC would need {need / 2**30:.1f} GiB")  # fmt: skip
    return lowered


def _available_memory() -> float:
    """MemAvailable from /proc/meminfo in bytes (0 where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def manual_pbx(seed: int, password: str, live_per_minute: float) -> UcmSimulator:
    """A manual-clock PBX whose history ends today by the wall clock, live calls from its clock's start."""
    now = datetime.now(UTC).replace(microsecond=0) - BEHIND
    return UcmSimulator(SimulatorConfig(
        seed=seed, tz=TZ, start=(now - timedelta(days=2)).date(), days=3, weekend_factor=1.0, clock="manual",
        now=now, calls_per_day=HISTORY_CALLS_PER_DAY, password=password, live_rate=live_per_minute,
        live_start=now, max_call_seconds=LIVE_MAX_CALL_S,
    ))  # fmt: skip


def add_tenants(multi: MultiSimulator, url: str, count: int, *, prefix: str, make: Any) -> list[str]:
    """Serve ``count`` more PBXs and save a CloudUCM block for each (in parallel: 1,000 take a while)."""
    from pydantic import SecretStr

    from blocks.clouducm import CloudUCM

    port = int(url.rsplit(":", 1)[1])
    start = len([n for n in multi.names if n.startswith(prefix)])
    names = [f"{prefix}{i:04d}" for i in range(start, start + count)]

    def save(name: str) -> None:
        password = f"Pa55-{name}!"
        multi.add(name, make(len(multi.names), password))
        CloudUCM(host=HOST, port=port, scheme="http", timezone=TZ, password=SecretStr(password),
                 api_path=multi.api_path(name)).save(name, overwrite=True)  # fmt: skip

    if names:
        # The first save registers the block type and schema and makes the server's encryption key;
        # done by several threads at once, those first writes collide.
        save(names[0])
    with ThreadPoolExecutor(SAVE_THREADS) as pool:
        list(pool.map(save, names[1:]))
    return names


def disable_tenants(names: list[str]) -> None:
    """Take tenants out of the poll (``enabled=False`` on their blocks)."""
    from blocks.clouducm import load_tenant

    def off(name: str) -> None:
        block = load_tenant(name)
        block.enabled = False
        block.save(name, overwrite=True)

    with ThreadPoolExecutor(SAVE_THREADS) as pool:
        list(pool.map(off, names))


def legs(warehouse: str) -> int:
    """Legs in the warehouse."""
    engine = sa.create_engine(warehouse)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM cdr_legs")) or 0)
    finally:
        engine.dispose()


def tick_bench(
    args: argparse.Namespace, stack: Stack, multi: MultiSimulator, url: str, warehouse: str
) -> dict[str, Any]:
    """Idle and busy ticks for each size, with 1 and then 2 workers."""
    # The tick waits for all of its shards (up to the bench's own run timeout): a first tick of 1,000
    # tenants outlasts the default 300 s, and shards it gave up would run on beside the measured ticks.
    params = {"analyze": False, "shard_size": args.shard_size, "parallel_shards": parallel_shards(args, 1),
              "shard_wait_s": RUN_TIMEOUT_S}  # fmt: skip
    deployment = poll_deployment(params, schedule_on=False)
    live_per_minute = affordable_live_rate(args.new_calls / args.step_minutes, max(args.sizes))
    args.new_calls = round(live_per_minute * args.step_minutes, 2)  # what the report then says
    results: dict[str, Any] = {}
    if not stack.workers:
        start_worker(stack, args.worker_limit)
    for size in sorted(args.sizes):
        have = len([name for name in multi.names if name.startswith(TICK_PREFIX)])
        log(f"size {size}: adding {size - have} tenants")

        def make(index: int, password: str) -> UcmSimulator:
            return manual_pbx(1000 + index, password, live_per_minute)

        add_tenants(multi, url, size - have, prefix=TICK_PREFIX, make=make)
        warm = run_tick(deployment, size, warehouse)  # loads the new tenants' first day
        log(f"size {size}: first tick {warm}")
        per_workers: dict[str, Any] = {}
        for workers in range(1, args.max_workers + 1):
            while len(stack.workers) < workers:
                start_worker(stack, args.worker_limit)
            poll_deployment({**params, "parallel_shards": parallel_shards(args, workers)}, schedule_on=False)
            before = legs(warehouse)
            settled_s = settle_server(max_s=args.settle_max_s)
            idle = {**run_tick(deployment, size, warehouse), "settle_s": settled_s}
            for name in multi.names:
                if name.startswith(TICK_PREFIX):
                    multi[name].clock.advance(args.step_minutes * 60)
            busy = run_tick(deployment, size, warehouse)
            busy["legs_loaded"] = legs(warehouse) - before
            per_workers[f"workers_{workers}"] = {"idle": idle, "busy": busy}
            log(f"size {size}, {workers} worker(s): idle {idle}, busy {busy}")
        results[str(size)] = {"first_tick": warm, **per_workers}
        log(f"PARTIAL size {size} {json.dumps(results[str(size)])}")
        stop_last_worker(stack)
    return results


def parallel_shards(args: argparse.Namespace, workers: int) -> int:
    """Shards per tick: ``--parallel-shards``, or by default the pool's free slots (each worker's
    ``--worker-limit``, less the slot the tick itself holds), as docs/operations.md says to set it."""
    return int(args.parallel_shards or max(1, workers * args.worker_limit - 1))


def freshness_bench(
    args: argparse.Namespace, stack: Stack, multi: MultiSimulator, url: str, warehouse: str
) -> dict[str, Any]:
    """Live real-clock PBXs polled by the schedule; seconds from each leg's end to its row."""
    if len(stack.workers) < 1:
        start_worker(stack, args.worker_limit)

    def live(index: int, password: str) -> UcmSimulator:
        today = datetime.now(UTC).date()
        return UcmSimulator(SimulatorConfig(
            seed=7000 + index, tz=TZ, start=today - timedelta(days=1), days=1, clock="real",
            calls_per_day=HISTORY_CALLS_PER_DAY, password=password, live_rate=LIVE_RATE,
            live_start=datetime.now(UTC), max_call_seconds=LIVE_MAX_CALL_S,
        ))  # fmt: skip

    names = add_tenants(multi, url, args.live_tenants, prefix=LIVE_PREFIX, make=live)
    params = {"analyze": False, "shard_size": args.shard_size, "parallel_shards": parallel_shards(args, 1)}
    poll_deployment(params, schedule_on=True)
    begin = datetime.now(UTC)
    log(f"freshness: {args.live_tenants} live PBXs, schedule every {args.interval} s, for "
        f"{args.freshness_minutes} min")  # fmt: skip
    time.sleep(args.freshness_minutes * 60)
    end = datetime.now(UTC)
    poll_deployment(params, schedule_on=False)
    # Legs that ended after the first tick could have seen them and long enough before the end that
    # two more ticks ran: a leg not loaded by then counts as missing.
    low, high = begin + timedelta(seconds=args.interval), end - timedelta(seconds=2 * args.interval + 60)
    engine = sa.create_engine(warehouse)
    delays: list[float] = []
    missing = 0
    with engine.connect() as conn:
        for name in names:
            rows = conn.execute(
                sa.text("SELECT acct_id, loaded_at FROM cdr_legs WHERE tenant = :t"), {"t": name}
            )
            loaded = {str(acct): at for acct, at in rows}
            for leg in multi[name].ground_truth():
                ended = datetime.strptime(leg["end"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                if not low <= ended <= high:
                    continue
                at = loaded.get(str(leg["AcctId"]))
                if at is None:
                    missing += 1
                else:
                    delays.append((at - ended).total_seconds())
    engine.dispose()
    return {"legs": len(delays), "missing": missing, "p50_s": _percentile(delays, 50),
            "p95_s": _percentile(delays, 95), "max_s": round(max(delays), 1) if delays else None,
            "interval_s": args.interval, "minutes": args.freshness_minutes}  # fmt: skip


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def main() -> None:
    """Parse options, run the tick and freshness benches, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="tenant counts, comma-separated")
    parser.add_argument(
        "--new-calls",
        type=float,
        default=DEFAULT_NEW_CALLS,
        help="new calls per tenant per busy tick; lowered (and logged) where the simulators' live "
        "streams, generated a day at a time, would not fit in memory (see affordable_live_rate)",
    )
    parser.add_argument(
        "--step-minutes", type=float, default=DEFAULT_STEP_MINUTES, help="PBX time between ticks"
    )
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    parser.add_argument(
        "--parallel-shards", type=int, default=0, help="shards per tick; 0: the pool's free slots"
    )
    parser.add_argument("--worker-limit", type=int, default=DEFAULT_WORKER_LIMIT)
    parser.add_argument(
        "--max-workers", type=int, choices=(1, 2), default=2, help="1 skips the two-worker ticks"
    )
    parser.add_argument(
        "--worker-query-s", type=float, default=DEFAULT_WORKER_QUERY_S, help="PREFECT_WORKER_QUERY_SECONDS"
    )
    parser.add_argument(
        "--settle-max-s",
        type=float,
        default=SETTLE_MAX_S,
        help="longest wait for the Prefect server to go quiet before an idle tick",
    )
    parser.add_argument(
        "--interval", type=int, default=DEFAULT_INTERVAL_S, help="schedule of the freshness run"
    )
    parser.add_argument(
        "--freshness-minutes", type=float, default=DEFAULT_FRESHNESS_MINUTES, help="0 skips it"
    )
    parser.add_argument("--live-tenants", type=int, default=DEFAULT_LIVE_TENANTS)
    parser.add_argument("--database-url", default=None, help="Postgres server (default TEST_DATABASE_URL)")
    args = parser.parse_args()
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    server = admin_url(args.database_url)
    global PG_PORT
    PG_PORT = sa.make_url(server).port
    load_start = load_average()
    with ExitStack() as stack_exit:
        prefect_db = stack_exit.enter_context(scratch_database(server, "scale_prefect"))
        warehouse = stack_exit.enter_context(scratch_database(server, "scale_wh"))
        from audiapro.warehouse import get_engine, upgrade

        engine = get_engine(warehouse)
        upgrade(engine)
        engine.dispose()
        stack = stack_exit.enter_context(prefect_stack(prefect_db, warehouse, args.worker_query_s))
        multi = MultiSimulator()
        url = stack_exit.enter_context(multi.serve())
        # Freshness first: a run cut short by the clock still has it, and the ticks that follow
        # are logged size by size (stderr) as they complete.
        fresh = freshness_bench(args, stack, multi, url, warehouse) if args.freshness_minutes > 0 else {}
        log(f"PARTIAL freshness {json.dumps(fresh)}")
        disable_tenants([n for n in multi.names if n.startswith(LIVE_PREFIX)])
        ticks = tick_bench(args, stack, multi, url, warehouse)
    figures = summarize(args, ticks, fresh)
    figures["machine"] = machine(server, load_start)
    print_report(figures, table(ticks, fresh))


def summarize(args: argparse.Namespace, ticks: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """The JSON figures: the issue's keys first, every tick's details after."""
    largest = str(max(args.sizes))

    def idle(size: str, workers: int) -> float | None:
        return ticks[size].get(f"workers_{workers}", {}).get("idle", {}).get("run_s")

    def busy(size: str, workers: int) -> float | None:
        return ticks[size].get(f"workers_{workers}", {}).get("busy", {}).get("run_s")

    def ratio(one: float | None, two: float | None) -> float | None:
        return round(one / two, 2) if one and two else None

    return {
        "bench": "scale",
        # Each under its own name only when that size was measured; "largest" is whatever ran.
        "tick_idle_1_tenant_s": idle("1", 1) if "1" in ticks else None,
        "tick_idle_1000_tenants_s": idle("1000", 1) if "1000" in ticks else None,
        "tick_idle_largest_s": idle(largest, 1),
        "largest_size": int(largest),
        "workers_2_vs_1": ratio(busy(largest, 1), busy(largest, 2)),
        "workers_2_vs_1_idle": ratio(idle(largest, 1), idle(largest, 2)),
        "cpu_s_per_idle_tenant_poll": ticks[largest]["workers_1"]["idle"].get("cpu_s_per_tenant"),
        "freshness_p50_s": fresh.get("p50_s"),
        "freshness_p95_s": fresh.get("p95_s"),
        "freshness_interval_s": fresh.get("interval_s", args.interval),
        "freshness_minutes": fresh.get("minutes", 0),
        "settings": {
            "shard_size": args.shard_size,
            "parallel_shards": {n: parallel_shards(args, n) for n in range(1, args.max_workers + 1)},
            "worker_limit": args.worker_limit,
            "worker_query_s": args.worker_query_s,
            "new_calls": args.new_calls,
            "step_minutes": args.step_minutes,
        },
        "ticks": ticks,
        "freshness": fresh,
    }


def table(ticks: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Human-readable lines: one per size and worker count, then freshness."""
    lines = ["tenants  workers  idle run_s (e2e_s)   busy run_s (e2e_s)  legs  states  idle CPU-s/tenant"]
    for size, by in ticks.items():
        for workers in (1, 2):
            if f"workers_{workers}" not in by:
                continue
            idle, busy = by[f"workers_{workers}"]["idle"], by[f"workers_{workers}"]["busy"]
            lines.append(f"{size:>7}  {workers:>7}  {idle['run_s']!s:>10} ({idle['e2e_s']:>6})  "
                         f"{busy['run_s']!s:>10} ({busy['e2e_s']:>6})  {busy.get('legs_loaded', 0):>5}  "
                         f"{idle['state']}/{busy['state']}  {idle.get('cpu_s_per_tenant')}")  # fmt: skip
    if fresh:
        lines.append(f"freshness over {fresh['minutes']} min, schedule {fresh['interval_s']} s: "
                     f"p50 {fresh['p50_s']} s, p95 {fresh['p95_s']} s, max {fresh['max_s']} s, "
                     f"{fresh['legs']} legs, {fresh['missing']} missing")  # fmt: skip
    return lines


if __name__ == "__main__":
    main()
