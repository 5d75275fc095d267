"""Schema migrations: ``alembic upgrade head``, run programmatically and safe to race."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from audiapro.warehouse.engine import get_engine, immediate
from audiapro.warehouse.lock import advisory_key, tenant_lock

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
#: Postgres advisory lock serializing concurrent upgrades (a flow worker and the CLI, say).
MIGRATION_LOCK_KEY: Final = advisory_key("migrations")
#: Lock-file name (SQLite) for the same purpose; not a valid tenant name, so it cannot collide.
MIGRATION_LOCK_NAME: Final = "__schema_migrations__"
MIGRATION_LOCK_TIMEOUT_S: Final = 120.0


def alembic_config() -> Config:
    """The packaged alembic configuration (works from an installed wheel, any working directory)."""
    return Config(str(MIGRATIONS_DIR / "alembic.ini"))


def upgrade(url_or_engine: str | sa.Engine | None = None) -> None:
    """Bring the warehouse schema to the newest revision; a no-op when it is already there.

    Two processes may call this at the same time: on Postgres the whole upgrade runs in one
    transaction under an advisory lock, so the second caller waits and then finds nothing to do; on
    SQLite the transaction starts with ``BEGIN IMMEDIATE``, which serializes writers the same way.
    Either way a failed migration leaves the schema as it was (DDL is transactional on both). On
    SQLite, foreign keys are off during the migration and checked before commit, as SQLite's own
    procedure for table rebuilds prescribes (batch-mode migrations need it).

    Args:
        url_or_engine: An engine, a URL, or ``None`` for the default (see :func:`get_engine`).
    """
    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else get_engine(url_or_engine)
    try:
        with (
            _sqlite_migration_lock(engine),
            engine.connect() as conn,
            _sqlite_foreign_keys_off(conn),
            immediate(conn).begin(),
        ):
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if conn.dialect.name == "sqlite":
                _check_foreign_keys(conn)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


@contextmanager
def _sqlite_migration_lock(engine: sa.Engine) -> Iterator[None]:
    """On SQLite, serialize upgrades with a file lock before the first connection.

    A brand-new SQLite file switches to WAL on its first connection; racing processes can hit
    "database is locked" there before ``busy_timeout`` applies, so they queue on a lock file first.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    with tenant_lock(engine, MIGRATION_LOCK_NAME, wait=True, timeout_s=MIGRATION_LOCK_TIMEOUT_S):
        yield


@contextmanager
def _sqlite_foreign_keys_off(conn: sa.Connection) -> Iterator[None]:
    """SQLite's procedure for schema changes: foreign keys off around the migration transaction.

    Batch-mode migrations rebuild a table by copy, drop and rename; with enforcement on, dropping a
    referenced table fails or cascades. The pragma is a no-op inside a transaction, so it is sent
    on the raw connection before ``BEGIN``; :func:`_check_foreign_keys` verifies the result.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None  # a checked-out connection always has one
    raw.cursor().execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.cursor().execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: sa.Connection) -> None:
    violations = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if violations:
        raise RuntimeError(f"migration left {len(violations)} foreign key violations, e.g. {violations[0]}")


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (``None`` before the first upgrade)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
