"""The ``audiapro`` command.

This module is an edge, like ``flows/``: commands that run flows or touch blocks import Prefect
lazily, so ``audiapro simulate`` and ``audiapro db upgrade`` start fast and work without it.
"""

from __future__ import annotations

import enum
import logging
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiapro import settings
from audiapro.commands.common import (
    ZONE_EXAMPLES,
    fail,
    optional_tenant,
    tenant_name,
    time_zone,
    use_local_stack_api,
    warehouse_url,
)


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
logger = logging.getLogger(__name__)

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

    time_zone(tz, "--tz")

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


#: Options of `tenant add` and `tenant set`. None means "not given": an existing tenant keeps its value.
HostOption = Annotated[str | None, typer.Option(help="PBX host; empty for an import-only tenant")]
PortOption = Annotated[int | None, typer.Option(min=1, max=65535, help="HTTPS API port [new: 8443]")]
UserOption = Annotated[str | None, typer.Option(help="API user [new: cdrapi]")]
PasswordOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the API password from stdin (first line)")
]
ZoneOption = Annotated[
    str | None, typer.Option(help="PBX time zone (IANA, e.g. America/Chicago); required for a new PBX")
]
RegionOption = Annotated[
    str | None, typer.Option(help=f"Default phone region [new: {settings.DEFAULT_PHONE_REGION}]")
]
CaFileOption = Annotated[str | None, typer.Option(help="CA bundle for the PBX certificate ('' clears)")]
InsecureOption = Annotated[
    bool | None, typer.Option("--insecure/--no-insecure", help="Skip TLS verification (not advised)")
]
SchemeOption = Annotated[Scheme | None, typer.Option(help="https, or http for a local simulator")]
LookbackOption = Annotated[
    int | None, typer.Option(min=0, help=f"Lookback seconds [new: {settings.DEFAULT_LOOKBACK_SECONDS}]")
]
SessionsOption = Annotated[
    int | None,
    typer.Option(min=1, max=8, help="API sessions the PBX may hold at once (poll + backfill) [new: 3]"),
]
EnabledOption = Annotated[
    bool | None, typer.Option("--enabled/--disabled", help="Whether poll-cdrs polls it [new: enabled]")
]
#: The one block field `tenant add/set` never prints (only its name, when it changed).
_PASSWORD_FIELD = "password"


@tenant_app.command("add")
def tenant_add(
    name: Annotated[str, typer.Argument(help="Tenant name (Acme_Corp is stored as acme-corp)")],
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None,
    password_stdin: PasswordOption = False,
    timezone: ZoneOption = None,
    region: RegionOption = None,
    ca_file: CaFileOption = None,
    insecure: InsecureOption = None,
    scheme: SchemeOption = None,
    lookback: LookbackOption = None,
    api_sessions: SessionsOption = None,
    enabled: EnabledOption = None,
) -> None:
    """Add a tenant, or change the options given of an existing one (the rest stay as they are).

    The password is read from stdin, never from the command line. A PBX tenant (--host) needs
    --timezone: the PBX writes local times, and a wrong zone shifts every call by hours.
    """
    fields = {"host": host, "port": port, "api_user": user, "timezone": timezone, "region": region,
              "ca_file": ca_file, "insecure": insecure, "scheme": scheme.value if scheme else None,
              "lookback_seconds": lookback, "api_sessions": api_sessions, "enabled": enabled}  # fmt: skip
    _save_tenant(name, fields, password_stdin=password_stdin, must_exist=False)


@tenant_app.command("set")
def tenant_set(
    name: Annotated[str, typer.Argument(help="An existing tenant")],
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None,
    password_stdin: PasswordOption = False,
    timezone: ZoneOption = None,
    region: RegionOption = None,
    ca_file: CaFileOption = None,
    insecure: InsecureOption = None,
    scheme: SchemeOption = None,
    lookback: LookbackOption = None,
    api_sessions: SessionsOption = None,
    enabled: EnabledOption = None,
) -> None:
    """Change the options given of an existing tenant, e.g. rotate its password with --password-stdin."""
    fields = {"host": host, "port": port, "api_user": user, "timezone": timezone, "region": region,
              "ca_file": ca_file, "insecure": insecure, "scheme": scheme.value if scheme else None,
              "lookback_seconds": lookback, "api_sessions": api_sessions, "enabled": enabled}  # fmt: skip
    _save_tenant(name, fields, password_stdin=password_stdin, must_exist=True)


def on_password_changed(tenant: str) -> None:
    """Called after `tenant add` or `tenant set` stored a password given on stdin for ``tenant``.

    The place to drop whatever was derived from the old password (a persisted PBX login, say);
    for now it only logs at DEBUG (the tenant's name, never the password).
    """
    logger.debug("API password of tenant %s set", tenant)


def _save_tenant(typed: str, given: dict[str, Any], *, password_stdin: bool, must_exist: bool) -> None:
    """Create or update the tenant's block with the options given; one-line errors for bad input."""
    from pydantic import SecretStr, ValidationError

    from blocks.clouducm import CloudUCM

    name = tenant_name(typed)
    fields = {key: value for key, value in given.items() if value is not None}
    if "timezone" in fields:
        time_zone(fields["timezone"])
    if fields.get("ca_file") == "":
        fields["ca_file"] = None
    existing = _existing_tenant(name)
    if existing is None and must_exist:
        fail(f"no tenant {name!r}: see `audiapro tenant list`, or add it with `audiapro tenant add`")
    if password_stdin:
        fields[_PASSWORD_FIELD] = SecretStr(_read_password())
    current = {key: getattr(existing, key) for key in CloudUCM.model_fields} if existing else {}
    try:
        block = CloudUCM(**{**current, **fields})
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
    _check_tenant(block, existing, fields)
    block.save(name, overwrite=True)
    if name != typed:
        console.print(f"tenant {typed!r} saved as {name!r}", highlight=False)
    console.print(_saved_message(name, block, existing), highlight=False)
    if password_stdin:
        on_password_changed(name)


def _existing_tenant(name: str) -> Any:
    from blocks.clouducm import load_tenant

    try:
        return load_tenant(name)
    except ValueError:  # no such block document
        return None


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("--password-stdin read an empty line: pipe the password in, e.g. < password.txt")
    return password


def _check_tenant(block: Any, existing: Any, fields: dict[str, Any]) -> None:
    """Refuse a tenant that would poll wrongly: no zone or password for a PBX, contradictory TLS."""
    if block.host and "timezone" not in fields and not (existing is not None and existing.host):
        fail(
            "a PBX tenant needs --timezone, the zone its CDR times are written in "
            f"(e.g. {ZONE_EXAMPLES}); without it every call would be stored hours off"
        )
    if block.host and not block.password.get_secret_value():
        fail("a PBX tenant needs its API password: add --password-stdin and pipe the password in")
    if block.ca_file and block.insecure:
        fail("--ca-file and --insecure exclude each other (--no-insecure or --ca-file '' undoes one)")


def _saved_message(name: str, block: Any, existing: Any) -> str:
    where = f"PBX {block.scheme}://{block.host}:{block.port}" if block.host else "import-only"
    if existing is None:
        return f"tenant {name!r} added ({where}, time zone {block.timezone})"
    changed = [key for key in type(block).model_fields if _differs(block, existing, key)]
    if not changed:
        return f"tenant {name!r} unchanged ({where}, time zone {block.timezone})"
    return f"tenant {name!r} updated: {', '.join(changed)} ({where}, time zone {block.timezone})"


def _differs(block: Any, existing: Any, key: str) -> bool:
    new, old = getattr(block, key), getattr(existing, key)
    if key == _PASSWORD_FIELD:
        return bool(new.get_secret_value() != old.get_secret_value())
    return bool(new != old)


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

    engine = get_engine(warehouse_url())
    table = Table("table", "rows", title=f"warehouse {engine.url.render_as_string(hide_password=True)}")
    for name, count in summary_counts(engine).items():
        table.add_row(name, str(count))
    console.print(table)


@app.callback()
def main() -> None:
    """AudiaPro call-data pipeline: Grandstream CloudUCM CDRs into Postgres."""
    # Before any Prefect import: a running `make up` stack is the API to use when none is set.
    use_local_stack_api()


def _register_areas() -> None:
    from audiapro.commands import analysis, history, ops, reconcile

    for area in (history, analysis, ops, reconcile):
        area.register(app)


_register_areas()

if __name__ == "__main__":
    app()
