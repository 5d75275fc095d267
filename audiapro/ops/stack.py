"""The local stack behind `make up` / `make down`: Prefect server, deployments, worker(s), demo PBX.

``up`` starts a Prefect server on loopback (SQLite in ``$PREFECT_HOME``, or Postgres: a local
cluster it manages with ``AUDIAPRO_PREFECT_DB=postgres`` or a given URL, see
``audiapro.ops.prefect_db``), runs ``deployments/deploy.sh`` (work pool, blocks,
``prefect deploy --all``, automations), starts process workers and, when there is no tenant yet,
a live CloudUCM simulator with a ``demo`` tenant, then triggers a first poll. ``down`` stops every
process it recorded in ``$AUDIAPRO_HOME/run/`` and leaves none behind.

Usage: ``python -m audiapro.ops.stack up|down|status``. Configuration (environment):
``AUDIAPRO_PREFECT_PORT`` (4200), ``AUDIAPRO_SIM_PORT`` (8089), ``AUDIAPRO_WORKERS`` (1),
``AUDIAPRO_RUN_DIR`` (``$AUDIAPRO_HOME/run``), ``AUDIAPRO_DATABASE_URL`` (warehouse; default the
embedded SQLite file under ``AUDIAPRO_HOME``). State lives in the one home ``audiapro.home`` defines
(``AUDIAPRO_HOME``, default ``~/.audiapro``; Prefect's in ``$AUDIAPRO_HOME/prefect``), the same
the ``audiapro`` command uses from any directory.
Standard library only (plus the ``prefect``/``audiapro`` executables next to this interpreter).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiapro import home
from audiapro.ops import prefect_db, prefect_rest, processes
from audiapro.prefect_names import DEMO_TENANT, POLL_DEPLOYMENT, WORK_POOL

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_DIR_ENV = "AUDIAPRO_RUN_DIR"
HOST = "127.0.0.1"
DEFAULT_PREFECT_PORT = 4200
DEFAULT_SIM_PORT = 8089
DEFAULT_WORKERS = 1
# The demo tenant (DEMO_TENANT) `make up` manages is created when there is no tenant, re-pointed at
# the live simulator when it already exists on a loopback host (e.g. left behind by `make demo`).
DEMO_TIMEZONE = "America/New_York"
#: Same seed and volume as `make demo`, so both fill the `demo` tenant with the same calls.
SIM_SEED = 42
SIM_CALLS_PER_DAY = 400
SIM_DAYS = 2
SIM_LIVE_RATE = 1.0
SIM_PASSWORD_ENV = "AUDIAPRO_SIM_PASSWORD"
#: The admin API `make up` starts for the demo: the push receiver the demo PBX pushes to, the upload page.
DEFAULT_API_PORT = 8000
#: How the demo pusher gets the push password (never in argv).
PUSH_PASSWORD_ENV = "AUDIAPRO_PUSH_PASSWORD"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SERVER_START_TIMEOUT = 120.0
SIM_START_TIMEOUT = 30.0
DOWN_MESSAGE = "stopped by `make down`"
WORKER_READY_TIMEOUT = 60.0
#: How often a worker asks the server for runs (Prefect's default: 10 s). A tick's `poll-shard` runs
#: wait up to this for a worker to notice them; 2 s costs a worker one cheap API call every 2 s.
WORKER_QUERY_SECONDS = "2"
#: File in the run directory holding the running stack's PREFECT_API_URL: the CLI's way to find it.
API_URL_FILE = "prefect-api-url"
#: How long the CLI waits for the recorded API's health check (loopback: it answers in milliseconds).
DISCOVERY_TIMEOUT = 2.0


class StackError(RuntimeError):
    """A step of `make up` failed; the message says which and where its log is."""


@dataclass(frozen=True)
class StackConfig:
    """Where and how the local stack runs.

    Attributes:
        prefect_port: Port of the Prefect server (API and UI) on 127.0.0.1.
        sim_port: Port of the demo CloudUCM simulator on 127.0.0.1.
        api_port: Port of the admin API (push receiver, upload page) started with the demo PBX.
        workers: Number of process workers to start in the ``audiapro`` pool.
        run_dir: PID files and logs.
        bin_dir: Directory holding the ``prefect`` and ``audiapro`` executables.
    """

    prefect_port: int = DEFAULT_PREFECT_PORT
    sim_port: int = DEFAULT_SIM_PORT
    api_port: int = DEFAULT_API_PORT
    workers: int = DEFAULT_WORKERS
    run_dir: Path = field(default_factory=home.run_dir)
    bin_dir: Path = Path(sys.executable).parent

    @classmethod
    def from_env(cls) -> StackConfig:
        """Read the configuration from ``AUDIAPRO_*`` environment variables."""
        return cls(
            prefect_port=int(os.environ.get("AUDIAPRO_PREFECT_PORT", DEFAULT_PREFECT_PORT)),
            sim_port=int(os.environ.get("AUDIAPRO_SIM_PORT", DEFAULT_SIM_PORT)),
            api_port=int(os.environ.get("AUDIAPRO_API_PORT", DEFAULT_API_PORT)),
            workers=max(1, int(os.environ.get("AUDIAPRO_WORKERS", DEFAULT_WORKERS))),
            run_dir=Path(os.environ.get(RUN_DIR_ENV) or home.run_dir()),
        )

    @property
    def ui_url(self) -> str:
        """The Prefect UI."""
        return f"http://{HOST}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        """The Prefect API (``PREFECT_API_URL``)."""
        return f"{self.ui_url}/api"


def child_env(cfg: StackConfig) -> dict[str, str]:
    """Environment of every process the stack starts: local API, the one state home, no telemetry."""
    env = dict(os.environ)
    # Absolute, so flow runs started by the workers from any directory share the CLI's state.
    env[home.HOME_ENV] = str(home.audiapro_home())
    env[home.PREFECT_HOME_ENV] = str(home.prefect_home())
    env["PREFECT_API_URL"] = cfg.api_url
    env["DO_NOT_TRACK"] = "1"
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop(SIM_PASSWORD_ENV, None)
    env.pop(PUSH_PASSWORD_ENV, None)
    return env


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


def wait_for(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """Poll ``ready()`` until it is true; raise StackError naming ``what`` (and its log) on timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise StackError(f"{what} not ready after {timeout:.0f}s" + (f" (log: {log})" if log else ""))
        time.sleep(0.5)


# --- steps of `up` ------------------------------------------------------------------------------
def prepare_prefect_db(cfg: StackConfig) -> None:
    """Point the server at its database: start the managed Postgres cluster when asked for one.

    ``PREFECT_API_DATABASE_CONNECTION_URL`` set by the caller wins; otherwise ``AUDIAPRO_PREFECT_DB``
    decides (``audiapro.ops.prefect_db``). The cluster is recorded like the other processes, so
    ``make down`` stops it (after the server).
    """
    if os.environ.get(prefect_db.PREFECT_URL_ENV):
        return
    try:
        wanted = prefect_db.choice()
        if wanted == "sqlite":
            return
        if wanted == "postgres":
            cluster = prefect_db.local_cluster()
            log = cfg.run_dir / "prefect-db.log"
            prefect_db.start_cluster(cluster, log)
            pid = prefect_db.postmaster_pid(cluster)
            if pid is not None:
                tracked = processes.Tracked(name="prefect-db", kind="database", pid=pid,
                                            start_ticks=processes.start_ticks(pid) or 0)  # fmt: skip
                processes.save(cfg.run_dir, tracked)
            wanted = cluster.url
    except prefect_db.PrefectDbError as exc:
        raise StackError(str(exc)) from None
    os.environ[prefect_db.PREFECT_URL_ENV] = wanted  # every process the stack starts inherits it


def start_server(cfg: StackConfig) -> None:
    """Start `prefect server start` on loopback and wait until the API is healthy."""
    if not port_free(cfg.prefect_port):
        raise StackError(
            f"port {cfg.prefect_port} is in use: stop what listens there or set AUDIAPRO_PREFECT_PORT"
        )
    log = cfg.run_dir / "server.log"
    argv = [str(cfg.bin_dir / "prefect"), "server", "start", "--host", HOST, "--port", str(cfg.prefect_port)]
    tracked, _ = processes.spawn("server", "server", argv, env=child_env(cfg), log_path=log, cwd=PROJECT_ROOT)
    processes.save(cfg.run_dir, tracked)
    wait_for(
        "Prefect server",
        lambda: prefect_rest.healthy(cfg.api_url) or not processes.is_running(tracked),
        SERVER_START_TIMEOUT,
        log,
    )
    if not processes.is_running(tracked):
        raise StackError(f"Prefect server exited during start (log: {log})")
    record_api_url(cfg)


def record_api_url(cfg: StackConfig) -> None:
    """Write the stack's API URL into the run directory (``running_api_url`` reads it)."""
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / API_URL_FILE).write_text(f"{cfg.api_url}\n")


def running_api_url(run_dir: Path | None = None) -> str | None:
    """The API URL of the stack `make up` runs from ``run_dir`` (default: this checkout's), if healthy.

    Returns:
        The recorded URL when the file exists and the server answers its health check; else None
        (no stack, a stack that was stopped without `make down`, a hung server).
    """
    path = (run_dir or StackConfig.from_env().run_dir) / API_URL_FILE
    try:
        url = path.read_text().strip()
    except OSError:
        return None
    return url if url and prefect_rest.healthy(url, timeout=DISCOVERY_TIMEOUT) else None


def deploy(cfg: StackConfig) -> None:
    """Run deployments/deploy.sh (pool, blocks, deployments, automations) against the local API."""
    log = cfg.run_dir / "deploy.log"
    env = child_env(cfg)
    env["PATH"] = f"{cfg.bin_dir}{os.pathsep}{env.get('PATH', '')}"
    with log.open("ab") as out:
        done = subprocess.run(
            [str(PROJECT_ROOT / "deployments" / "deploy.sh")],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise StackError(f"deployments/deploy.sh failed ({done.returncode}); log: {log}")


def wants_demo_tenant(tenants: list[dict[str, Any]]) -> bool:
    """Whether the stack should run the demo PBX: no tenant yet, or a loopback ``demo`` tenant."""
    if not tenants:
        return True
    demo = next((t for t in tenants if t.get("name") == DEMO_TENANT), None)
    return demo is not None and (demo.get("data") or {}).get("host") in LOOPBACK_HOSTS


def spawn_simulator(cfg: StackConfig) -> str:
    """Start the live demo simulator with a fresh random password; return the password.

    The password reaches the simulator through an environment variable and the tenant block through
    stdin (``save_demo_tenant``): it never appears in a process list, a log or a file.
    """
    if not port_free(cfg.sim_port):
        raise StackError(f"port {cfg.sim_port} is in use: set AUDIAPRO_SIM_PORT to a free port")
    password = secrets.token_urlsafe(24)
    env = child_env(cfg)
    env[SIM_PASSWORD_ENV] = password
    argv = [str(cfg.bin_dir / "audiapro"), "simulate", "--port", str(cfg.sim_port), "--seed", str(SIM_SEED),
            "--calls", str(SIM_CALLS_PER_DAY), "--days", str(SIM_DAYS), "--tz", DEMO_TIMEZONE,
            "--live-rate", str(SIM_LIVE_RATE), "--password-env", SIM_PASSWORD_ENV]  # fmt: skip
    log = cfg.run_dir / "simulator.log"
    tracked, _ = processes.spawn("simulator", "simulator", argv, env=env, log_path=log, cwd=PROJECT_ROOT)
    processes.save(cfg.run_dir, tracked)
    return password


def save_demo_tenant(cfg: StackConfig, password: str) -> None:
    """Wait for the simulator, then (re)save the ``demo`` tenant pointing at it (password via stdin)."""
    wait_for(
        "CloudUCM simulator",
        lambda: not port_free(cfg.sim_port),
        SIM_START_TIMEOUT,
        cfg.run_dir / "simulator.log",
    )
    add = [str(cfg.bin_dir / "audiapro"), "tenant", "add", DEMO_TENANT, "--host", HOST,
           "--port", str(cfg.sim_port), "--scheme", "http", "--timezone", DEMO_TIMEZONE,
           "--password-stdin"]  # fmt: skip
    done = subprocess.run(
        add, input=f"{password}\n".encode(), env=child_env(cfg), capture_output=True, check=False
    )
    if done.returncode != 0:
        raise StackError(f"could not save the demo tenant: {done.stderr.decode(errors='replace')[-500:]}")


def start_push_demo(cfg: StackConfig) -> str | None:
    """Start the admin API and let the demo PBX push its CDRs to it; the receiver's URL.

    ``audiapro tenant push demo --rotate`` turns the receiver on and hands out a fresh password,
    which reaches the pusher (``audiapro push simulate``) through its environment only. A busy API
    port skips the push demo (the poll still fills the warehouse): None.
    """
    if not port_free(cfg.api_port):
        print(f"port {cfg.api_port} is in use: no push demo (set AUDIAPRO_API_PORT to a free port)")
        return None
    audiapro = str(cfg.bin_dir / "audiapro")
    api_argv = [audiapro, "api", "--port", str(cfg.api_port)]
    tracked, _ = processes.spawn("api", "api", api_argv, env=child_env(cfg), log_path=cfg.run_dir / "api.log",
                                 cwd=PROJECT_ROOT)  # fmt: skip
    processes.save(cfg.run_dir, tracked)
    push = [
        audiapro,
        "tenant",
        "push",
        DEMO_TENANT,
        "--rotate",
        "--base-url",
        f"http://{HOST}:{cfg.api_port}",
    ]
    done = subprocess.run(push, env=child_env(cfg), capture_output=True, check=False)
    lines = dict(line.split(": ", 1) for line in done.stdout.decode().splitlines() if ": " in line)
    if done.returncode != 0 or not {"url", "user", "password"} <= lines.keys():
        raise StackError(f"could not turn on the demo's push: {done.stderr.decode(errors='replace')[-500:]}")
    env = child_env(cfg)
    env[PUSH_PASSWORD_ENV] = lines["password"]
    sim_url = f"http://{HOST}:{cfg.sim_port}"
    pusher = [audiapro, "push", "simulate", "--sim-url", sim_url, "--url", lines["url"],
              "--user", lines["user"], "--password-env", PUSH_PASSWORD_ENV]  # fmt: skip
    tracked, _ = processes.spawn("pusher", "simulator", pusher, env=env, log_path=cfg.run_dir / "pusher.log",
                                 cwd=PROJECT_ROOT)  # fmt: skip
    processes.save(cfg.run_dir, tracked)
    return lines["url"]


def spawn_workers(cfg: StackConfig) -> None:
    """Start the process workers (the first one creates the pool if deploy.sh has not yet)."""
    env = child_env(cfg)
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", WORKER_QUERY_SECONDS)
    for index in range(1, cfg.workers + 1):
        name = f"worker-{index}"
        argv = [str(cfg.bin_dir / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process",
                "--name", f"audiapro-local-{index}"]  # fmt: skip
        log = cfg.run_dir / f"{name}.log"
        tracked, _ = processes.spawn(name, "worker", argv, env=env, log_path=log, cwd=PROJECT_ROOT)
        processes.save(cfg.run_dir, tracked)


def wait_for_workers(cfg: StackConfig) -> None:
    """Wait until the pool reports READY (a worker's heartbeat arrived)."""
    log = cfg.run_dir / "worker-1.log"
    wait_for("worker", lambda: prefect_rest.pool_ready(cfg.api_url, WORK_POOL), WORKER_READY_TIMEOUT, log)


# --- commands -----------------------------------------------------------------------------------
def up(cfg: StackConfig) -> int:
    """Start the stack (or report that it already runs). Returns the exit code."""
    running = [p for p in processes.load_all(cfg.run_dir) if processes.is_running(p)]
    if running and prefect_rest.healthy(cfg.api_url):
        record_api_url(cfg)  # a stack started before the CLI looked for this file
        print(f"stack already running ({', '.join(p.name for p in running)}): UI {cfg.ui_url}")
        return 0
    if running:
        print("stack partly running: stopping it first")
        down(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        clock = time.monotonic()
        prepare_prefect_db(cfg)
        _say(f"starting the Prefect server on {cfg.ui_url} ({_server_database()})", clock)
        start_server(cfg)
        # Simulator and workers boot while deploy.sh runs: each takes seconds just to import.
        demo = wants_demo_tenant(prefect_rest.tenant_documents(cfg.api_url))
        password = spawn_simulator(cfg) if demo else None
        spawn_workers(cfg)
        _say(
            f"deploying; starting {cfg.workers} worker(s)" + (" and the live demo PBX" if demo else ""), clock
        )
        deploy(cfg)
        push_url = None
        if password is not None:
            save_demo_tenant(cfg, password)
            push_url = start_push_demo(cfg)
        wait_for_workers(cfg)
        # The schedule's first slot may be up to two minutes away: poll once now.
        first = prefect_rest.create_run(cfg.api_url, POLL_DEPLOYMENT)
        _say("ready", clock)
    except (StackError, prefect_rest.ApiError, OSError, ValueError) as exc:
        print(f"make up failed: {exc}", file=sys.stderr)
        down(cfg)
        return 1
    except KeyboardInterrupt:
        print("make up interrupted: stopping what it started", file=sys.stderr)
        down(cfg)
        return 130
    names = [t.get("name") for t in prefect_rest.tenant_documents(cfg.api_url)]
    _print_summary(cfg, names, first, demo, push_url)
    return 0


def down(cfg: StackConfig) -> int:
    """Stop every recorded process (workers first, then simulator, then server); report leftovers."""
    tracked = processes.load_all(cfg.run_dir)
    # The CLI must stop finding this stack's API whether or not the server still runs.
    (cfg.run_dir / API_URL_FILE).unlink(missing_ok=True)
    if not tracked:
        print("nothing to stop")
        return 0
    order = {"worker": 0, "simulator": 1, "server": 2, "database": 3}
    failed = []
    for process in sorted(tracked, key=lambda p: order.get(p.kind, 1)):
        if process.kind == "server" and processes.is_running(process) and prefect_rest.healthy(cfg.api_url):
            # The workers' runs died with them: without this the UI shows them running forever.
            try:
                if crashed := prefect_rest.crash_abandoned_runs(cfg.api_url, WORK_POOL, DOWN_MESSAGE):
                    print(f"marked {crashed} interrupted flow run(s) Crashed")
            except (prefect_rest.ApiError, ValueError) as exc:
                print(f"could not mark interrupted runs Crashed: {exc}", file=sys.stderr)
        if processes.is_running(process):
            print(f"stopping {process.name} (pid {process.pid}) ...", flush=True)
            if not processes.stop(process, processes.plan_for(process.kind)):
                failed.append(process.name)
        processes.forget(cfg.run_dir, process)
    if failed:
        print(f"could not stop: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("stack stopped; no process left behind")
    return 0


def status(cfg: StackConfig) -> int:
    """Print the recorded processes and whether they run. Exit code 0 when all of them run."""
    tracked = processes.load_all(cfg.run_dir)
    for process in tracked:
        state = "running" if processes.is_running(process) else "gone"
        print(f"{process.name:<12} pid {process.pid:<8} {state}")
    if not tracked:
        print("stack not running")
    return 0 if tracked and all(processes.is_running(p) for p in tracked) else 1


def _say(message: str, since: float) -> None:
    print(f"[{time.monotonic() - since:5.1f}s] {message}", flush=True)


def _server_database() -> str:
    url = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
    return "Postgres" if url and url.startswith("postgresql") else f"SQLite in {home.prefect_home()}"


def _print_summary(
    cfg: StackConfig, tenants: list[Any], first_run: str, demo: bool, push_url: str | None = None
) -> None:
    embedded = home.audiapro_home() / home.WAREHOUSE_FILE
    warehouse = "$AUDIAPRO_DATABASE_URL" if os.environ.get("AUDIAPRO_DATABASE_URL") else str(embedded)
    lines = [
        "",
        f"AudiaPro stack is up.  Prefect UI: {cfg.ui_url}",
        f"  deployments:  {cfg.ui_url}/deployments   (poll-cdrs every 120 s; first run '{first_run}' queued)",
        f"  flow runs:    {cfg.ui_url}/runs",
        f"  tenants:      {', '.join(map(str, tenants)) or '(none)'}"
        + (f"  (demo = live simulator on {HOST}:{cfg.sim_port})" if demo else ""),
        f"  warehouse:    {warehouse}",
        *_push_lines(cfg, push_url),
        f"  state home:   {home.audiapro_home()}  (AUDIAPRO_HOME; Prefect's: {home.prefect_home()})",
        f"  logs, PIDs:   {cfg.run_dir}",
        "  CLI:          .venv/bin/audiapro status  (from any directory: finds this stack)",
        "  stop:         make down",
    ]
    print("\n".join(lines))


def _push_lines(cfg: StackConfig, push_url: str | None) -> list[str]:
    if push_url is None:
        return []
    return [
        f"  push:         the demo PBX pushes each CDR as it ends to {push_url}",
        f"  upload page:  http://{HOST}:{cfg.api_port}/upload  (needs `audiapro admin-token set`)",
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``up``, ``down`` or ``status``."""
    args = sys.argv[1:] if argv is None else argv
    commands = {"up": up, "down": down, "status": status}
    if len(args) != 1 or args[0] not in commands:
        print("usage: python -m audiapro.ops.stack up|down|status", file=sys.stderr)
        return 2
    home.use_home()  # the same state as the `audiapro` command, wherever make runs
    return commands[args[0]](StackConfig.from_env())


if __name__ == "__main__":
    sys.exit(main())
