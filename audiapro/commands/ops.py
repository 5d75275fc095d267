"""Operations commands: ``audiapro status``, ``audiapro api``, ``audiapro admin-token set``.

Like the rest of the CLI edge, Prefect, FastAPI and uvicorn are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import PREFECT_API_URL_ENV, fail, tenant_name, warehouse_url

if TYPE_CHECKING:
    import sqlalchemy as sa
    import uvicorn

    from audiapro.api.health import Completeness, HealthReport, TenantHealth
    from audiapro.api.orchestrator import Orchestrator
    from audiapro.push.receiver import PushReceiver
    from audiapro.push.tcp import TcpPushListener
    from audiapro.warehouse import DayReconciliation, LoginBlock, SyncState

T = TypeVar("T")

console = Console(width=max(Console().width, 110))
err_console = Console(stderr=True)
token_app = typer.Typer(help="The admin API's bearer token (a Prefect Secret block).", no_args_is_help=True)

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
#: Exit codes of `audiapro status`.
EXIT_OK, EXIT_DEGRADED, EXIT_ERROR = 0, 1, 2
#: How long `audiapro api` waits for its temporary Prefect API; the first start migrates a new
#: database, which takes longer than Prefect's own default wait on a busy small machine.
TEMPORARY_API_START_TIMEOUT_S = 120
#: Length (bytes of randomness) of a generated admin token: 43 URL-safe characters.
TOKEN_BYTES = 32
BYTES_PER_KB = 1000


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("status")(status)
    app.command("api")(api)
    app.add_typer(token_app, name="admin-token")


@functools.cache
def _engine(url: str) -> sa.Engine:
    from audiapro.warehouse import get_engine

    return get_engine(url)


def read_sync_states(url: str | None = None) -> list[SyncState]:
    """The warehouse's sync_state rows (none yet when the schema was never created).

    Args:
        url: The warehouse; by default the configured one (``blocks.warehouse.resolve_database_url``).

    Raises:
        WarehouseUnavailable: The warehouse cannot be reached (one line saying what to check).
    """
    from audiapro.warehouse import list_sync_states
    from audiapro.warehouse.connect import has_table, reporting_unavailable

    url = url or _configured_url()
    # The admin API's health report shows the error line; it names what to check, never the password.
    with reporting_unavailable(url):
        engine = _engine(url)
        return list_sync_states(engine) if has_table(engine, "sync_state") else []


def read_recent_reconciliations(url: str | None = None) -> list[DayReconciliation]:
    """Each tenant's latest reconciled days (none when the schema predates reconcile_days)."""
    from audiapro.warehouse import recent_reconcile_days

    return _read_if_table("reconcile_days", recent_reconcile_days, url)


def read_login_pauses(url: str | None = None) -> list[LoginBlock]:
    """Tenants whose PBX logins are paused now (none when the schema predates login_blocks)."""
    from datetime import UTC, datetime

    from audiapro.warehouse import list_login_blocks

    return _read_if_table(
        "login_blocks", lambda engine: list_login_blocks(engine, active_at=datetime.now(UTC)), url
    )


def _read_if_table(table: str, read: Callable[[sa.Engine], list[T]], url: str | None) -> list[T]:
    """``read`` the warehouse at ``url`` (default: the configured one) when it has ``table``, else nothing."""
    from audiapro.warehouse.connect import has_table

    engine = _engine(url or _configured_url())
    return read(engine) if has_table(engine, table) else []


def _configured_url() -> str:
    from blocks.warehouse import resolve_database_url

    return resolve_database_url()


def _health(url: str, orchestrator: Orchestrator) -> HealthReport:
    """The health report of the warehouse at ``url`` and what ``orchestrator`` says."""
    from audiapro.api.service import gather_health

    return gather_health(
        orchestrator,
        functools.partial(read_sync_states, url),
        read_completeness=functools.partial(read_recent_reconciliations, url),
        read_login_blocks=functools.partial(read_login_pauses, url),
    )


def _status_orchestrator() -> tuple[Orchestrator, str]:
    """The fastest way to Prefect's answer, and a line saying which Prefect API that is.

    Plain REST for an API on loopback, Prefect's database when no API is configured or runs, else
    Prefect's client (a remote API, or settings in a Prefect profile or project file).
    """
    from audiapro.api.local_orchestrators import NoServerOrchestrator, RestOrchestrator
    from audiapro.home import prefect_home
    from audiapro.ops.prefect_store import block_documents
    from audiapro.prefect_names import TENANT_BLOCK_TYPE

    api_url = os.environ.get(PREFECT_API_URL_ENV)
    tenants = block_documents(TENANT_BLOCK_TYPE)
    if api_url and tenants is not None:  # block_documents answered through this (loopback) API
        return RestOrchestrator(api_url), api_url
    if not api_url and tenants is not None:
        where = "none running: nothing polls on a schedule (start one with `make up`); "
        where += f"tenants read from {prefect_home()}"
        return NoServerOrchestrator(tenants), where
    from audiapro.api.orchestrator import PrefectOrchestrator

    return PrefectOrchestrator(), api_url or "as your Prefect profile or project settings say"


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON GET /api/health answers with the admin token")
    ] = False,
) -> None:
    """Show the pipeline's health: the poll deployment, every tenant's sync state and completeness.

    Exit code 0 when healthy, 1 when degraded, 2 when Prefect or the warehouse cannot be read.
    """
    url = warehouse_url()
    orchestrator, api = _status_orchestrator()
    report = _health(url, orchestrator)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_where(url, api)
        _print_report(report)
    codes = {"ok": EXIT_OK, "degraded": EXIT_DEGRADED}
    raise typer.Exit(codes.get(report.status.value, EXIT_ERROR))


def _warn_without_api_url() -> None:
    # Without it Prefect answers from a temporary local API that knows no deployment or tenant.
    if not os.environ.get(PREFECT_API_URL_ENV):
        err_console.print(
            "[yellow]PREFECT_API_URL is not set and no `make up` stack answers: asking a temporary "
            "local Prefect API (run `make up` here, or export PREFECT_API_URL=<server>/api)[/]",
            soft_wrap=True,
        )


def _print_where(url: str, api: str) -> None:
    """Where this command's state is: the home, the warehouse (no password), the Prefect API."""
    from audiapro.home import audiapro_home
    from audiapro.warehouse.connect import safe_url

    home = f"home      {audiapro_home()}  (AUDIAPRO_HOME)"
    lines = (home, f"warehouse {safe_url(url)}", f"prefect   {api}", recordings_line())
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def recordings_line() -> str:
    """Disk used by kept call recordings (``audiapro.retention``), in total and per tenant."""
    from audiapro.retention import recording_usage, recordings_root

    usage = recording_usage()
    files = sum(u.files for u in usage.values())
    total = sum(u.bytes for u in usage.values())
    per_tenant = ", ".join(f"{name} {u.files} files {_size(u.bytes)}" for name, u in usage.items() if u.files)
    detail = f" ({per_tenant})" if per_tenant else ""
    return f"recordings {files} files, {_size(total)} kept in {recordings_root()}{detail}"


def _size(count: int) -> str:
    """Bytes for people: ``0 B``, ``12.3 MB``."""
    value, unit = float(count), "B"
    for bigger in ("kB", "MB", "GB"):
        if value < BYTES_PER_KB:
            break
        value, unit = value / BYTES_PER_KB, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def _print_report(report: HealthReport) -> None:
    colour = {"ok": "green", "degraded": "yellow"}.get(report.status.value, "red")
    console.print(
        f"status [bold {colour}]{report.status.value}[/]   checked {report.checked_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    console.print(f"cdr_poller [bold]{report.cdr_poller.value}[/]: {report.poller_detail}")
    if report.next_run_at:
        console.print(f"next scheduled poll {report.next_run_at:%H:%M:%S} UTC")
    table = Table("tenant", "status", "last success (UTC)", "lag s", "failures", "complete", "last error")
    for t in report.tenants:
        success = f"{t.last_success_at:%m-%d %H:%M:%S}" if t.last_success_at else ""
        lag = "" if t.lag_seconds is None else str(t.lag_seconds)
        table.add_row(
            t.tenant,
            status_cell(t),
            success,
            lag,
            str(t.consecutive_failures),
            completeness_cell(t.completeness),
            t.last_error or "",
        )
    console.print(table)
    for error in report.errors:
        console.print(f"[red]error[/] {error}")


def status_cell(line: TenantHealth) -> str:
    """The status, with what an operator needs to act on it (until when logins are paused...)."""
    if line.paused_until is not None:
        return f"[red]login paused[/] until {line.paused_until:%m-%d %H:%M} UTC"
    if line.status.value == "silent":
        return f"[yellow]silent[/] ({line.empty_ticks} empty windows)"
    return line.status.value


def completeness_cell(completeness: Completeness | None) -> str:
    """``03-03 100.00 %`` (the latest reconciled day), plus the worst of the last 7 when below 100 %."""
    if completeness is None:
        return "not reconciled"
    colour = "green" if completeness.complete else "red"
    text = f"{completeness.day:%m-%d} [{colour}]{completeness.percent:.2f} %[/]"
    if completeness.worst_day is not None and completeness.worst_day != completeness.day:
        text += f" (worst {completeness.worst_day:%m-%d} [red]{completeness.worst_percent:.2f} %[/])"
    return text


def api(
    host: Annotated[str, typer.Option(help="Bind address")] = DEFAULT_API_HOST,
    port: Annotated[int, typer.Option(help="TCP port")] = DEFAULT_API_PORT,
    push_tcp: Annotated[
        list[str] | None,
        typer.Option(help="TENANT:PORT: also take that tenant's CDR pushes over TCP on PORT (repeatable)"),
    ] = None,
    push_tcp_allow: Annotated[
        list[str] | None,
        typer.Option(help="Network the TCP pushes may come from, e.g. 203.0.113.7/32 [default: loopback]"),
    ] = None,
) -> None:
    """Serve the admin HTTP API (GET /api/health, POST /api/admin/sync-cdrs; docs at /api/docs).

    Also the CDR push receiver (POST /api/push/ucm/TENANT, see `audiapro tenant push`) and the upload
    page (/upload).

    Health without the admin token says only ok, degraded or error; with it, the full report.

    Without PREFECT_API_URL (and no `make up` stack) it runs a temporary Prefect API of its own,
    which stops with it: on Ctrl-C, on SIGTERM, and when the API fails to start.
    """
    import uvicorn

    from audiapro.api.app import create_app
    from audiapro.api.orchestrator import PrefectOrchestrator
    from audiapro.push.receiver import PushReceiver
    from audiapro.warehouse import upgrade

    tcp = [_tenant_port(value) for value in push_tcp or []]
    for network in push_tcp_allow or []:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            fail(f"--push-tcp-allow: {exc}")
    _warn_without_api_url()
    orchestrator = PrefectOrchestrator()
    app = create_app(
        orchestrator,
        read_sync_states,
        read_completeness=read_recent_reconciliations,
        read_login_blocks=read_login_pauses,
    )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    with _sigterm_stops(server), _temporary_prefect_api():
        engine = _engine(warehouse_url())  # may read the Warehouse block: after the temporary API is up
        upgrade(engine)
        receiver = PushReceiver(engine, orchestrator.push_tenant, start_analysis=orchestrator.start_analysis)
        # The push receiver and the upload page need the warehouse, known only now: the app served
        # is rebuilt with them (uvicorn reads its config's app when it starts).
        server.config.app = create_app(
            orchestrator,
            read_sync_states,
            read_completeness=read_recent_reconciliations,
            read_login_blocks=read_login_pauses,
            push=receiver,
            uploads=engine,
        )
        receiver.start()
        listeners = _tcp_listeners(receiver, host, tcp, push_tcp_allow)
        console.print(f"admin API on http://{host}:{port}/api/health (docs /api/docs, upload page /upload)")
        try:
            server.run()
        finally:
            for listener in listeners:
                listener.stop()
            receiver.stop()


def _tenant_port(value: str) -> tuple[str, int]:
    """``TENANT:PORT`` of ``--push-tcp`` (a one-line error for anything else)."""
    name, _, port = value.rpartition(":")
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--push-tcp {value!r}: expected TENANT:PORT, e.g. acme:9500")
    return tenant_name(name), int(port)


def _tcp_listeners(
    receiver: PushReceiver, host: str, tcp: list[tuple[str, int]], allow: list[str] | None
) -> list[TcpPushListener]:
    """Start the TCP push listeners asked for (none by default)."""
    from audiapro.push.tcp import LOOPBACK, TcpPushListener

    started = []
    for tenant, tcp_port in tcp:
        try:
            listener = TcpPushListener(receiver, tenant, host=host, port=tcp_port, allowed=allow or LOOPBACK)
            listener.start()
        except (OSError, ValueError) as exc:
            fail(f"--push-tcp {tenant}:{tcp_port}: {exc}")
        console.print(f"CDR pushes for {tenant} over TCP on {host}:{tcp_port}")
        started.append(listener)
    return started


@contextlib.contextmanager
def _temporary_prefect_api() -> Iterator[None]:
    """Without ``PREFECT_API_URL``: start Prefect's temporary API now and stop it on the way out.

    Left to itself, Prefect starts that server on the first request and stops it from an ``atexit``
    hook, which never runs when the process ends on a signal: the server outlived ``audiapro api``.
    """
    if os.environ.get(PREFECT_API_URL_ENV):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    # The instance Prefect's clients use in this mode (one per process), so they find it running.
    server = SubprocessASGIServer()
    try:
        server.start(timeout=TEMPORARY_API_START_TIMEOUT_S)
        message = f"temporary Prefect API on {server.api_url} (stops with this process)"
        err_console.print(message, soft_wrap=True)
        yield
    finally:
        server.stop()


@contextlib.contextmanager
def _sigterm_stops(server: uvicorn.Server) -> Iterator[None]:
    """SIGTERM at any time shuts ``server`` down gracefully and lets the caller's cleanup run.

    While it serves, uvicorn handles SIGTERM itself; once shut down it raises the signal again
    against the handler it found, and Python's default one would end the process on the spot,
    skipping every ``finally``. This handler asks for the same graceful shutdown instead: before
    uvicorn runs (e.g. while the temporary Prefect API starts), uvicorn then stops right after its
    startup; after it ran, the re-raised signal changes nothing.
    """

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@token_app.command("set")
def token_set(
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the token from stdin")] = False,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate a random token and print it once")
    ] = False,
) -> None:
    """Store the admin API's bearer token in the Prefect Secret block `audiapro-admin-token`.

    The token is read from stdin (never from the command line) or generated; the API reads the
    block on every request, so a new token takes effect at once.
    """
    from audiapro.api.auth import MIN_TOKEN_CHARS
    from audiapro.prefect_names import ADMIN_TOKEN_BLOCK

    if stdin == generate:
        raise typer.BadParameter("give exactly one of --stdin or --generate")
    token = secrets.token_urlsafe(TOKEN_BYTES) if generate else sys.stdin.readline().strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise typer.BadParameter(f"the token must have at least {MIN_TOKEN_CHARS} characters")
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    Secret(value=SecretStr(token)).save(ADMIN_TOKEN_BLOCK, overwrite=True)
    console.print(f"admin token stored in Secret block [bold]{ADMIN_TOKEN_BLOCK}[/]")
    if generate:
        # Shown once, on the terminal of the operator who asked for it; never logged.
        print(token)
