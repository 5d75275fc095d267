"""Tenant commands: ``audiapro tenant add|set|list|test``.

One CloudUCM block per tenant. ``add`` and ``set`` change only the options given, so rotating a
password never resets the zone or the lookback; ``test`` asks the PBX what it really is (login,
clock, zone, one page of CDRs) before the poll finds out the hard way.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiapro import settings
from audiapro.commands.common import ZONE_EXAMPLES, fail, tenant_name, time_zone, warehouse_url

console = Console(width=max(Console().width, 110))
tenant_app = typer.Typer(help="Manage tenants (one CloudUCM block each).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(tenant_app, name="tenant")


class Scheme(enum.StrEnum):
    """Transport to the PBX."""

    https = "https"
    http = "http"


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
FingerprintOption = Annotated[
    str | None,
    typer.Option(help="Pin the PBX certificate by its SHA-256 fingerprint (self-signed UCM; '' clears)"),
]
EnabledOption = Annotated[
    bool | None, typer.Option("--enabled/--disabled", help="Whether poll-cdrs polls it [new: enabled]")
]
RecordingDaysOption = Annotated[
    int | None,
    typer.Option(min=0, help="Days downloaded recordings stay on disk; 0: deleted after analysis [new: 0]"),
]
TranscriptDaysOption = Annotated[
    int | None, typer.Option(min=0, help="Days stored transcripts are kept; 0 keeps them forever [new: 0]")
]
RawDaysOption = Annotated[
    int | None, typer.Option(min=0, help="Days raw CDR JSON is kept; 0 keeps it forever [new: 0]")
]
#: Fields whose change is verified against the PBX before saving (how it is reached and read).
_PBX_FIELDS = frozenset({"host", "port", "api_user", "password", "timezone", "scheme", "ca_file", "insecure",
                         "tls_fingerprint"})  # fmt: skip
CheckOption = Annotated[
    bool, typer.Option("--check/--no-check", help="Verify login, clock and zone with the PBX before saving")
]
#: The one block field `tenant add/set` never prints (only its name, when it changed).
_PASSWORD_FIELD = "password"


def _tenant_command(*, must_exist: bool, name_argument: object, doc: str) -> Callable[..., None]:
    """The `tenant add` or `tenant set` command: one option list, `must_exist` tells them apart."""

    def command(
        name: str,
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
        tls_fingerprint: FingerprintOption = None,
        recording_retention_days: RecordingDaysOption = None,
        transcript_retention_days: TranscriptDaysOption = None,
        raw_cdr_retention_days: RawDaysOption = None,
        check: CheckOption = True,
    ) -> None:
        fields = {"host": host, "port": port, "api_user": user, "timezone": timezone, "region": region,
                  "ca_file": ca_file, "insecure": insecure, "scheme": scheme.value if scheme else None,
                  "lookback_seconds": lookback, "api_sessions": api_sessions, "enabled": enabled,
                  "tls_fingerprint": tls_fingerprint, "recording_retention_days": recording_retention_days,
                  "transcript_retention_days": transcript_retention_days,
                  "raw_cdr_retention_days": raw_cdr_retention_days}  # fmt: skip
        _save_tenant(name, fields, password_stdin=password_stdin, must_exist=must_exist, check=check)

    # Typer reads the help of `name` from its annotation; the two commands word it differently.
    command.__annotations__["name"] = name_argument
    command.__doc__ = doc
    return command


tenant_add = tenant_app.command("add")(
    _tenant_command(
        must_exist=False,
        name_argument=Annotated[str, typer.Argument(help="Tenant name (Acme_Corp is stored as acme-corp)")],
        doc="""Add a tenant, or change the options given of an existing one (the rest stay as they are).

    The password is read from stdin, never from the command line. A PBX tenant (--host) needs
    --timezone: the PBX writes local times, and a wrong zone shifts every call by hours.
    """,
    )
)
tenant_set = tenant_app.command("set")(
    _tenant_command(
        must_exist=True,
        name_argument=Annotated[str, typer.Argument(help="An existing tenant")],
        doc="Change the options given of an existing tenant, e.g. rotate its password with --password-stdin.",
    )
)


def on_password_changed(tenant: str) -> None:
    """Called after `tenant add` or `tenant set` stored a password given on stdin for ``tenant``.

    A new password lifts the tenant's login pause at once: the pause exists because the PBX refused
    the old one, and waiting it out would leave the tenant dark for up to 15 minutes for nothing.
    """
    if _clear_login_pause(tenant):
        console.print(f"tenant {tenant!r}: login pause lifted (new password)", highlight=False)


def _clear_login_pause(tenant: str) -> bool:
    """Lift the tenant's login pause (``audiapro.logins``); whether there was one."""
    from audiapro.warehouse import clear_login_block, get_engine, upgrade

    engine = get_engine(warehouse_url())
    upgrade(engine)  # a fresh warehouse has no login_blocks table yet
    return clear_login_block(engine, tenant)


def _verify_before_saving(name: str, block: Any) -> None:
    """Ask the PBX before saving how it is reached or read: refuse what it contradicts."""
    from datetime import UTC, datetime

    check = _check_pbx(name, block, datetime.now(UTC))
    if check.unreachable:
        console.print(
            f"could not reach the PBX to verify: saved anyway; run `audiapro tenant test {name}` "
            "once it answers",
            highlight=False,
        )
    elif not check.ok:
        fail(
            f"tenant {name!r} not saved: the PBX contradicts these settings "
            "(see above; --no-check saves anyway)"
        )


def _save_tenant(
    typed: str, given: dict[str, Any], *, password_stdin: bool, must_exist: bool, check: bool = True
) -> None:
    """Create or update the tenant's block with the options given; one-line errors for bad input."""
    from pydantic import SecretStr, ValidationError

    from blocks.clouducm import CloudUCM

    name = tenant_name(typed)
    fields = {key: value for key, value in given.items() if value is not None}
    if "timezone" in fields:
        time_zone(fields["timezone"])
    for clearable in ("ca_file", "tls_fingerprint"):
        if fields.get(clearable) == "":
            fields[clearable] = None
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
    if password_stdin:
        on_password_changed(name)  # the pause was about the old password: the check may log in now
    if check and block.host and _PBX_FIELDS & fields.keys():
        _verify_before_saving(name, block)
    block.save(name, overwrite=True)
    if name != typed:
        console.print(f"tenant {typed!r} saved as {name!r}", highlight=False)
    console.print(_saved_message(name, block, existing), highlight=False)


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


#: CloudUCM's defaults for the fields `tenant list` shows, for a block saved before a field existed
#: (Prefect stores every field of a block when it is saved; tests/unit keeps these equal to the block's).
TENANT_LIST_DEFAULTS: dict[str, Any] = {
    "host": "", "port": 8443, "api_user": "cdrapi", "timezone": "UTC",
    "region": settings.DEFAULT_PHONE_REGION, "ca_file": None, "insecure": False, "tls_fingerprint": None,
    "scheme": "https", "api_sessions": settings.DEFAULT_PBX_API_SESSIONS, "enabled": True,
}  # fmt: skip


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants (never prints secrets)."""
    table = Table("tenant", "host", "port", "user", "timezone", "region", "tls", "sessions", "enabled")
    for name, data in tenant_documents():
        t = {**TENANT_LIST_DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
        tls: str = "insecure" if t["insecure"] else ("ca-file" if t["ca_file"] else str(t["scheme"]))
        tls = "pinned" if t["tls_fingerprint"] else tls
        table.add_row(name, str(t["host"]), str(t["port"]), str(t["api_user"]), str(t["timezone"]),
                      str(t["region"]), tls, str(t["api_sessions"]), str(t["enabled"]))  # fmt: skip
    console.print(table)


def tenant_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every tenant's name and block fields without the password, sorted by name.

    Read without Prefect's client when ``audiapro.ops.prefect_store`` can (the local stack's API, or
    Prefect's database when no API is configured): no temporary Prefect server for a listing.
    """
    from audiapro.ops.prefect_store import block_documents
    from audiapro.prefect_names import TENANT_BLOCK_TYPE

    documents = block_documents(TENANT_BLOCK_TYPE)
    if documents is not None:
        return [(d.name, d.data) for d in documents]
    from blocks.clouducm import CloudUCM, list_tenants, load_tenant

    fields = [key for key in CloudUCM.model_fields if key != _PASSWORD_FIELD]
    blocks = {name: load_tenant(name) for name in list_tenants(only_enabled=False)}
    return [(name, {key: getattr(block, key) for key in fields}) for name, block in blocks.items()]


@tenant_app.command("test")
def tenant_test(name: Annotated[str, typer.Argument(help="An existing tenant")]) -> None:
    """Check a tenant against its PBX: login, PBX clock and zone, one page of CDRs.

    Lifts a login pause first (this is the explicit retry after fixing the PBX side); a refused login
    pauses logins again. Exit code 0 when everything agrees, 1 otherwise.
    """
    from datetime import UTC, datetime

    key = tenant_name(name)
    block = _existing_tenant(key)
    if block is None:
        fail(f"no tenant {key!r}: see `audiapro tenant list`")
    if not block.host:
        fail(f"tenant {key!r} is import-only (no PBX host): nothing to test")
    if _clear_login_pause(key):
        console.print(f"tenant {key!r}: login pause lifted for this test", highlight=False)
    check = _check_pbx(key, block, datetime.now(UTC))
    if not check.ok:
        raise typer.Exit(1)


def _check_pbx(name: str, block: Any, now: Any) -> Any:
    """Run ``audiapro.tenant_check`` for a block (saved or about to be) and print its findings."""
    from audiapro.logins import WarehouseLoginGuard
    from audiapro.tenant_check import check_tenant
    from audiapro.ucm.client import UcmClient
    from audiapro.ucm.retry import RetryPolicy
    from audiapro.warehouse import get_engine, upgrade

    engine = get_engine(warehouse_url())
    upgrade(engine)
    # One attempt per request: an operator waits at the prompt, and an unreachable PBX is a finding.
    connection = block.connection().model_copy(update={"retry": RetryPolicy(max_attempts=1)})
    with UcmClient(connection, login_guard=WarehouseLoginGuard(engine, name)) as client:
        check = check_tenant(client, block.timezone, now=now)
    for label, text, ok in check.lines:
        mark = "[green]ok[/]  " if ok else "[red]FAIL[/]"
        console.print(f"{mark} {label:<10} {text}", highlight=False, soft_wrap=True)
    return check


BeforeOption = Annotated[
    str | None,
    typer.Option(
        help="Only data before this date (YYYY-MM-DD, UTC midnight) or instant (ISO 8601; UTC when no "
        "zone); without it everything of the tenant, its poll cursor included"
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")]


@tenant_app.command("purge")
def tenant_purge(
    name: Annotated[str, typer.Argument(help="The tenant whose data goes (its block stays)")],
    before: BeforeOption = None,
    yes: YesOption = False,
) -> None:
    """Remove a tenant's data: legs, calls, analyses, quarantined rows, kept recordings.

    For a data-subject or offboarding request. Without --before the tenant's run history and sync
    state (the poll cursor) go too, so disable the tenant first; with --before the cursor stays and
    nothing removed is polled again. Batches of rows, one transaction each; a rerun removes nothing.
    """
    from audiapro.retention import preview_purge, purge_tenant
    from audiapro.warehouse import get_engine, upgrade

    key = tenant_name(name)
    cutoff = _purge_cutoff(before) if before is not None else None
    engine = get_engine(warehouse_url())
    upgrade(engine)
    preview = preview_purge(engine, key, cutoff)
    scope = f"before {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else "all of it"
    if preview.empty:
        if key not in {doc_name for doc_name, _ in tenant_documents()}:
            fail(f"no tenant {key!r} and no data of it in the warehouse: see `audiapro tenant list`")
        console.print(f"tenant {key!r}: nothing to remove ({scope})", highlight=False)
        return
    _print_purge(f"tenant {key!r}, {scope}: to remove", preview)
    if not yes:
        if not sys.stdin.isatty():
            fail("tenant purge asks for confirmation and there is no terminal: add --yes")
        typer.confirm("Remove this data for good?", abort=True)
    _print_purge(f"tenant {key!r}, {scope}: removed", purge_tenant(engine, key, cutoff))


def _purge_cutoff(text: str) -> Any:
    """``--before`` as a UTC instant, or fail naming the forms accepted."""
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"--before {text!r} is not a date: use YYYY-MM-DD or an ISO 8601 instant")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _print_purge(title: str, report: Any) -> None:
    table = Table("table", "rows", title=title)
    for table_name, rows in report.rows.items():
        table.add_row(table_name, str(rows))
    table.add_row("recordings (files)", f"{report.files.files} ({report.files.bytes} bytes)")
    console.print(table)
