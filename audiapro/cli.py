"""The ``audiapro`` command.

This module is an edge, like ``flows/``: commands that run flows or touch blocks import Prefect
lazily, so ``audiapro simulate`` and ``audiapro db upgrade`` start fast and work without it.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import (
    optional_tenant,
    time_zone,
    use_local_stack_api,
    warehouse_url,
)
from audiapro.home import use_home
from audiapro.prefect_names import DEMO_TENANT

if TYPE_CHECKING:
    from audiapro.ucm.simulator import SimulatorConfig

app = typer.Typer(
    help="AudiaPro call-data pipeline: Grandstream CloudUCM CDRs into Postgres.", no_args_is_help=True
)
db_app = typer.Typer(help="Warehouse schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(width=max(Console().width, 110))

#: Settings of the demo tenant (prefect_names.DEMO_TENANT) that `audiapro demo` polls.
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

    time_zone(tz, "--tz")

    from audiapro.ucm.simulator import (
        FaultConfig,
        SimulatorConfig,
        UcmSimulator,
        serve_forever,
        write_ui_export,
    )

    password = os.environ.get(password_env) or "cdrapi-demo-password"
    base = SimulatorConfig(
        seed=seed,
        calls_per_day=calls,
        days=days,
        tz=tz,
        api_user=api_user,
        password=password,
        tls=tls,
        live_rate=live_rate,
    )
    config = simulator_config(base, now=datetime.now(UTC))
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


def simulator_config(base: SimulatorConfig, *, now: datetime) -> SimulatorConfig:
    """``base`` (seed, volume, zone, login, live rate) as `audiapro simulate` serves it (and so
    `make up`'s live PBX): on a real clock, its ``days`` of history ending with today.

    The live stream (``live_rate`` calls a minute) starts at ``now``, the moment the simulator starts,
    so new calls end within minutes whatever the time of day (history follows office hours: at night
    it adds next to nothing).
    """
    return replace(
        base,
        start=(now - timedelta(days=max(base.days - 1, 0))).date(),
        live_start=now if base.live_rate > 0 else None,
        clock="real",
    )


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[str | None, typer.Option(help="Database URL (default: configured)")] = None,
) -> None:
    """Migrate the warehouse schema to the newest version (alembic upgrade head)."""
    from audiapro.warehouse import get_engine, upgrade

    engine = get_engine(warehouse_url(url))
    upgrade(engine)
    console.print(f"warehouse at head ({engine.url.render_as_string(hide_password=True)})")


@app.command()
def poll(tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None) -> None:
    """Run one poll tick now (the same flow the 2-minute schedule runs)."""
    tenant = optional_tenant(tenant)
    warehouse_url()
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

    warehouse_url()
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


def _run_poll(tenant: str | None) -> list[dict[str, Any]]:
    from flows.poll import poll_cdrs

    state = poll_cdrs(tenant=tenant, return_state=True)
    rows = state.result(raise_on_failure=False)
    return list(rows) if isinstance(rows, list) else []


#: Counts of a poll row shown by `audiapro poll` and the demo.
_ROW_COUNTS = ("pieces", "fetched", "inserted", "updated", "rejected", "seconds")


def _clock(iso: str) -> str:
    """``MM-DD HH:MM`` of an ISO timestamp."""
    return iso[5:16].replace("T", " ")


def _print_rows(rows: list[dict[str, Any]]) -> None:
    table = Table(
        "tenant", "status", "window (UTC)", "pieces", "fetched", "new", "updated", "rejected", "seconds"
    )
    for row in rows:
        ends = (_clock(row["window_start"]), _clock(row["window_end"])) if row.get("window_end") else None
        window = f"{ends[0]} → {ends[1]}" if ends else ""
        table.add_row(
            row["tenant"],
            row["status"] if row["status"] != "failed" else f"[red]failed[/] {row.get('error', '')}",
            window,
            *(str(row.get(k, "")) for k in _ROW_COUNTS),
        )
    console.print(table)
    for row in rows:
        if row["status"] == "busy":  # not an error, but say why nothing was loaded
            console.print(
                f"{row['tenant']}: busy: another poll tick or a backfill is working this tenant right now "
                "(see `audiapro status`); that run, or the next scheduled tick, covers this window",
                highlight=False,
                soft_wrap=True,
            )


def _print_warehouse_summary() -> None:
    from audiapro.warehouse import get_engine, summary_counts

    engine = get_engine(warehouse_url())
    table = Table("table", "rows", title=f"warehouse {engine.url.render_as_string(hide_password=True)}")
    for name, count in summary_counts(engine).items():
        table.add_row(name, str(count))
    console.print(table)


@app.callback()
def main() -> None:
    """AudiaPro call-data pipeline: Grandstream CloudUCM CDRs into Postgres."""
    # Before any Prefect import (Prefect reads PREFECT_HOME once): one state home for this command
    # and every process it starts, whichever directory it runs from (audiapro.home).
    use_home()
    # A running `make up` stack (found through the home's run directory) is the API when none is set.
    use_local_stack_api()


def _register_areas() -> None:
    from audiapro.commands import analysis, calls, history, ops, push, reconcile, sources, tenants
    from audiapro.commands import insights as insights_area

    for area in (tenants, history, calls, analysis, ops, reconcile, sources, push, insights_area):
        area.register(app)


_register_areas()

if __name__ == "__main__":
    app()
