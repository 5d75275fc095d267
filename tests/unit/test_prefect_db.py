"""The Prefect server's database for `make up`: the choice, and the managed local Postgres cluster."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audiapro.ops import prefect_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("value", ["", "sqlite", "postgres", "postgresql+asyncpg://u:p@db.example/prefect"])
def test_choice_accepts_sqlite_postgres_or_a_url(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prefect_db.DB_ENV, value)
    assert prefect_db.choice() == (value or "sqlite")


def test_choice_names_the_accepted_values_on_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prefect_db.DB_ENV, "postgress")
    with pytest.raises(prefect_db.PrefectDbError, match="use sqlite, postgres or"):
        prefect_db.choice()


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A directory the postgres user can enter (pytest's own tmp dirs are private to this user)."""
    parent = Path(tempfile.mkdtemp(prefix="audiapro-prefect-pg-"))
    parent.chmod(0o755)
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


def test_the_managed_cluster_starts_keeps_its_data_and_serves_the_prefect_database(
    cluster_dir: Path, tmp_path: Path
) -> None:
    try:
        prefect_db.pg_bin()
    except prefect_db.PrefectDbError:
        pytest.skip("no PostgreSQL binaries on this machine")
    cluster = prefect_db.LocalCluster(data_dir=cluster_dir, port=free_port())
    log = tmp_path / "db.log"
    prefect_db.start_cluster(cluster, log)
    pid = prefect_db.postmaster_pid(cluster)
    try:
        assert pid is not None and cluster.url.endswith(f":{cluster.port}/prefect")
        psql = prefect_db.pg_bin() / "psql"
        query = [str(psql), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", "prefect",
                 "-Atc", "select current_database()"]  # fmt: skip
        assert subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip() == "prefect"
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # fast shutdown, as `make down` does
            deadline = time.monotonic() + 30
            while prefect_db.postmaster_pid(cluster) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
    assert prefect_db.postmaster_pid(cluster) is None
    # A second `make up` finds the cluster initialized and its database there: it only starts it.
    prefect_db.start_cluster(cluster, log)
    second = prefect_db.postmaster_pid(cluster)
    assert second is not None
    os.kill(second, signal.SIGINT)
    deadline = time.monotonic() + 30
    while prefect_db.postmaster_pid(cluster) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
