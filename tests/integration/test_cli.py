"""The `audiapro` command: tenants are blocks, secrets are read from stdin and never printed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from audiapro.cli import app
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
