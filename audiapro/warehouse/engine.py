"""Engine factory and write transactions for both back ends (Postgres in production, SQLite embedded)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from audiapro.settings import DATABASE_URL_ENV, DEFAULT_DATABASE_URL

#: How long a SQLite writer waits for another writer before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
#: Connection execution option asking the SQLite "begin" hook for BEGIN IMMEDIATE.
_SQLITE_IMMEDIATE: Final = "audiapro_sqlite_immediate"
_MEMORY_DATABASES: Final = ("", ":memory:")
#: The Postgres driver the project ships (psycopg2-binary). SQLAlchemy 2.1 maps a bare
#: ``postgresql://`` to psycopg 3, which is not installed, and knows no ``postgres://`` at all.
POSTGRES_SCHEME: Final = "postgresql+psycopg2"
#: The schemes Postgres hosts hand out (Heroku, RDS, Supabase, ``psql`` docs), mapped to ours.
_BARE_POSTGRES: Final = re.compile(r"^\s*postgres(?:ql)?(?:\+psycopg2)?://", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """``url`` with a bare ``postgresql://`` or ``postgres://`` scheme spelled for the shipped driver.

    Everything after the scheme (user, password, host, query) is kept byte for byte; other URLs
    (``sqlite:///...``, an explicit ``postgresql+<driver>://``) are returned unchanged.
    """
    match = _BARE_POSTGRES.match(url)
    return f"{POSTGRES_SCHEME}://{url[match.end() :]}" if match else url


def resolve_url(url: str | None = None) -> str:
    """The database URL to use: the argument, else ``AUDIAPRO_DATABASE_URL``, else embedded SQLite.

    The result is in :func:`canonical_url` form, so every caller gets the shipped Postgres driver.
    """
    return canonical_url(url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL)


def get_engine(url: str | None = None) -> sa.Engine:
    """Create an engine for the warehouse.

    Create one per process and share it: an engine owns a connection pool.

    Args:
        url: SQLAlchemy URL. ``None`` falls back to ``AUDIAPRO_DATABASE_URL``, then to the embedded
            SQLite file under ``AUDIAPRO_HOME`` (its directory is created).

    Returns:
        A ready engine. SQLite engines run in WAL mode with a busy timeout and foreign keys on, and
        emit their own ``BEGIN`` so that transactions (including DDL) behave as on Postgres.
    """
    sa_url = sa.make_url(resolve_url(url))
    if sa_url.get_backend_name() != "sqlite":
        # pre_ping: a long-lived flow worker outlives server restarts and idle-connection reaps.
        return sa.create_engine(sa_url, pool_pre_ping=True)
    database = sa_url.database or ""
    if database not in _MEMORY_DATABASES and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(sa_url)
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def sqlite_database_path(engine: sa.Engine) -> Path | None:
    """Path of a file-backed SQLite database, or ``None`` (in-memory, a ``file:`` URI, not SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if database in _MEMORY_DATABASES or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


@contextmanager
def begin_write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: commits on success, rolls back on any exception.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front
    (waiting up to the busy timeout), so counts read inside it stay exact and a read lock is never
    upgraded mid-transaction, which in WAL mode fails at once instead of waiting.
    """
    with engine.connect() as conn, immediate(conn).begin():
        yield conn


def immediate(conn: sa.Connection) -> sa.Connection:
    """Make the next transaction of ``conn`` a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    if conn.dialect.name == "sqlite":
        conn.execution_options(**{_SQLITE_IMMEDIATE: True})
    return conn


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own implicit BEGIN skips DDL and SAVEPOINT; hand transaction control to the
    # "begin" hook instead (the recipe from SQLAlchemy's SQLite dialect documentation).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: even switching to WAL must wait for, not fail on, a concurrent opener.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode except on power loss
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_SQLITE_IMMEDIATE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")
