"""End-to-end fixtures: a real Prefect server on the test Postgres, deployed from prefect.yaml, and workers.

Everything started here is stopped in the fixtures' ``finally`` blocks, also when a test fails:
workers (which ignore SIGTERM) with SIGINT twice and SIGKILL after a grace, including their flow
run processes (``audiapro.ops.processes.stop``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from audiapro.ops import processes
from audiapro.warehouse.scratch import scratch_database as new_database
from tests.prefect_service_support import prefect_api_at

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SERVER_START_TIMEOUT = 180.0
WORKERS_READY_TIMEOUT = 90.0
WORKER_NAMES = ("e2e-worker-1", "e2e-worker-2")
#: Flow runs one worker runs at once (`--limit`): a fanned-out tick (its run and its shard runs)
#: needs more than one worker has, so both workers share it whichever polls first.
WORKER_RUN_LIMIT = 4


def free_port() -> int:
    """A TCP port that is free on loopback right now (never 4200: `make up` may hold it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new database on the TEST_DATABASE_URL cluster (psycopg2 URL), dropped afterwards."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set: run through `make test` (starts Postgres)")
    with new_database(TEST_DATABASE_URL, prefix) as url:
        yield url


@dataclass(frozen=True)
class PrefectServer:
    """A running Prefect server.

    Attributes:
        api_url: Its API (``PREFECT_API_URL``).
        home: ``PREFECT_HOME`` of every process of this test stack.
    """

    api_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for CLI calls and workers against this server."""
        env = dict(os.environ)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            DO_NOT_TRACK="1",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        env.update(extra)
        return env


def wait_until(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """Poll ``ready()`` every 0.25 s; fail the test (with the log's tail) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            pytest.fail(f"{what} not ready after {timeout:.0f}s\n{tail}")
        time.sleep(0.25)


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port, backed by its own Postgres database."""
    with scratch_database("prefect") as url:
        asyncpg_url = (
            sa.make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        )
        home = tmp_path_factory.mktemp("prefect-home")
        with running_prefect_server(home, PREFECT_API_DATABASE_CONNECTION_URL=asyncpg_url) as server:
            yield server


@contextmanager
def running_prefect_server(home: Path, *, ui: bool = False, **env: str) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port with ``PREFECT_HOME=home`` and ``env`` added,
    serving its UI (pointed at this API) when ``ui``; stopped on the way out (its log is
    ``home/server.log``, shown when it fails to start)."""
    port = free_port()
    server = PrefectServer(api_url=f"http://{HOST}:{port}/api", home=home)
    log = home / "server.log"
    argv = [str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(port)]
    settings = {"PREFECT_SERVER_LOGGING_LEVEL": "WARNING", "PREFECT_UI_ENABLED": "false"}
    if ui:
        settings.update(PREFECT_UI_ENABLED="true", PREFECT_UI_API_URL=server.api_url)
    full_env = server.env(**{**settings, **env})
    tracked, popen = processes.spawn("server", "server", argv, env=full_env, log_path=log, cwd=ROOT)
    try:
        wait_until(
            "Prefect server",
            lambda: healthy(server.api_url) or popen.poll() is not None,
            SERVER_START_TIMEOUT,
            log,
        )
        assert popen.poll() is None, log.read_text()[-3000:]
        yield server
    finally:
        processes.stop(tracked, processes.SERVER_STOP, popen=popen)


@pytest.fixture(scope="module")
def prefect_client_settings(prefect_server: PrefectServer) -> Iterator[None]:
    """Point this test process's Prefect client at the e2e server.

    On the way out, while the server still runs, Prefect's event and log services deliver what they
    hold and stop: left running, they would stay bound to this server after it stops and take every
    later event of the session with them (``tests/prefect_service_support.py``).
    """
    with prefect_api_at(prefect_server.api_url):
        yield


@pytest.fixture(scope="module")
def deployed(prefect_server: PrefectServer, worker_processes: list[Worker]) -> str:
    """Run deployments/deploy.sh (the CI deploy) against the server; return its output.

    The workers are already starting meanwhile (whoever comes first creates the work pool).
    """
    done = subprocess.run(
        [str(ROOT / "deployments" / "deploy.sh")],
        env=prefect_server.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def e2e_warehouse() -> Iterator[str]:
    """A fresh Postgres warehouse database (schema at head) for the workers' flow runs."""
    from audiapro.warehouse import get_engine, upgrade

    with scratch_database("wh") as url:
        engine = get_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@dataclass(frozen=True)
class Worker:
    """A process worker we started."""

    name: str
    log: Path
    pid: int = 0


@pytest.fixture(scope="module")
def worker_processes(prefect_server: PrefectServer, e2e_warehouse: str) -> Iterator[list[Worker]]:
    """Two process workers in the `audiapro` pool (as on two machines), polling every second.

    Started without waiting (they boot while deploy.sh runs); the ``workers`` fixture waits.
    """
    env = prefect_server.env(AUDIAPRO_DATABASE_URL=e2e_warehouse, PREFECT_WORKER_QUERY_SECONDS="1")
    started: list[tuple[processes.Tracked, subprocess.Popen[bytes], Worker]] = []
    try:
        for name in WORKER_NAMES:
            log = prefect_server.home / f"{name}.log"
            argv = [str(BIN / "prefect"), "worker", "start", "--pool", "audiapro", "--type", "process",
                    "--name", name, "--limit", str(WORKER_RUN_LIMIT)]  # fmt: skip
            tracked, popen = processes.spawn(name, "worker", argv, env=env, log_path=log, cwd=ROOT)
            started.append((tracked, popen, Worker(name=name, log=log, pid=popen.pid)))
        yield [w for *_, w in started]
    finally:
        for tracked, popen, _ in started:
            processes.stop(tracked, processes.WORKER_STOP, popen=popen)


@pytest.fixture(scope="module")
def workers(prefect_server: PrefectServer, deployed: str, worker_processes: list[Worker]) -> list[Worker]:
    """The two workers, once both have registered with the pool."""
    wait_until(
        "two workers",
        lambda: _pool_workers(prefect_server) >= len(WORKER_NAMES),
        WORKERS_READY_TIMEOUT,
        worker_processes[0].log,
    )
    return worker_processes


def _pool_workers(server: PrefectServer) -> int:
    try:
        response = httpx.post(f"{server.api_url}/work_pools/audiapro/workers/filter", json={}, timeout=5)
        return len(response.json()) if response.status_code == 200 else 0
    except httpx.HTTPError:
        return 0
