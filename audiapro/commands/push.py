"""Push commands: ``audiapro tenant push NAME`` (the UCM's settings) and ``audiapro push reparse``.

``tenant push`` turns a tenant's push receiver on and prints what to type into the UCM's "CDR
Real-time Output" page as ``key: value`` lines. The password is printed only when it is generated
(first time) or rotated (``--rotate``); it is stored as a secret in the tenant's block and never
logged.
"""

from __future__ import annotations

import enum
import os
from typing import Annotated, Any, Final

import typer
from rich.console import Console

from audiapro.commands.common import fail, tenant_name, warehouse_url
from audiapro.push.config import PUSH_PATH, RECOMMENDED_FORMAT, USER_PREFIX, PushTenant, new_password

console = Console(highlight=False)
push_app = typer.Typer(help="CDR push (the UCM's CDR Real-time Output).", no_args_is_help=True)
#: The receiver's public address (the operator's HTTPS proxy in front of `audiapro api`).
PUBLIC_URL_ENV: Final = "AUDIAPRO_PUBLIC_URL"
#: Environment variable `push simulate` reads the push password from (never an argument).
PUSH_PASSWORD_ENV: Final = "AUDIAPRO_PUSH_PASSWORD"
#: Without it: the admin API's default address (tests, a UCM on the same network).
DEFAULT_PUBLIC_URL: Final = "http://127.0.0.1:8000"


class Mode(enum.StrEnum):
    """What the receiver does with a tenant's pushed bodies."""

    load = "load"
    capture = "capture"
    off = "off"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    from audiapro.commands.tenants import tenant_app

    tenant_app.command("push")(tenant_push)
    app.add_typer(push_app, name="push")


def tenant_push(
    name: Annotated[str, typer.Argument(help="An existing tenant")],
    rotate: Annotated[bool, typer.Option(help="Generate a new password (the old one stops working)")] = False,
    mode: Annotated[Mode, typer.Option(help="load, capture (store only: first contact) or off")] = Mode.load,
    base_url: Annotated[
        str | None, typer.Option(help=f"Public address of the receiver [default: ${PUBLIC_URL_ENV}]")
    ] = None,
) -> None:
    """Turn on a tenant's push receiver and print the settings to type into the UCM."""
    from pydantic import SecretStr

    from blocks.clouducm import load_tenant

    key = tenant_name(name)
    try:
        block = load_tenant(key)
    except ValueError:
        fail(f"no tenant {key!r}: see `audiapro tenant list`")
    generated = rotate or not block.push_password.get_secret_value()
    password = new_password() if generated else ""
    block.push_mode = mode.value
    block.push_user = block.push_user or f"{USER_PREFIX}{key}"
    if generated:
        block.push_password = SecretStr(password)
    block.save(key, overwrite=True)
    base = (base_url or os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL).rstrip("/")
    for line in settings_lines(base, key, block.push_user, password if generated else None, mode.value):
        console.print(line)


def settings_lines(base: str, tenant: str, user: str, password: str | None, mode: str) -> list[str]:
    """The ``key: value`` lines ``tenant push`` prints (the password only when given)."""
    lines = [f"url: {base}{PUSH_PATH}{tenant}", f"user: {user}"]
    if password is not None:
        lines.append(f"password: {password}")
    lines += [f"format: {RECOMMENDED_FORMAT}", f"mode: {mode}"]
    return lines


@push_app.command("reparse")
def push_reparse(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's bodies")] = None,
) -> None:
    """Parse the quarantined pushed bodies again and load those that parse now."""
    from audiapro.push.reparse import reparse_quarantined
    from audiapro.warehouse import get_engine, upgrade

    engine = get_engine(warehouse_url())
    upgrade(engine)
    settings = {name: PushTenant.from_block(name, data).settings for name, data in _documents()}
    result = reparse_quarantined(engine, settings.get, tenant=tenant_name(tenant) if tenant else None)
    console.print(
        f"quarantined bodies: {result.tried}; parsed now: {result.requeued}; still quarantined: "
        f"{result.tried - result.requeued}; legs loaded: {result.inserted} new, "
        f"{result.duplicates} already stored"
    )


def _documents() -> list[tuple[str, dict[str, Any]]]:
    from audiapro.commands.tenants import tenant_documents

    return tenant_documents()


@push_app.command("simulate")
def push_simulate(
    sim_url: Annotated[str, typer.Option(help="Base URL of a running `audiapro simulate`")],
    url: Annotated[str, typer.Option(help="The receiver's URL (`tenant push` prints it)")],
    user: Annotated[str, typer.Option(help="Push user (`tenant push` prints it)")],
    password_env: Annotated[str, typer.Option(help="Env var holding the push password")] = PUSH_PASSWORD_ENV,
    every: Annotated[float, typer.Option(min=0.5, help="Seconds between two pushes")] = 5.0,
    variant: Annotated[
        str, typer.Option(help="Body shape: json, json-untyped, cdr-root, form, xml, ...")
    ] = "json",
) -> None:
    """Push the simulated PBX's legs to a receiver as they end (the live demo's CDR Real-time Output)."""
    from audiapro.ucm.simulator.push import VARIANTS, run_pusher

    password = os.environ.get(password_env, "")
    if not password:
        fail(f"the push password is read from ${password_env}, which is empty")
    if variant not in VARIANTS:
        fail(f"--variant {variant!r}: one of {', '.join(VARIANTS)}")
    console.print(f"pushing legs of {sim_url} to {url} every {every:g} s (Ctrl-C stops)")
    try:
        run_pusher(sim_url, url, user=user, password=password, every_s=every, variant=variant,
                   echo=console.print)  # fmt: skip
    except KeyboardInterrupt:
        console.print("stopped")
