"""What every command checks the same way: tenant names, time zones, the warehouse, the Prefect API.

A user mistake ends the command with ONE line on stderr (``error: ...``) and exit code 2, never a
traceback. Prefect is not imported here unless a command needs the Warehouse block.
"""

from __future__ import annotations

import os
from typing import Final, NoReturn

import typer

from audiapro.prefect_names import DEFAULT_BLOCK, WAREHOUSE_BLOCK_TYPE
from audiapro.settings import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from audiapro.tenants import tenant_key

#: Exit code of a one-line user error (bad option value, unreachable warehouse); click uses 2 too.
EXIT_USAGE: Final = 2
ZONE_EXAMPLES: Final = "America/Chicago, America/New_York, Europe/London, Asia/Kolkata or UTC"
PREFECT_API_URL_ENV: Final = "PREFECT_API_URL"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` as one line on stderr and end the command with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def tenant_name(name: str) -> str:
    """The stored name of the tenant typed as ``name`` (``audiapro.tenants.tenant_key``), or fail."""
    try:
        return tenant_key(name)
    except ValueError as exc:
        fail(str(exc))


def optional_tenant(name: str | None) -> str | None:
    """``tenant_name`` for an optional ``--tenant`` (None stays None: all tenants)."""
    return None if name is None else tenant_name(name)


def time_zone(value: str, option: str = "--timezone") -> str:
    """``value`` when it names an IANA time zone; else fail naming examples."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: empty, absolute or ".." paths
        fail(f"{option} {value!r} is not a time zone: use an IANA name such as {ZONE_EXAMPLES}")
    return value


def optional_time_zone(value: str | None, option: str = "--timezone") -> str | None:
    """``time_zone`` for an optional zone option (None stays None)."""
    return None if value is None else time_zone(value, option)


def warehouse_url(explicit: str | None = None) -> str:
    """The warehouse URL the command (and the flows it runs) will use, after one test connection.

    Args:
        explicit: A URL given on the command line; else ``AUDIAPRO_DATABASE_URL``, the Warehouse
            block, the embedded SQLite file.

    Returns:
        The URL in the engine's form (``postgresql://`` spelled for the shipped driver).
    """
    from audiapro.warehouse.connect import WarehouseUnavailable, check_warehouse

    if explicit:
        url, source = explicit, "--url"
    elif os.environ.get(DATABASE_URL_ENV):
        url, source = os.environ[DATABASE_URL_ENV], DATABASE_URL_ENV
    else:
        url = block_database_url()
        source = (
            f"embedded default; set {DATABASE_URL_ENV} for Postgres"
            if url == DEFAULT_DATABASE_URL
            else f"Warehouse block {DEFAULT_BLOCK!r}"
        )
    try:
        return check_warehouse(url, source)
    except WarehouseUnavailable as exc:
        fail(str(exc))


def block_database_url() -> str:
    """The Warehouse block's URL (canonical form), else the embedded default.

    Read without Prefect's client where ``audiapro.ops.prefect_store`` can (no temporary Prefect
    server just to learn that there is no block); else ``blocks.warehouse.resolve_database_url``.
    """
    from audiapro.ops.prefect_store import block_documents

    documents = block_documents(WAREHOUSE_BLOCK_TYPE, include_secrets=True)
    if documents is None:
        from blocks.warehouse import resolve_database_url

        return resolve_database_url()
    from audiapro.warehouse.engine import canonical_url

    url = next((d.data.get("url") for d in documents if d.name == DEFAULT_BLOCK), None)
    return canonical_url(str(url)) if url else DEFAULT_DATABASE_URL


def use_local_stack_api() -> str | None:
    """Point Prefect at the stack `make up` runs, when ``PREFECT_API_URL`` is unset and it answers.

    Must run before Prefect is imported (its settings read the environment). Without it, Prefect
    would start a temporary API of its own that knows no deployment and no tenant.

    Returns:
        The URL now in ``PREFECT_API_URL`` when it was set here, else None.
    """
    if os.environ.get(PREFECT_API_URL_ENV):
        return None
    from audiapro.ops.stack import running_api_url

    url = running_api_url()
    if url:
        os.environ[PREFECT_API_URL_ENV] = url
    return url
