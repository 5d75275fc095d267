"""Can the warehouse be reached? One connection, and a one-line answer saying what to check.

The CLI asks before it starts a flow or a migration, so that a typo in ``AUDIAPRO_DATABASE_URL``
or a stopped server is one readable line instead of a driver traceback. Messages name the URL
without its password and never quote the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse.engine import get_engine, resolve_url

#: Where the URL comes from, named in every message.
URL_SOURCE_HINT: Final = "AUDIAPRO_DATABASE_URL or the Warehouse block"
SUPPORTED_BACKENDS: Final = ("postgresql", "sqlite")
URL_EXAMPLES: Final = "postgresql://user:password@host:5432/dbname or sqlite:///path/to/file.sqlite"
#: libpq / SQLite message fragments, in order of precedence, and what to check for each.
_CAUSES: Final = (
    ("password authentication failed", "authentication failed for user {user}: check the user and password"),
    ("no password supplied", "the server asks for a password: put it in the URL or in ~/.pgpass"),
    ("role", "user {user} does not exist on the server: check the user name"),
    ("database", "database {database} does not exist: check the database name (or create it)"),
    ("could not translate host name", "unknown host {host}: check the host name"),
    ("name or service not known", "unknown host {host}: check the host name"),
    (
        "connection refused",
        "connection refused by {host} port {port}: check the host and port, and that Postgres runs",
    ),
    ("timeout expired", "no answer from {host} port {port}: check the host, port and firewall"),
    ("no route to host", "no route to {host}: check the host name and the network"),
    (
        "unable to open database file",
        "cannot open the SQLite file {database}: check the path and that its directory is writable",
    ),
    ("file is not a database", "{database} is not a SQLite database: check the path"),
)


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be used; the message is one line, names what to check, has no secret."""


def safe_url(url: str) -> str:
    """``url`` without its password (``postgresql+psycopg2://user@host:5432/db``), or a placeholder."""
    try:
        return sa.make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"


def describe_error(exc: BaseException, url: str, source: str = URL_SOURCE_HINT) -> str:
    """One line saying why ``url`` cannot be used and what to check (no password, no traceback).

    Args:
        exc: What connecting raised.
        url: The URL tried.
        source: Where the URL came from (named in the message, so the operator knows what to edit).
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return f"the warehouse URL is not a database URL: use {URL_EXAMPLES} ({source})"
    where = f"warehouse {safe_url(url)} ({source})"
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        return f"{where}: {parsed.drivername!r} is not a supported database: use {URL_EXAMPLES}"
    if isinstance(exc, ModuleNotFoundError | sa.exc.NoSuchModuleError):
        return f"{where}: the driver {parsed.drivername!r} is not installed: use {URL_EXAMPLES}"
    if isinstance(exc, OSError):  # creating the SQLite file's directory
        return f"{where}: cannot create {exc.filename or parsed.database!r} ({exc.strerror}): check the path"
    text = _driver_text(exc)
    if parsed.password:
        text = text.replace(parsed.password, "***")
    lowered = text.lower()
    fields = {
        "user": repr(parsed.username or ""),
        "host": repr(parsed.host or "localhost"),
        "port": str(parsed.port or 5432),
        "database": repr(parsed.database or ""),
    }
    for fragment, advice in _CAUSES:
        if fragment in lowered and (fragment not in ("role", "database") or "does not exist" in lowered):
            return f"{where}: {advice.format(**fields)}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{where}: {first}"


@contextmanager
def reporting_unavailable(url: str, source: str = URL_SOURCE_HINT) -> Iterator[None]:
    """Turn a failure to reach the warehouse at ``url`` inside the block into one line.

    Raises:
        WarehouseUnavailable: Refused or failed connection, unparsable URL, missing driver (the
            message names what to check, never the password).
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise WarehouseUnavailable(describe_error(exc, url, source)) from None


def has_table(engine: sa.Engine, name: str) -> bool:
    """Whether the warehouse has table ``name`` (an older schema may lack the newer tables)."""
    return sa.inspect(engine).has_table(name)


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is the database connection failing (dropped, refused, timed out), which a
    later retry can overcome, rather than a statement or data error."""
    return isinstance(exc, sa.exc.OperationalError)


def check_warehouse(url: str | None = None, source: str = URL_SOURCE_HINT) -> str:
    """Open one connection to the warehouse and close it.

    Args:
        url: Database URL (``None``: ``AUDIAPRO_DATABASE_URL``, then the embedded SQLite file).
        source: Where the URL came from, for the message.

    Returns:
        The URL in the form the engine uses (see ``canonical_url``).

    Raises:
        WarehouseUnavailable: Unparsable URL, missing driver, refused connection, unknown host,
            failed login, missing database, unreadable SQLite file.
    """
    resolved = resolve_url(url)
    engine: sa.Engine | None = None
    try:
        engine = get_engine(resolved)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (sa.exc.SQLAlchemyError, ModuleNotFoundError, OSError) as exc:
        raise WarehouseUnavailable(describe_error(exc, resolved, source)) from None
    finally:
        if engine is not None:
            engine.dispose()
    return resolved


def _driver_text(exc: BaseException) -> str:
    """The driver's own message (SQLAlchemy wraps it and appends SQL and a docs link)."""
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc)
