"""The Prefect server's own database for `make up`: SQLite (default) or Postgres.

SQLite serializes every write, so a server with several workers and fanned-out ticks (each shard is a
flow run writing states, task runs, logs and events) waits on its database lock; production runs
the server on Postgres. ``AUDIAPRO_PREFECT_DB`` chooses:

* ``sqlite`` (or unset): ``$PREFECT_HOME/prefect.db``, Prefect's default;
* ``postgres``: a local Postgres cluster the stack manages in ``AUDIAPRO_PREFECT_PGDATA`` (default
  ``$AUDIAPRO_HOME/prefect-pg``, or a directory under the postgres user's home when run as root, whose
  own home the postgres user cannot enter) on ``AUDIAPRO_PREFECT_PGPORT`` (55480), created on first
  use from the system's Postgres binaries (the ones ``scripts/with-postgres.sh`` uses), started by
  ``make up`` and stopped by ``make down``; the data stays between runs;
* a ``postgresql+asyncpg://`` URL: an existing server (what production uses); nothing is started.

``PREFECT_API_DATABASE_CONNECTION_URL`` set explicitly wins over all of these.
Standard library only, like the rest of ``audiapro.ops``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from audiapro import home

DB_ENV: Final = "AUDIAPRO_PREFECT_DB"
PGDATA_ENV: Final = "AUDIAPRO_PREFECT_PGDATA"
PGPORT_ENV: Final = "AUDIAPRO_PREFECT_PGPORT"
PREFECT_URL_ENV: Final = "PREFECT_API_DATABASE_CONNECTION_URL"
DEFAULT_PGPORT: Final = 55480
#: The managed cluster's database for Prefect (created on first start).
DATABASE: Final = "prefect"
PG_BIN_GLOB: Final = "/usr/lib/postgresql/*/bin"
PG_USER: Final = "postgres"
#: Where a root-run stack keeps its cluster: under the postgres user's home, which it can enter.
ROOT_PGDATA_PARENT: Final = Path("/var/lib/postgresql/audiapro")
#: Enough for a server with several workers and their flow runs (each holds a small pool).
MAX_CONNECTIONS: Final = 300
START_TIMEOUT_S: Final = 60


class PrefectDbError(RuntimeError):
    """The Prefect database could not be prepared; the message says what to do."""


@dataclass(frozen=True)
class LocalCluster:
    """A Postgres cluster the stack runs for the Prefect server.

    Attributes:
        data_dir: Its data directory (``initdb`` target).
        port: TCP port on 127.0.0.1.
    """

    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        """The Prefect server's connection URL (trust auth on loopback: no password)."""
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pid_file(self) -> Path:
        """Postgres's own PID file (first line: the postmaster's pid)."""
        return self.data_dir / "postmaster.pid"


def choice() -> str:
    """``sqlite``, ``postgres`` or a URL, from ``AUDIAPRO_PREFECT_DB``.

    Raises:
        PrefectDbError: Any other value.
    """
    value = os.environ.get(DB_ENV, "").strip() or "sqlite"
    if value in ("sqlite", "postgres") or value.startswith("postgresql+asyncpg://"):
        return value
    raise PrefectDbError(
        f"{DB_ENV}={value!r}: use sqlite, postgres or a postgresql+asyncpg://user:password@host/db URL"
    )


def local_cluster() -> LocalCluster:
    """The managed cluster's place and port, from the environment."""
    configured = os.environ.get(PGDATA_ENV)
    if configured:
        data_dir = Path(configured)
    elif os.geteuid() == 0:
        digest = hashlib.blake2b(str(home.audiapro_home()).encode(), digest_size=4).hexdigest()
        data_dir = ROOT_PGDATA_PARENT / f"prefect-{digest}"
    else:
        data_dir = home.audiapro_home() / "prefect-pg"
    return LocalCluster(data_dir=data_dir, port=int(os.environ.get(PGPORT_ENV, DEFAULT_PGPORT)))


def pg_bin() -> Path:
    """The newest system Postgres ``bin`` directory.

    Raises:
        PrefectDbError: Postgres is not installed.
    """
    found = sorted(glob.glob(PG_BIN_GLOB))
    if not found:
        raise PrefectDbError("PostgreSQL binaries not found (apt-get install postgresql), or give a URL")
    return Path(found[-1])


def start_cluster(cluster: LocalCluster, log: Path) -> None:
    """Create the cluster on first use, start it and create the ``prefect`` database if missing.

    Raises:
        PrefectDbError: initdb, start or createdb failed (their output is in ``log``).
    """
    binaries = pg_bin()
    if not (cluster.data_dir / "PG_VERSION").exists():
        _prepare_dir(cluster.data_dir)
        _run([str(binaries / "initdb"), "-D", str(cluster.data_dir), "-U", PG_USER, "-A", "trust"], log)
    options = (f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c max_connections={MAX_CONNECTIONS} "
               f"-k {cluster.data_dir}")  # fmt: skip
    _run([str(binaries / "pg_ctl"), "-D", str(cluster.data_dir), "-l", str(cluster.data_dir / "server.log"),
          "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"], log)  # fmt: skip
    created = _run(
        [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", PG_USER, DATABASE],
        log,
        check=False,
    )
    if created != 0 and "already exists" not in log.read_text(errors="replace")[-2000:]:
        raise PrefectDbError(f"could not create the {DATABASE} database (log: {log})")


def postmaster_pid(cluster: LocalCluster) -> int | None:
    """The running cluster's postmaster pid, None when its PID file is absent or unreadable."""
    try:
        return int(cluster.pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _prepare_dir(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # Postgres refuses to run as root: its files belong to the postgres user
        subprocess.run(["chown", "-R", f"{PG_USER}:", str(data_dir)], check=True)


def _run(argv: list[str], log: Path, *, check: bool = True) -> int:
    command = ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else argv
    with log.open("ab") as out:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if check and done.returncode != 0:
        raise PrefectDbError(f"{Path(argv[0]).name} failed for the Prefect database (log: {log})")
    return done.returncode
