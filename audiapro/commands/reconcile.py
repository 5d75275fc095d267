"""`audiapro reconcile`: completeness per tenant and PBX-local day, through the reconcile-cdrs flow.

Runs the flow in this process (like `audiapro poll`) and prints one line per tenant-day. Prefect is
imported lazily, when the command runs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

#: Wide enough for the table even when the terminal is not (CI logs, pipes).
MIN_CONSOLE_WIDTH: Final = 110
console = Console(width=max(Console().width, MIN_CONSOLE_WIDTH))
#: Exit code when a day is below 100 % or could not be checked (0 when every day checked is complete).
EXIT_INCOMPLETE: Final = 1
COUNT_COLUMNS: Final = ("pbx_legs", "stored_legs", "missing_before", "loaded_now", "rejected", "phantom_legs")
HEADERS: Final = ("PBX", "stored before", "missing", "loaded", "quarantined", "phantom")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("reconcile")(reconcile)


def reconcile(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every enabled tenant with a PBX)")
    ] = None,
    day: Annotated[
        str | None, typer.Option(help="Only this PBX-local day, YYYY-MM-DD (it must be closed)")
    ] = None,
    days_back: Annotated[
        int, typer.Option(min=1, max=31, help="Without --day: closed days to look back over")
    ] = 3,
) -> None:
    """Check that every call each PBX has for a day is in the warehouse; load what is missing.

    Exit code 0 when every day checked is 100 % complete, 1 otherwise (or when a check failed).
    """
    from flows.reconcile import reconcile_cdrs

    state = reconcile_cdrs(tenant=tenant, day=_day(day), days_back=days_back, return_state=True)
    rows = state.result(raise_on_failure=False)
    if not isinstance(rows, list):
        message = str(rows).splitlines()[0] if isinstance(rows, BaseException) else state.message
        console.print(f"[red]reconcile failed: {message}[/]", highlight=False)
        raise typer.Exit(EXIT_INCOMPLETE)
    print_rows(rows)
    if any(row["status"] != "ok" or row["percent"] < 100 for row in rows):
        raise typer.Exit(EXIT_INCOMPLETE)


def print_rows(rows: list[dict[str, Any]]) -> None:
    """One line per tenant-day checked (counts, completeness), then each failure on a line of its own."""
    table = Table("tenant", "day", *HEADERS, "complete", title="completeness (PBX legs vs warehouse)")
    for row in rows:
        if row["status"] == "ok":
            colour = "green" if row["percent"] >= 100 else "red"
            counts = (str(row[name]) for name in COUNT_COLUMNS)
            table.add_row(row["tenant"], row["day"], *counts, f"[{colour}]{row['percent']:.2f} %[/]")
    console.print(table)
    for row in rows:
        if row["status"] != "ok":
            where = f"{row['tenant']} {row['day']}".strip()
            console.print(f"[red]{row['status']}[/] {where}: {row['error']}", soft_wrap=True, highlight=False)


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"--day {text!r}: use YYYY-MM-DD") from None
