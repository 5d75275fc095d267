"""The `audiapro` command: tenants are blocks, secrets are read from stdin and never printed."""

from __future__ import annotations

import pytest
from click.testing import Result
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.commands import tenants as tenant_commands
from blocks.clouducm import CloudUCM, load_tenant

pytestmark = pytest.mark.usefixtures("prefect_api")

runner = CliRunner()


def test_tenant_add_reads_the_password_from_stdin_and_list_never_shows_it() -> None:
    result = runner.invoke(
        app,
        ["tenant", "add", "cli-acme", "--host", "071ffb.c.myucm.cloud", "--timezone", "Europe/London",
         "--region", "GB", "--password-stdin"],
        input="Sup3r-Secret\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    block = load_tenant("cli-acme")
    assert block.password.get_secret_value() == "Sup3r-Secret"
    assert (block.port, block.timezone, block.region, block.insecure) == (8443, "Europe/London", "GB", False)

    listing = runner.invoke(app, ["tenant", "list"])
    assert listing.exit_code == 0
    assert "cli-acme" in listing.output and "071ffb.c.myucm.cloud" in listing.output
    assert "Sup3r-Secret" not in listing.output
    CloudUCM.delete("cli-acme")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "pbx.example", "--timezone", "UTC"], "password-stdin"),
        (["--host", "pbx.example", "--timezone", "Mars/Olympus", "--password-stdin"], "Mars/Olympus"),
    ],
)
def test_tenant_add_refuses_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tenant", "add", "cli-bad", *args], input="pw\n")
    assert result.exit_code != 0
    assert message in result.output or message in str(result.exception)


def _add(*args: str, password: str | None = None) -> Result:
    flags = ["--password-stdin"] if password is not None else []
    return runner.invoke(app, ["tenant", *args, *flags], input=f"{password}\n" if password else None)


@pytest.fixture
def password_changes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tenants for which `on_password_changed` was called, in order."""
    calls: list[str] = []
    monkeypatch.setattr(tenant_commands, "on_password_changed", calls.append)
    return calls


def test_tenant_names_operators_use_are_stored_as_block_names(password_changes: list[str]) -> None:
    added = _add("add", "Acme_Corp", "--host", "pbx.example", "--timezone", "America/Chicago",
                 password="first-Secret")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "tenant 'Acme_Corp' saved as 'acme-corp'" in added.output
    assert load_tenant("acme-corp").timezone == "America/Chicago"
    # The same mapping everywhere a tenant name is accepted: `Acme Corp.` is that tenant too.
    changed = _add("set", "Acme Corp.", "--disabled")
    assert changed.exit_code == 0, changed.output
    assert "saved as 'acme-corp'" in changed.output and "updated: enabled" in changed.output
    assert load_tenant("acme-corp").enabled is False
    assert password_changes == ["acme-corp"]
    CloudUCM.delete("acme-corp")


def test_a_pbx_tenant_needs_its_time_zone() -> None:
    result = _add("add", "cli-nozone", "--host", "pbx.example", password="pw")
    assert result.exit_code == 2
    assert "a PBX tenant needs --timezone" in result.stderr and "America/Chicago" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ValueError):
        load_tenant("cli-nozone")


def test_tenant_add_on_an_existing_tenant_changes_only_what_is_given(password_changes: list[str]) -> None:
    first = _add("add", "cli-rotate", "--host", "pbx.example", "--port", "8089", "--timezone",
                 "America/Chicago", "--region", "CA", "--lookback", "10800", "--api-sessions", "2",
                 password="Old-Secret-1")  # fmt: skip
    assert first.exit_code == 0, first.output
    rotated = _add("add", "cli-rotate", password="New-Secret-2")  # how operators rotate a password
    assert rotated.exit_code == 0, rotated.output
    block = load_tenant("cli-rotate")
    assert block.password.get_secret_value() == "New-Secret-2"
    assert (block.host, block.port, block.timezone, block.region, block.lookback_seconds,
            block.api_sessions) == ("pbx.example", 8089, "America/Chicago", "CA", 10800, 2)  # fmt: skip
    assert "updated: password" in rotated.output
    assert "Secret" not in first.output + rotated.output
    assert password_changes == ["cli-rotate", "cli-rotate"]

    moved = _add("set", "cli-rotate", "--timezone", "America/Denver", "--no-insecure")
    assert moved.exit_code == 0, moved.output
    block = load_tenant("cli-rotate")
    assert (block.timezone, block.password.get_secret_value(), block.region) == (
        "America/Denver",
        "New-Secret-2",
        "CA",
    )
    assert "updated: timezone" in moved.output
    assert password_changes == ["cli-rotate", "cli-rotate"]  # no password given: no call

    listing = runner.invoke(app, ["tenant", "list"])
    assert "America/Denver" in listing.output and "New-Secret-2" not in listing.output
    CloudUCM.delete("cli-rotate")


def test_tenant_set_refuses_an_unknown_tenant_and_contradictions() -> None:
    unknown = runner.invoke(app, ["tenant", "set", "cli-nobody", "--timezone", "UTC"])
    assert unknown.exit_code == 2 and "no tenant 'cli-nobody'" in unknown.stderr
    assert _add("add", "cli-tls", "--host", "pbx.example", "--timezone", "UTC", password="pw").exit_code == 0
    both = runner.invoke(app, ["tenant", "set", "cli-tls", "--insecure", "--ca-file", "/etc/ssl/ca.pem"])
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    assert load_tenant("cli-tls").insecure is False  # a refused change stores nothing
    # An import-only tenant that gets a PBX host needs the zone as much as a new one.
    assert runner.invoke(app, ["tenant", "add", "cli-files"]).exit_code == 0
    promoted = _add("set", "cli-files", "--host", "pbx.example", password="pw")
    assert promoted.exit_code == 2 and "needs --timezone" in promoted.stderr
    for name in ("cli-tls", "cli-files"):
        CloudUCM.delete(name)
