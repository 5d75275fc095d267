"""`audiapro calls`: a tenant's calls from the warehouse, as a table or CSV.

Reads the warehouse only (no Prefect import when ``AUDIAPRO_DATABASE_URL`` or ``--url`` names it).
Calls are named by their warehouse id; the phone numbers shown are the data the user asked for and
go to this command's own output only, never to a log.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import fail, tenant_name, warehouse_url

console = Console(width=max(Console().width, 110))

DEFAULT_LIMIT: Final = 50
#: Column headings of the table (the CSV keeps the warehouse's column names).
HEADINGS: Final = {
    "id": "id",
    "started_at": "started (UTC)",
    "direction": "direction",
    "answered": "answered",
    "answered_by": "answered by",
    "duration_s": "duration s",
    "talk_s": "talk s",
    "leg_count": "legs",
    "recording_count": "recordings",
    "src_raw": "from",
    "dst_raw": "to",
}


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("calls")(calls)


def calls(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    since: Annotated[
        str | None, typer.Option(help="Calls since an ISO date/time (UTC) or a span back: 90m, 24h, 7d")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many calls, newest first")] = DEFAULT_LIMIT,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout, for a spreadsheet")] = False,
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """List a tenant's calls from the warehouse, newest first (one row per call, numbers included)."""
    from audiapro.commands.analysis import parse_since

    tenant = tenant_name(tenant)
    if limit < 1:
        fail(f"--limit {limit}: give a number of calls, 1 or more")
    try:
        start = parse_since(since)
    except typer.BadParameter as exc:
        fail(f"--since {exc.message}")
    rows = _read(warehouse_url(url), tenant, start, limit)
    if as_csv:
        _write_csv(rows)
    elif rows:
        _print_table(tenant, rows)
    if not rows:
        window = f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""
        typer.echo(f"no calls of tenant {tenant!r}{window} in the warehouse", err=True)


def _read(url: str, tenant: str, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    from audiapro.warehouse import get_engine, recent_calls
    from audiapro.warehouse.connect import has_table

    engine = get_engine(url)
    try:
        if not has_table(engine, "calls"):
            fail("the warehouse has no calls yet: run `audiapro db upgrade`, then a poll or an import")
        return recent_calls(engine, tenant, since=since, limit=limit)
    finally:
        engine.dispose()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _print_table(tenant: str, rows: list[dict[str, Any]]) -> None:
    table = Table(*HEADINGS.values(), title=f"calls of {tenant}, newest first")
    for row in rows:
        table.add_row(*(_cell(row[name]) for name in HEADINGS))
    console.print(table)


def _write_csv(rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(HEADINGS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        started = row["started_at"]
        writer.writerow({**row, "started_at": started.isoformat() if started else ""})
