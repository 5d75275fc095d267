"""Alembic environment: migrates the warehouse on the connection :func:`upgrade` hands over.

Logging is left alone on purpose (no ``fileConfig``): migrations run inside flows and the CLI, whose
logging setup must win.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from audiapro.warehouse.engine import begin_write, get_engine, resolve_url
from audiapro.warehouse.tables import metadata

#: Key under which ``upgrade()`` passes its open connection in ``Config.attributes``.
CONNECTION_ATTRIBUTE = "connection"


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # The engine's BEGIN hook makes SQLite DDL transactional too: all-or-nothing upgrades.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get(CONNECTION_ATTRIBUTE)
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = get_engine(context.get_x_argument(as_dictionary=True).get("url"))
    try:
        with begin_write(engine) as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


def _run_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url")
    context.configure(url=resolve_url(url), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
