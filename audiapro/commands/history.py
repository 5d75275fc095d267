"""`audiapro backfill` and `audiapro import`: historical CDRs through the same flows as the deployments.

Both run their flow in this process (like `audiapro poll`), draw a progress bar from the flow's
progress updates and print the counts. Prefect is imported lazily, when a command runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiapro.commands.common import optional_time_zone, tenant_name, warehouse_url

#: Wide enough for the count tables even when the terminal is not (CI logs, pipes).
MIN_CONSOLE_WIDTH: Final = 110
console = Console(width=max(Console().width, MIN_CONSOLE_WIDTH))

#: ``1d``, ``6h``, ``30m``, ``90s`` (or an ISO 8601 duration such as ``PT6H``).
_DURATION = re.compile(r"^\s*(\d+)\s*([dhms])\s*$", re.IGNORECASE)
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
BACKFILL_COUNTS: Final = ("planned", "skipped", "loaded", "failed", "not_started", "fetched", "inserted",
                          "updated", "unchanged", "rejected")  # fmt: skip
IMPORT_COUNTS: Final = ("read", "new", "duplicate", "rejected")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("backfill")(backfill)
    app.command("import")(import_file)


def backfill(
    tenant: Annotated[str, typer.Option(help="Tenant (CloudUCM block) name")],
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD, or local YYYY-MM-DDTHH:MM[:SS]")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD (inclusive), or local YYYY-MM-DDTHH:MM")],
    window: Annotated[str, typer.Option(help="Window length: 1d, 6h, 30m (or ISO 8601, e.g. PT6H)")] = "1d",
    max_parallel: Annotated[int, typer.Option(help="Windows fetched at once (1-4)")] = 2,
    force: Annotated[bool, typer.Option(help="Reload windows already done")] = False,
) -> None:
    """Load a tenant's CDR history from its PBX (the backfill-cdrs flow); resumes where a run stopped."""
    tenant = tenant_name(tenant)
    span_start, span_end, step = _when(start, "--start"), _when(end, "--end"), parse_duration(window)
    warehouse_url()
    from flows.backfill import backfill_cdrs

    with _progress_bar(f"backfill {tenant}") as listener, _listening(listener):
        state = backfill_cdrs(
            tenant=tenant,
            start=span_start,
            end=span_end,
            window=step,
            max_parallel=max_parallel,
            force=force,
            return_state=True,
        )
    result = state.result(raise_on_failure=False)
    if not isinstance(result, dict):
        _fail(f"backfill failed: {_one_line(result, state.message)}")
    table = Table(*BACKFILL_COUNTS, title=f"backfill {tenant}: {result['span'][0]} → {result['span'][1]} UTC")
    table.add_row(*(str(result[name]) for name in BACKFILL_COUNTS))
    console.print(table)
    if state.is_failed():
        _fail(f"{state.message}")


def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="UCM web-UI CSV export or saved cdrapi JSON", exists=True, dir_okay=False, readable=True
        ),
    ],
    tenant: Annotated[str, typer.Option(help="Tenant (its time zone and phone region read the file)")],
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of the file's times, if not the tenant's")
    ] = None,
    chunk_rows: Annotated[
        int | None, typer.Option(help="Rows per chunk (default 20000); memory is about 9 KB a row")
    ] = None,
) -> None:
    """Import a CDR file (the import-cdr-file flow); the same file twice adds nothing.

    The flow runs in this process and may read exactly FILE, wherever it is (you can read it
    yourself); runs started from the UI or the API read only from the import roots.
    """
    tenant, timezone = tenant_name(tenant), optional_time_zone(timezone)
    warehouse_url()
    from audiapro.importing import granted_import_file
    from flows.import_file import import_cdr_file

    options = {} if chunk_rows is None else {"chunk_rows": chunk_rows}  # else the flow's default
    with (
        granted_import_file(file) as path,
        _progress_bar(f"import {file.name}") as listener,
        _listening(listener),
    ):
        state = import_cdr_file(
            path=str(path), tenant=tenant, timezone=timezone, return_state=True, **options
        )
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):
        _fail(f"import failed: {_one_line(summary, state.message)}")
    table = Table("file", "status", *IMPORT_COUNTS, title=f"import for {tenant}")
    table.add_row(summary["file"], summary["status"], *(str(summary[name]) for name in IMPORT_COUNTS))
    console.print(table)
    if summary["first_rejects"]:
        console.print("First rejected rows:")
        for line, reason in summary["first_rejects"]:
            console.print(f"  line {line}: {reason}")
        console.print("All rejected rows of this file:", style="bold")
        console.print(summary["rejects_sql"], soft_wrap=True, highlight=False, markup=False)


def parse_duration(text: str) -> timedelta:
    """``1d``/``6h``/``30m``/``90s`` or an ISO 8601 duration (``P1D``, ``PT6H``) as a timedelta.

    Raises:
        typer.BadParameter: Neither form.
    """
    match = _DURATION.match(text)
    if match:
        return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(text.strip())
    except ValidationError:
        raise typer.BadParameter(f"{text!r} is not a duration such as 1d, 6h, 30m or PT6H") from None


def _when(text: str, option: str) -> date | datetime:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(date | datetime).validate_python(text.strip())
    except ValidationError:
        raise typer.BadParameter(f"{option} {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]") from None


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[str, float, str], None]]:
    """A rich bar driven by progress updates (``listener(key, fraction, description)``)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task_id = bar.add_task(label, total=1.0)

        def listener(_key: str, fraction: float, description: str) -> None:
            bar.update(task_id, completed=fraction, description=description or label)

        yield listener


@contextmanager
def _listening(listener: Callable[[str, float, str], None]) -> Iterator[None]:
    from tasks.progress import listen

    with listen(listener):
        yield


def _one_line(error: Any, fallback: str | None) -> str:
    text = str(error) if isinstance(error, BaseException) else (fallback or "unknown error")
    return text.splitlines()[0] if text else (fallback or type(error).__name__)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]{message}[/]", highlight=False)
    raise typer.Exit(1)
