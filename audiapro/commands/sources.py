"""Pickup source commands: ``audiapro source add sftp|imap``, ``source list``, ``source test``.

One block per source (``blocks/pickup.py``), naming its tenant. Secrets come from stdin or a file,
never from the command line, and are never printed. ``test`` connects, lists and says what the next
``pickup-files`` run would import, without fetching or recording anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from audiapro.commands.common import fail, tenant_name, warehouse_url

console = Console(width=max(Console().width, 110))
source_app = typer.Typer(
    help="Pickup sources: SFTP drops and mailboxes CDR files arrive in.", no_args_is_help=True
)
add_app = typer.Typer(help="Add (or replace) a pickup source.", no_args_is_help=True)
source_app.add_typer(add_app, name="add")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(source_app, name="source")


NameArgument = Annotated[str, typer.Argument(help="Source name (letters, digits, dashes)")]
TenantOption = Annotated[str, typer.Option(help="Tenant the files are for (an existing tenant)")]
HostOption = Annotated[str, typer.Option(help="Server host name or address")]
UserOption = Annotated[str, typer.Option(help="Login name")]
PasswordOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (first line)")
]
EnabledOption = Annotated[bool, typer.Option("--enabled/--disabled", help="Picked up by pickup-files")]
MaxFileOption = Annotated[int, typer.Option(min=1, help="Largest file or attachment fetched (MB)")]
#: Fields of a source `source list` and the saved message never show.
_SECRET_FIELDS = frozenset({"password", "private_key"})


@add_app.command("sftp")
def add_sftp(
    name: NameArgument,
    tenant: TenantOption,
    host: HostOption,
    user: UserOption,
    port: Annotated[int, typer.Option(min=1, max=65535, help="SSH port")] = 22,
    password_stdin: PasswordOption = False,
    private_key_file: Annotated[
        Path | None, typer.Option(help="Private key file (unencrypted OpenSSH/PEM) instead of a password")
    ] = None,
    host_key: Annotated[
        str | None,
        typer.Option(help="The server's public host key, one OpenSSH line ('ssh-ed25519 AAAA...')"),
    ] = None,
    trust_host_key: Annotated[
        bool, typer.Option("--trust-host-key", help="Fetch the server's host key now and pin it (prints it)")
    ] = False,
    directory: Annotated[str, typer.Option(help="Directory holding the files")] = ".",
    pattern: Annotated[str, typer.Option(help="Glob of the file names")] = "*.csv",
    post_action: Annotated[
        str, typer.Option(help="After the import: leave, move (to done/) or delete")
    ] = "leave",
    settle_seconds: Annotated[int, typer.Option(min=0, help="Complete once unchanged this long")] = 60,
    done_marker: Annotated[
        str, typer.Option(help="Completion marker suffix, e.g. .done (replaces settle)")
    ] = "",
    max_file_mb: MaxFileOption = 1024,
    enabled: EnabledOption = True,
) -> None:
    """Add an SFTP drop: files matching PATTERN in DIRECTORY are imported once they are complete.

    The server's host key is pinned: give it with --host-key, or --trust-host-key to fetch and pin
    the key the server shows now (compare the printed fingerprint with the server's owner).
    """
    from pydantic import SecretStr

    from audiapro.pickup.errors import PickupError
    from audiapro.pickup.sftp import POST_ACTIONS, fetch_host_key, host_key_fingerprint

    key = _source_name(name)
    _check_tenant(tenant)
    if post_action not in POST_ACTIONS:
        fail(f"--post-action {post_action!r}: use one of {', '.join(POST_ACTIONS)}")
    existing = _existing(key, "sftp")
    secrets = {field: getattr(existing, field) for field in _SECRET_FIELDS} if existing else {}
    if password_stdin:
        secrets["password"] = SecretStr(_read_secret())
    if private_key_file is not None:
        secrets["private_key"] = SecretStr(_read_key_file(private_key_file))
    if not any(s.get_secret_value() for s in secrets.values()):
        fail("an SFTP source needs --password-stdin or --private-key-file")
    try:
        if trust_host_key:
            host_key = fetch_host_key(host, port)
        elif host_key is None and existing is not None and (existing.host, existing.port) == (host, port):
            host_key = existing.host_key
        if not host_key:
            fail("pin the server's host key: --host-key 'ssh-ed25519 AAAA...' or --trust-host-key")
        fingerprint = host_key_fingerprint(host_key)
    except PickupError as exc:
        fail(str(exc))
    _save("sftp", key, dict(tenant=tenant_name(tenant), host=host, port=port, user=user, host_key=host_key,
                             directory=directory, pattern=pattern, post_action=post_action,
                             settle_seconds=settle_seconds, done_marker=done_marker, max_file_mb=max_file_mb,
                             enabled=enabled, **secrets))  # fmt: skip
    where = f"sftp://{user}@{host}:{port}/{directory.lstrip('/')} {pattern}"
    console.print(
        f"source {key!r} saved: {where} for tenant {tenant_name(tenant)!r}; host key pinned ({fingerprint})",
        highlight=False,
        soft_wrap=True,
    )


@add_app.command("imap")
def add_imap(
    name: NameArgument,
    tenant: TenantOption,
    host: HostOption,
    user: UserOption,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="IMAP port [993 tls, 143 starttls]")
    ] = None,
    security: Annotated[
        str, typer.Option(help="tls, starttls, or plain (a server on this machine only)")
    ] = "tls",
    password_stdin: PasswordOption = False,
    folder: Annotated[str, typer.Option(help="Folder the reports arrive in")] = "INBOX",
    sender: Annotated[
        list[str] | None,
        typer.Option(help="Allowed sender (address or @domain); repeat it; none: any sender"),
    ] = None,
    attachment_pattern: Annotated[
        list[str] | None, typer.Option(help="Attachment name glob; repeat it [*.csv *.json *.zip *.csv.gz]")
    ] = None,
    after: Annotated[str, typer.Option(help="After the import: leave, flag (\\Seen) or move")] = "leave",
    move_to: Annotated[str, typer.Option(help="Folder for --after move")] = "Processed",
    rescan_days: Annotated[
        int, typer.Option(min=0, help="First run: look this many days back (0: all)")
    ] = 30,
    max_file_mb: MaxFileOption = 1024,
    enabled: EnabledOption = True,
) -> None:
    """Add a mailbox: attachments of mail from the allowed senders are imported exactly once."""
    from pydantic import SecretStr

    from audiapro.pickup.imap import DEFAULT_ATTACHMENT_PATTERNS, DEFAULT_PORTS

    key = _source_name(name)
    _check_tenant(tenant)
    if security not in DEFAULT_PORTS:
        fail(f"--security {security!r}: use one of {', '.join(DEFAULT_PORTS)}")
    if after not in ("leave", "flag", "move"):
        fail(f"--after {after!r}: use leave, flag or move")
    existing = _existing(key, "imap")
    password = SecretStr(_read_secret()) if password_stdin else (existing.password if existing else None)
    if password is None or not password.get_secret_value():
        fail("an IMAP source needs its password: add --password-stdin and pipe it in")
    _save("imap", key, dict(tenant=tenant_name(tenant), host=host, port=port or DEFAULT_PORTS[security],
                            security=security, user=user, password=password, folder=folder,
                            senders=list(sender or []),
                            attachment_patterns=list(attachment_pattern or DEFAULT_ATTACHMENT_PATTERNS),
                            after=after, move_to=move_to, rescan_days=rescan_days, max_file_mb=max_file_mb,
                            enabled=enabled))  # fmt: skip
    anyone = "" if sender else " (any sender: consider --sender)"
    where = f"imap {security} {user}@{host}:{port or DEFAULT_PORTS[security]} folder {folder!r}"
    console.print(
        f"source {key!r} saved: {where} for tenant {tenant_name(tenant)!r}{anyone}", highlight=False
    )


@source_app.command("list")
def source_list() -> None:
    """List pickup sources and what their ledgers hold (never prints secrets)."""
    from audiapro.warehouse import get_engine, pickup_totals, upgrade
    from blocks.pickup import list_sources, load_source

    engine = get_engine(warehouse_url())
    upgrade(engine)
    totals = pickup_totals(engine)
    table = Table("source", "kind", "tenant", "server", "where", "enabled", "ledger")
    for kind, name in list_sources(only_enabled=False):
        _, block = load_source(name)
        where = f"{block.directory} {block.pattern}" if kind == "sftp" else block.folder  # type: ignore[union-attr]
        ledger = ", ".join(f"{status} {count}" for status, count in sorted(totals.get(name, {}).items()))
        table.add_row(name, kind, block.tenant, f"{block.user}@{block.host}:{block.port}", where,
                      str(block.enabled), ledger or "-")  # fmt: skip
    console.print(table)


@source_app.command("test")
def source_test(name: Annotated[str, typer.Argument(help="An existing source")]) -> None:
    """Connect, list, and say what the next pickup would import (nothing is fetched or recorded)."""
    from audiapro.pickup.errors import PickupError
    from tasks.pickup import run_source

    key = _source_name(name)
    warehouse_url()
    try:
        report = run_source(key, dry_run=True)
    except (PickupError, ValueError) as exc:
        fail(str(exc), code=1)
    counts = f"{report.seen} new ({report.waiting} still being written, {report.skipped} not for us)"
    console.print(
        f"[green]ok[/]   {report.kind} source {key!r}: connected and listed; {counts}", highlight=False
    )
    for item in report.would_import:
        console.print(f"would import {item}", highlight=False, soft_wrap=True)
    for row in report.files:
        if row["status"] != "imported":
            line = f"{row['status']}: {row['file']} {row.get('detail', '')}".rstrip()
            console.print(line, highlight=False, soft_wrap=True)
    if not report.would_import:
        console.print("nothing to import now", highlight=False)


def _source_name(name: str) -> str:
    """A source name follows the tenant name rules (it names a Prefect block too)."""
    return tenant_name(name)


def _check_tenant(tenant: str) -> None:
    from blocks.clouducm import load_tenant

    key = tenant_name(tenant)
    try:
        load_tenant(key)
    except ValueError:
        fail(f"no tenant {key!r}: add it first with `audiapro tenant add {key} --timezone ZONE`")


def _existing(name: str, kind: str) -> Any:
    """The source's block when it exists with this kind; fail when it exists with the other kind."""
    from blocks.pickup import load_source

    try:
        found_kind, block = load_source(name)
    except ValueError:
        return None
    if found_kind != kind:
        fail(f"source {name!r} already exists as an {found_kind} source: pick another name")
    return block


def _save(kind: str, name: str, fields: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from blocks.pickup import SOURCE_BLOCKS

    try:
        block = SOURCE_BLOCKS[kind](**fields)  # type: ignore[index]
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
    block.save(name, overwrite=True)


def _read_secret() -> str:
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        fail("--password-stdin read an empty line: pipe the password in, e.g. < password.txt")
    return secret


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--private-key-file {str(path)!r}: cannot read it ({type(exc).__name__})")
