"""`audiapro analyze` (run the analysis now) and `audiapro openai` (the OpenAI block; key from stdin)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import optional_tenant, warehouse_url

console = Console(width=max(Console().width, 110))
openai_app = typer.Typer(help="OpenAI access for call analysis (a block; no key = offline rules).")

_RELATIVE: Final = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO date or datetime (no zone = UTC) or a span back from now (`90m`, `24h`, `7d`).

    Raises:
        typer.BadParameter: Neither form.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    relative = _RELATIVE.match(text)
    if relative:
        span = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) - span
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither an ISO date/time nor a span like 24h or 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _skips(row: dict[str, Any]) -> str:
    parts = [
        f"{key.removeprefix('skipped_')}={row[key]}"
        for key in row
        if key.startswith("skipped_") and row.get(key)
    ]
    return ", ".join(parts)


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The per-tenant summary of an analysis run."""
    table = Table("tenant", "status", "mode", "analysed", "failed", "skipped (by reason)", "batch",
                  "cost USD", "today USD")  # fmt: skip
    for row in rows:
        status = row.get("status", "")
        if status == "failed":
            status = f"[red]failed[/] {row.get('error', '')}"
        batch = f"{row.get('batch_submitted', 0)} sent, {row.get('batch_collected', 0)} in"
        table.add_row(
            str(row.get("tenant", "")),
            status,
            str(row.get("mode", "")),
            str(row.get("analyzed", "")),
            str(row.get("failed", "")),
            f"{row.get('skipped', 0)} {_skips(row)}".strip(),
            batch if row.get("mode") == "openai" else "",
            str(row.get("cost_usd", "")),
            str(row.get("spent_today_usd", "")),
        )
    console.print(table)


def analyze(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    since: Annotated[
        str | None, typer.Option(help="Calls since an ISO date/time (UTC) or a span: 24h, 7d")
    ] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Text step via the Batch API (backfills)")] = False,
    max_calls: Annotated[int | None, typer.Option(help="At most this many calls to the model")] = None,
) -> None:
    """Analyse calls now (the flow the poll starts); offline rules when no OpenAI key is configured."""
    from audiapro.analysis.run import default_since

    tenant = optional_tenant(tenant)
    now = datetime.now(UTC)
    window_start = parse_since(since, now) or default_since(now)
    url = warehouse_url()
    from flows.analyze import analyze_calls

    state = analyze_calls(
        tenant=tenant, since=window_start, use_batch=batch, max_calls=max_calls, return_state=True
    )
    result = state.result(raise_on_failure=False)
    rows: list[dict[str, Any]] = list(result) if isinstance(result, list) else []
    print_rows(rows)
    hint = backlog_hint(url, [str(row["tenant"]) for row in rows if row.get("status") == "ok"],
                        window_start, tenant)  # fmt: skip
    if hint:
        console.print(hint, highlight=False, soft_wrap=True)
    if state.is_failed():
        raise typer.Exit(1)


def backlog_hint(url: str, tenants: list[str], window_start: datetime, tenant: str | None) -> str | None:
    """One line about never-analysed calls older than the window, and the option that includes them.

    Args:
        url: Warehouse URL.
        tenants: The tenants the run analysed.
        window_start: Start of the run's window (calls that started before it were left out).
        tenant: The ``--tenant`` given, repeated in the suggested command.

    Returns:
        The line, or None when no tenant has such calls.
    """
    from audiapro.warehouse import get_engine
    from audiapro.warehouse.backlog import unanalysed_before

    engine = get_engine(url)
    try:
        backlogs = [unanalysed_before(engine, name, window_start) for name in tenants]
    finally:
        engine.dispose()
    count = sum(b.calls for b in backlogs)
    oldest = min((b.oldest_start for b in backlogs if b.oldest_start is not None), default=None)
    if not count or oldest is None:
        return None
    command = "audiapro analyze" + (f" --tenant {tenant}" if tenant else "") + f" --since {oldest:%Y-%m-%d}"
    return (
        f"{count} older call{'s' if count != 1 else ''} (started before {window_start:%Y-%m-%d %H:%M} UTC, "
        f"the start of this run's window) never analysed: include them with --since, e.g. `{command}`"
    )


@openai_app.command("set")
def openai_set(
    name: Annotated[str, typer.Option(help="Block document name")] = "default",
    key_stdin: Annotated[bool, typer.Option("--key-stdin", help="Read the API key from stdin")] = False,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL (…/v1)")] = None,
    organization: Annotated[str | None, typer.Option(help="Organization id")] = None,
    project: Annotated[str | None, typer.Option(help="Project id")] = None,
    text_model: Annotated[str | None, typer.Option(help="Text model")] = None,
    transcription_model: Annotated[str | None, typer.Option(help="Transcription model")] = None,
) -> None:
    """Save the OpenAI block. The key is read from stdin, never from the command line."""
    from pydantic import SecretStr

    from blocks.openai import OpenAICredentials

    fields: dict[str, Any] = {"base_url": base_url, "organization": organization, "project": project}
    if text_model:
        fields["text_model"] = text_model
    if transcription_model:
        fields["transcription_model"] = transcription_model
    key = sys.stdin.readline().strip() if key_stdin else ""
    block = OpenAICredentials(api_key=SecretStr(key), **fields)
    block.analyzer_settings()  # refuse models without a price before saving
    block.save(name, overwrite=True)
    mode = "OpenAI" if block.configured else "offline (no key)"
    console.print(f"OpenAI block [bold]{name}[/] saved: {mode}")


@openai_app.command("show")
def openai_show(name: Annotated[str, typer.Option(help="Block document name")] = "default") -> None:
    """Show the OpenAI block (never the key)."""
    from blocks.openai import OpenAICredentials

    try:
        block = OpenAICredentials.load(name)
    except ValueError:
        console.print(f"no OpenAI block {name!r}: analysis runs offline")
        return
    assert isinstance(block, OpenAICredentials)
    console.print(
        f"{name}: key {'set' if block.configured else 'not set (offline)'}, base URL "
        f"{block.base_url or 'api.openai.com'}, models {block.transcription_model} + {block.text_model}"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command()(analyze)
    app.add_typer(openai_app, name="openai")
