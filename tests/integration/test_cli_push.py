"""`audiapro tenant push NAME`: the settings to type into the UCM, the password only when generated
or rotated; the Prefect orchestrator reads the login back from the block for the receiver."""

from __future__ import annotations

import base64
import uuid

import pytest
from typer.testing import CliRunner

from audiapro.api.orchestrator import DeploymentMissing, PrefectOrchestrator
from audiapro.cli import app
from blocks.clouducm import CloudUCM, load_tenant

pytestmark = pytest.mark.usefixtures("prefect_api")

runner = CliRunner()
TENANT = "push-acme"


def _lines(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_tenant_push_prints_the_ucm_settings_and_the_password_only_when_new() -> None:
    CloudUCM(timezone="America/Chicago").save(TENANT, overwrite=True)
    try:
        first = runner.invoke(app, ["tenant", "push", TENANT, "--base-url", "https://cdr.example.net/"])
        assert first.exit_code == 0, first.output
        shown = _lines(first.output)
        assert shown["url"] == f"https://cdr.example.net/api/push/ucm/{TENANT}"
        assert (shown["user"], shown["format"], shown["mode"]) == (f"ucm-{TENANT}", "JSON", "load")
        password = shown["password"]
        assert len(password) >= 40
        block = load_tenant(TENANT)
        assert block.push_password.get_secret_value() == password and block.push_mode == "load"

        again = runner.invoke(app, ["tenant", "push", TENANT, "--mode", "capture"])
        assert again.exit_code == 0 and "password" not in _lines(again.output)
        rotated = _lines(runner.invoke(app, ["tenant", "push", TENANT, "--rotate"]).output)["password"]
        assert rotated != password

        # What the receiver reads: the rotated login opens, the old one does not.
        read = PrefectOrchestrator().push_tenant(TENANT)
        assert read is not None and read.mode == "load" and read.settings.timezone == "America/Chicago"
        assert read.accepts(_basic(f"ucm-{TENANT}", rotated))
        assert not read.accepts(_basic(f"ucm-{TENANT}", password))
        assert password not in repr(read) and rotated not in repr(read)
        assert PrefectOrchestrator().push_tenant("no-such-tenant") is None
    finally:
        CloudUCM.delete(TENANT)


def test_tenant_push_refuses_an_unknown_tenant_in_one_line() -> None:
    result = runner.invoke(app, ["tenant", "push", "nobody-here"])
    assert result.exit_code != 0
    assert "no tenant 'nobody-here'" in result.output and "Traceback" not in result.output


def test_starting_an_import_without_the_deployment_says_so() -> None:
    orchestrator = PrefectOrchestrator()
    with pytest.raises(DeploymentMissing):
        orchestrator.start_import(TENANT, "/nowhere.csv")
    assert orchestrator.run_state("not-a-run-id") is None
    assert orchestrator.run_state(str(uuid.uuid4())) is None
