"""`audiapro backfill` and `audiapro import`: historical CDRs through the same flows as the deployments.

Both run their flow in this process (like `audiapro poll`), draw a progress bar from the flow's
progress updates and print the counts. Prefect is imported lazily, when a command runs.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from audiapro.commands.common import (
    PREFECT_API_URL_ENV,
    fail,
    optional_time_zone,
    tenant_name,
    warehouse_url,
)

if TYPE_CHECKING:
    from audiapro.backfill import BackfillEstimate, BackfillPlan
    from audiapro.tenants import TenantSettings

#: Wide enough for the count tables even when the terminal is not (CI logs, pipes).
MIN_CONSOLE_WIDTH: Final = 110
console = Console(width=max(Console().width, MIN_CONSOLE_WIDTH))

#: ``1d``, ``6h``, ``30m``, ``90s`` (or an ISO 8601 duration such as ``PT6H``).
_DURATION = re.compile(r"^\s*(\d+)\s*([dhms])\s*$", re.IGNORECASE)
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
BACKFILL_COUNTS: Final = ("planned", "skipped", "loaded", "failed", "not_started", "fetched", "inserted",
                          "updated", "unchanged", "rejected")  # fmt: skip
IMPORT_COUNTS: Final = ("read", "new", "duplicate", "rejected")
#: A backfill estimated longer than this, or with more windows, asks before it starts.
CONFIRM_SECONDS: Final = 15 * 60
CONFIRM_WINDOWS: Final = 400
SECONDS_PER_HOUR: Final = 3600
#: Exit code of a backfill stopped with Ctrl-C (the shell's 128 + SIGINT).
EXIT_CANCELLED: Final = 130
#: Prefect's logger of task runs (one INFO line per finished task).
TASK_RUN_LOGGER: Final = "prefect.task_runs"


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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Start a long backfill without asking")] = False,
) -> None:
    """Load a tenant's CDR history from its PBX (the backfill-cdrs flow); resumes where a run stopped.

    Says up front how many windows, PBX requests and minutes it expects, and asks before a long
    one. Ctrl-C stops it within a few seconds; loaded windows are kept and a rerun resumes.
    """
    # Imported here: the backfill's modules (pandas) would slow every other command's start.
    from audiapro.backfill import CANCEL, check_request

    tenant = tenant_name(tenant)
    span_start, span_end, step = _when(start, "--start"), _when(end, "--end"), _duration(window, "--window")
    try:
        check_request(span_start, span_end, step, max_parallel)
    except ValueError as exc:
        fail(f"backfill: {exc}")
    _detach_temporary_api()
    url = warehouse_url()
    settings = _pbx_tenant(tenant)
    plan, estimate = _estimate(url, settings, span_start, span_end, step, max_parallel, force)
    _confirm(tenant, plan, estimate, yes)
    resume = f"audiapro backfill --tenant {tenant} --start {start} --end {end} --window {window}"
    from flows.backfill import backfill_cdrs

    CANCEL.clear()
    with (
        _progress_bar(f"backfill {tenant}") as listener,
        _listening(listener),
        _ctrl_c_cancels(),
        quiet_task_run_logs(),
    ):
        state = backfill_cdrs(
            tenant=tenant,
            start=span_start,
            end=span_end,
            window=step,
            max_parallel=max_parallel,
            force=force,
            return_state=True,
        )
    _report(tenant, state, resume)


def _report(tenant: str, state: Any, resume: str) -> None:
    """Print the counts of a finished backfill; one error line when it failed or was cancelled."""
    result = state.result(raise_on_failure=False)
    if not isinstance(result, dict):
        fail(f"backfill failed: {_one_line(result, state.message)}", code=1)
    table = Table(*BACKFILL_COUNTS, title=f"backfill {tenant}: {result['span'][0]} → {result['span'][1]} UTC")
    table.add_row(*(str(result[name]) for name in BACKFILL_COUNTS))
    console.print(table)
    if state.is_cancelled():
        from audiapro.backfill import count_windows

        fail(f"backfill cancelled: {count_windows(result['loaded'])} loaded and kept; resume with `{resume}`",
             code=EXIT_CANCELLED)  # fmt: skip
    if state.is_failed():
        fail(_one_line(None, state.message), code=1)


def _pbx_tenant(name: str) -> TenantSettings:
    """The settings of tenant ``name``, which must exist and have a PBX host; else one line."""
    from blocks.clouducm import load_tenant

    try:
        block = load_tenant(name)
    except ValueError:  # no such block document
        fail(f"no tenant {name!r}: see `audiapro tenant list`, or add it with `audiapro tenant add`")
    if not block.host:
        fail(f"tenant {name!r} is import-only (no PBX host): import its CDR files with `audiapro import`")
    return block.tenant_settings(name)


def _estimate(
    url: str,
    settings: TenantSettings,
    start: date | datetime,
    end: date | datetime,
    step: timedelta,
    max_parallel: int,
    force: bool,
) -> tuple[BackfillPlan, BackfillEstimate]:
    """Plan the backfill as the flow will (read only) and estimate it; a range it refuses is one line."""
    from audiapro.backfill import estimate_backfill, plan_backfill
    from audiapro.warehouse import get_engine, legs_per_day
    from audiapro.warehouse.connect import has_table

    engine = get_engine(url)
    # A warehouse never migrated holds no done window and no leg: nothing to read (nor to create).
    migrated = has_table(engine, "backfill_windows") and has_table(engine, "cdr_legs")
    try:
        plan = plan_backfill(engine, settings, start, end, window=step, force=force or not migrated)
    except ValueError as exc:
        fail(f"backfill: {exc}")
    rate = legs_per_day(engine, settings.name) if migrated else None
    return plan, estimate_backfill(plan, rate, max_parallel)


def _confirm(tenant: str, plan: BackfillPlan, estimate: BackfillEstimate, yes: bool) -> None:
    """Tell the estimate; past the thresholds ask (``--yes`` skips; no terminal to ask refuses)."""
    console.print(
        f"backfill {tenant}: {estimate.windows} of {plan.planned} windows to load ({plan.skipped} already "
        f"done), about {estimate.legs:,} legs, {estimate.requests:,} PBX requests, "
        f"{_minutes(estimate.seconds)} (estimated from {estimate.basis})",
        highlight=False,
        soft_wrap=True,
    )
    if yes or (estimate.seconds < CONFIRM_SECONDS and estimate.windows < CONFIRM_WINDOWS):
        return
    if not sys.stdin.isatty():
        fail("backfill: a long backfill needs confirmation; add --yes to start it without a terminal")
    if not typer.confirm("start it?", default=False):
        fail("backfill: not started", code=1)


def _minutes(seconds: float) -> str:
    """``about 3 min`` / ``about 2.5 h``."""
    if seconds < SECONDS_PER_HOUR:
        return f"about {max(round(seconds / 60), 1)} min"
    return f"about {seconds / SECONDS_PER_HOUR:.1f} h"


@contextmanager
def _ctrl_c_cancels() -> Iterator[None]:
    """The first Ctrl-C stops the backfill gracefully (``audiapro.backfill.CANCEL``); a second one
    stops the process at once (Python's own handler is back by then)."""

    from audiapro.backfill import CANCEL

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        CANCEL.set()
        signal.signal(signal.SIGINT, previous)
        typer.echo("stopping: no new window starts, running ones stop before their next page "
                   "(Ctrl-C again to quit at once)", err=True)  # fmt: skip

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        CANCEL.clear()  # the flow has returned: a later run in this process starts afresh


def _detach_temporary_api() -> None:
    """Start Prefect's temporary API (used when no ``PREFECT_API_URL`` is set) in a session of its own.

    Ctrl-C in a terminal signals the whole foreground process group: Prefect's temporary server, a
    child of this process, would stop at once, and the cancelled run could not report its end (the
    observed minutes of ConnectError retries). In its own session only this process hears Ctrl-C;
    the server still stops with it (Prefect's ``atexit`` hook).
    """
    if os.environ.get(PREFECT_API_URL_ENV):
        return
    import functools
    import subprocess
    import types

    from prefect.server.api import server as prefect_server

    instance = prefect_server.SubprocessASGIServer()  # the one Prefect's clients start on first use
    start_uvicorn = instance._run_uvicorn_command

    def detached() -> subprocess.Popen[Any]:
        # Prefect spawns it with the module's `subprocess.Popen`: swapped for this one call only.
        popen = functools.partial(subprocess.Popen, start_new_session=True)
        prefect_server.subprocess = types.SimpleNamespace(Popen=popen)  # type: ignore[assignment]
        try:
            return start_uvicorn()
        finally:
            prefect_server.subprocess = subprocess

    setattr(instance, "_run_uvicorn_command", detached)  # noqa: B010 (mypy: no method assignment)


@contextmanager
def quiet_task_run_logs() -> Iterator[None]:
    """Keep Prefect's per-task INFO lines ("Finished in state Completed()") off the terminal while a
    progress bar shows the same; the API (the UI's logs) still receives them."""
    from prefect.logging.handlers import PrefectConsoleHandler

    def drop(record: logging.LogRecord) -> bool:
        return not (record.name.startswith(TASK_RUN_LOGGER) and record.levelno < logging.WARNING)

    handlers = [
        handler
        for name in ("prefect", "")
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, PrefectConsoleHandler)
    ]
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


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
        ValueError: Neither form.
    """
    match = _DURATION.match(text)
    if match:
        return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(text.strip())
    except ValidationError:
        raise ValueError(f"{text!r} is not a duration such as 1d, 6h, 30m or PT6H") from None


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option} {exc}")


def _when(text: str, option: str) -> date | datetime:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(date | datetime).validate_python(text.strip())
    except ValidationError:
        fail(f"{option} {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]")


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[str, float, str], None]]:
    """A rich bar driven by progress updates (``listener(key, fraction, description)``)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
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
    fail(message, code=1)
