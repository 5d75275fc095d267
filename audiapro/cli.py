"""The ``audiapro`` command.

This module is an edge, like ``flows/``: commands that run flows or touch blocks import Prefect
lazily, so ``audiapro simulate`` and ``audiapro db upgrade`` start fast and work without it.
"""

from __future__ import annotations

import enum
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiapro import settings


class Scheme(enum.StrEnum):
    """Transport to the PBX."""

    https = "https"
    http = "http"


app = typer.Typer(
    help="AudiaPro call-data pipeline: Grandstream CloudUCM CDRs into Postgres.", no_args_is_help=True
)
tenant_app = typer.Typer(help="Manage tenants (one CloudUCM block each).", no_args_is_help=True)
db_app = typer.Typer(help="Warehouse schema.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(db_app, name="db")
console = Console(width=max(Console().width, 110))

#: Settings of the demo tenant that `audiapro demo` polls.
DEMO_TENANT = "demo"
DEMO_TIMEZONE = "America/New_York"
DEMO_CALLS_PER_DAY = 400


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8089,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS with a generated CA")] = False,
    seed: Annotated[int, typer.Option(help="Data seed")] = 1,
    calls: Annotated[int, typer.Option(help="Calls per day")] = 300,
    days: Annotated[int, typer.Option(help="Days of history ending today")] = 7,
    tz: Annotated[str, typer.Option(help="PBX time zone (IANA)")] = DEMO_TIMEZONE,
    live_rate: Annotated[float, typer.Option(help="New calls per minute as time passes")] = 0.0,
    api_user: Annotated[str, typer.Option(help="API user")] = "cdrapi",
    password_env: Annotated[
        str, typer.Option(help="Env var holding the API password")
    ] = "AUDIAPRO_SIM_PASSWORD",
    cookie_expire_every: Annotated[int, typer.Option(help="Fault: drop the session every K requests")] = 0,
    throttle_rate: Annotated[float, typer.Option(help="Fault: share of requests answered -45")] = 0.0,
    http500_rate: Annotated[float, typer.Option(help="Fault: share of requests answered HTTP 500")] = 0.0,
    repeat_page_rate: Annotated[float, typer.Option(help="Fault: share of pages repeated")] = 0.0,
    short_page_rate: Annotated[float, typer.Option(help="Fault: share of pages cut short")] = 0.0,
    slow_ms: Annotated[int, typer.Option(help="Fault: delay every response by this many ms")] = 0,
    export: Annotated[
        str | None, typer.Option(help="Write the legs as a UI-style CSV export and exit")
    ] = None,
) -> None:
    """Run the bundled CloudUCM simulator on loopback (the demo's and the tests' PBX)."""
    import os

    from audiapro.ucm.simulator import (
        FaultConfig,
        SimulatorConfig,
        UcmSimulator,
        serve_forever,
        write_ui_export,
    )

    password = os.environ.get(password_env) or "cdrapi-demo-password"
    start = (datetime.now(UTC) - timedelta(days=max(days - 1, 0))).date()
    config = SimulatorConfig(
        seed=seed,
        calls_per_day=calls,
        start=start,
        days=days,
        tz=tz,
        api_user=api_user,
        password=password,
        tls=tls,
        live_rate=live_rate,
        clock="real",
    )
    faults = FaultConfig(
        cookie_expire_every=cookie_expire_every,
        throttle_rate=throttle_rate,
        http500_rate=http500_rate,
        repeat_page_rate=repeat_page_rate,
        short_page_rate=short_page_rate,
        slow_ms=slow_ms,
    )
    if export:
        legs = UcmSimulator(config, faults=faults).ground_truth()
        write_ui_export(legs, export)
        console.print(f"wrote {len(legs)} legs to {export}")
        return
    serve_forever(config, faults, "127.0.0.1", port)


@tenant_app.command("add")
def tenant_add(
    name: Annotated[str, typer.Argument(help="Tenant name (becomes the CloudUCM block name)")],
    host: Annotated[str, typer.Option(help="PBX host; empty for an import-only tenant")] = "",
    port: Annotated[int, typer.Option(help="HTTPS API port")] = 8443,
    user: Annotated[str, typer.Option(help="API user")] = "cdrapi",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the API password from stdin")
    ] = False,
    timezone: Annotated[str, typer.Option(help="PBX time zone (IANA)")] = "UTC",
    region: Annotated[str, typer.Option(help="Default phone region")] = settings.DEFAULT_PHONE_REGION,
    ca_file: Annotated[str | None, typer.Option(help="CA bundle for the PBX certificate")] = None,
    insecure: Annotated[bool, typer.Option(help="Skip TLS verification (not advised)")] = False,
    scheme: Annotated[Scheme, typer.Option(help="https, or http for a local simulator")] = Scheme.https,
    lookback: Annotated[int, typer.Option(help="Lookback seconds")] = settings.DEFAULT_LOOKBACK_SECONDS,
    api_sessions: Annotated[
        int, typer.Option(min=1, max=8, help="API sessions the PBX may hold at once (poll + backfill)")
    ] = settings.DEFAULT_PBX_API_SESSIONS,
) -> None:
    """Add or update a tenant. The password is read from stdin, never from the command line."""
    from zoneinfo import ZoneInfo

    from pydantic import SecretStr

    from blocks.clouducm import CloudUCM

    ZoneInfo(timezone)  # fail early on a typo
    password = sys.stdin.readline().rstrip("\n") if password_stdin else ""
    if host and not password:
        raise typer.BadParameter("a PBX tenant needs --password-stdin")
    if ca_file and insecure:
        raise typer.BadParameter("--ca-file and --insecure exclude each other")
    CloudUCM(
        host=host,
        port=port,
        api_user=user,
        password=SecretStr(password),
        timezone=timezone,
        region=region,
        ca_file=ca_file,
        insecure=insecure,
        scheme=scheme.value,
        lookback_seconds=lookback,
        api_sessions=api_sessions,
    ).save(name, overwrite=True)
    console.print(f"tenant [bold]{name}[/] saved")


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants (never prints secrets)."""
    from blocks.clouducm import list_tenants, load_tenant

    table = Table("tenant", "host", "port", "user", "timezone", "region", "tls", "sessions", "enabled")
    for name in list_tenants(only_enabled=False):
        block = load_tenant(name)
        tls = "insecure" if block.insecure else ("ca-file" if block.ca_file else block.scheme)
        table.add_row(name, block.host, str(block.port), block.api_user, block.timezone, block.region, tls,
                      str(block.api_sessions), str(block.enabled))  # fmt: skip
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """Migrate the warehouse schema to the newest version (alembic upgrade head)."""
    from audiapro.warehouse import get_engine, upgrade

    engine = get_engine(url or _database_url())
    upgrade(engine)
    console.print(f"warehouse at head ({engine.url.render_as_string(hide_password=True)})")


@app.command()
def poll(tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None) -> None:
    """Run one poll tick now (the same flow the 2-minute schedule runs)."""
    rows = _run_poll(tenant)
    _print_rows(rows)
    if any(row["status"] == "failed" for row in rows):
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Simulator -> tenant -> poll (twice: the second finds nothing new) -> summary, on embedded SQLite."""
    from pydantic import SecretStr

    from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
    from blocks.clouducm import CloudUCM

    password = secrets.token_urlsafe(16)
    start = (datetime.now(UTC) - timedelta(days=1)).date()
    sim = UcmSimulator(
        SimulatorConfig(
            seed=42,
            calls_per_day=DEMO_CALLS_PER_DAY,
            start=start,
            days=2,
            tz=DEMO_TIMEZONE,
            password=password,
            tls=True,
            clock="real",
        )
    )
    with sim.serve(port=0) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        console.print(f"simulated CloudUCM listening on {base_url} (TLS, CA {sim.ca_file})")
        CloudUCM(
            host="127.0.0.1",
            port=port,
            password=SecretStr(password),
            timezone=DEMO_TIMEZONE,
            ca_file=str(sim.ca_file),
        ).save(DEMO_TENANT, overwrite=True)
        for tick in (1, 2):
            console.print(f"[bold]poll tick {tick}[/]")
            _print_rows(_run_poll(DEMO_TENANT))
        _print_warehouse_summary()


def _database_url() -> str:
    from blocks.warehouse import resolve_database_url

    return resolve_database_url()


def _run_poll(tenant: str | None) -> list[dict[str, Any]]:
    from flows.poll import poll_cdrs

    state = poll_cdrs(tenant=tenant, return_state=True)
    rows = state.result(raise_on_failure=False)
    return list(rows) if isinstance(rows, list) else []


def _print_rows(rows: list[dict[str, Any]]) -> None:
    table = Table("tenant", "status", "window (UTC)", "fetched", "new", "updated", "rejected", "seconds")
    for row in rows:
        window = f"{row['window_start'][5:16]} → {row['window_end'][5:16]}" if row.get("window_end") else ""
        table.add_row(
            row["tenant"],
            row["status"] if row["status"] != "failed" else f"[red]failed[/] {row.get('error', '')}",
            window,
            *(str(row.get(k, "")) for k in ("fetched", "inserted", "updated", "rejected", "seconds")),
        )
    console.print(table)


def _print_warehouse_summary() -> None:
    from audiapro.warehouse import get_engine, summary_counts

    engine = get_engine(_database_url())
    table = Table("table", "rows", title=f"warehouse {engine.url.render_as_string(hide_password=True)}")
    for name, count in summary_counts(engine).items():
        table.add_row(name, str(count))
    console.print(table)


def _register_areas() -> None:
    from audiapro.commands import analysis, history, ops, reconcile

    for area in (history, analysis, ops, reconcile):
        area.register(app)


_register_areas()

if __name__ == "__main__":
    app()
