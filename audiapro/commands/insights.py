"""`audiapro insights` and `audiapro alerts`: a tenant's call insights and toll-fraud alerts in the
terminal, from the warehouse (the same figures as the cdr-insights artifacts and the SQL views)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import fail, optional_tenant, tenant_name, time_zone, warehouse_url

if TYPE_CHECKING:
    import sqlalchemy as sa

    from audiapro.insights.report import Report
    from audiapro.tenants import TenantSettings

MIN_CONSOLE_WIDTH: Final = 150  # the alert table unwrapped
console = Console(width=max(Console().width, MIN_CONSOLE_WIDTH))
MAX_SPAN_DAYS: Final = 366
BAR_WIDTH: Final = 40
_SINCE_DAYS: Final = re.compile(r"^(\d{1,3})d$")

alerts_app = typer.Typer(
    help="Toll-fraud alerts (read-only: they never block calls).", invoke_without_command=True
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("insights")(insights)
    app.add_typer(alerts_app, name="alerts")


def span_of(day: str | None, since: str | None, today: date) -> tuple[date, date]:
    """The local days ``--day`` / ``--since`` select (default: yesterday), or fail in one line."""
    if day and since:
        fail("give --day or --since, not both")
    if since:
        match = _SINCE_DAYS.match(since)
        if not match or not 1 <= int(match.group(1)) <= MAX_SPAN_DAYS:
            fail(f"--since {since!r}: give a number of days such as 7d (1d to {MAX_SPAN_DAYS}d)")
        return today - timedelta(days=int(match.group(1)) - 1), today
    if day:
        try:
            return (parsed := date.fromisoformat(day)), parsed
        except ValueError:
            fail(f"--day {day!r} is not a date: use YYYY-MM-DD")
    return today - timedelta(days=1), today - timedelta(days=1)


def _tenant(name: str, zone: str | None, region: str | None) -> TenantSettings:
    from audiapro.tenants import TenantSettings

    if zone:
        return TenantSettings(name=name, timezone=time_zone(zone), region=region or "US")
    try:
        from blocks.clouducm import load_tenant

        settings = load_tenant(name).tenant_settings(name)
    except Exception:
        fail(
            f"tenant {name!r} not found in the Prefect API: add it (`audiapro tenant add`) or give --timezone"
        )
    return settings if region is None else TenantSettings(**{**settings.__dict__, "region": region})


def insights(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    day: Annotated[
        str | None, typer.Option(help="One PBX-local day, YYYY-MM-DD (default: yesterday)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="The last N local days up to today, e.g. 7d")] = None,
    timezone: Annotated[str | None, typer.Option(help="PBX zone (default: the tenant's block)")] = None,
    region: Annotated[str | None, typer.Option(help="Home phone region (default: the tenant's)")] = None,
    compute: Annotated[bool, typer.Option(help="Recompute the days first (idempotent)")] = True,
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """A tenant's call KPIs, calls per hour, dispositions, week over week, extensions, worklist, alerts."""
    from audiapro.insights import report, service
    from audiapro.warehouse import get_engine
    from audiapro.warehouse.connect import has_table

    name = tenant_name(tenant)
    settings = _tenant(name, timezone, region)
    first, last = span_of(day, since, service.local_day(datetime.now(UTC), settings.timezone))
    engine = get_engine(warehouse_url(url))
    try:
        if not has_table(engine, "daily_kpis"):
            fail("the warehouse has no insight tables yet: run `audiapro db upgrade`")
        if compute:
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            service.compute_days(engine, settings, days, now=datetime.now(UTC))
        print_report(report.build_report(engine, name, first, last))
    finally:
        engine.dispose()


def _bar(count: int, top: int) -> str:
    return "█" * (round(BAR_WIDTH * count / top) if top else 0)


def print_report(built: Report) -> None:
    """The report as terminal tables (the same content as the markdown artifact)."""
    from audiapro.insights.report import week_over_week, worklist_rows

    k = built.kpis
    head = Table("calls", "in", "out", "internal", "trunk-trunk", "answered", "missed", "ASR %", "ACD s",
                 "talk min", "peak", "to call back", title=f"{built.tenant} {built.span}")  # fmt: skip
    counts = ("calls", "inbound", "outbound", "internal", "external", "answered", "missed")
    asr = "" if k["asr"] is None else f"{k['asr']:.1f}"
    acd = "" if k["acd_s"] is None else f"{k['acd_s']:.0f}"
    head.add_row(*(str(k[n]) for n in counts), asr, acd, f"{k['talk_min']:.0f}", str(k["peak_concurrent"]),
                 str(k["callbacks_open"]))  # fmt: skip
    console.print(head)
    hours = Table("hour", "calls", "", title="calls per hour (PBX local time)")
    top = max(built.per_hour, default=0)
    for hour, count in enumerate(built.per_hour):
        hours.add_row(f"{hour:02d}", str(count), _bar(count, top))
    console.print(hours)
    _print_rows("dispositions", [{"disposition": d, "calls": n} for d, n in built.dispositions.items()])
    _print_rows("week over week", week_over_week(built))
    _print_rows("top extensions", built.extensions)
    _print_rows("callback worklist (oldest first)", worklist_rows(built))
    _print_rows(
        "toll-fraud alerts",
        [{"id": a["id"], "severity": a["severity"], "rule": a["rule"], "subject": a["subject"],
          "calls": a["calls"], "from_utc": f"{a['window_start']:%Y-%m-%d %H:%M}"} for a in built.alerts],
    )  # fmt: skip


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print(f"{title}: none", highlight=False)
        return
    table = Table(*rows[0], title=title)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _engine(url: str | None) -> sa.Engine:
    from audiapro.warehouse import get_engine
    from audiapro.warehouse.connect import has_table

    engine = get_engine(warehouse_url(url))
    if not has_table(engine, "fraud_alerts"):
        fail("the warehouse has no fraud_alerts table yet: run `audiapro db upgrade`")
    return engine


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include acknowledged alerts")] = False,
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """List open toll-fraud alerts, newest first (`audiapro alerts ack ID` acknowledges one)."""
    if ctx.invoked_subcommand is not None:
        return
    from audiapro.warehouse.insights import list_alerts

    engine = _engine(url)
    try:
        rows = list_alerts(engine, tenant=optional_tenant(tenant), include_acknowledged=all_)
    finally:
        engine.dispose()
    _print_rows("toll-fraud alerts", [_alert_row(a) for a in rows])


def _alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    evidence = alert["evidence"]
    return {
        "id": alert["id"],
        "tenant": alert["tenant"],
        "severity": alert["severity"],
        "rule": alert["rule"],
        "subject": alert["subject"],
        "calls": alert["calls"],
        "from_utc": f"{alert['window_start']:%Y-%m-%d %H:%M}",
        "countries": ",".join(evidence.get("countries", [])),
        "cost": "" if alert["estimated_cost"] is None else f"{alert['estimated_cost']:.2f}",
        "acknowledged": "" if alert["acknowledged_at"] is None else f"{alert['acknowledged_by']}",
    }


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (first column of `audiapro alerts`)")],
    by: Annotated[str, typer.Option(help="Who acknowledges (kept with the alert)")] = "cli",
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """Acknowledge an alert: it leaves the open list (`audiapro alerts --all` still shows it)."""
    from audiapro.warehouse.insights import acknowledge_alert

    engine = _engine(url)
    try:
        found = acknowledge_alert(engine, alert_id, by=by, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if not found:
        fail(f"no fraud alert with id {alert_id}: see `audiapro alerts --all`")
    typer.echo(f"alert {alert_id} acknowledged")
