"""`audiapro source add|list|test` and the pickup-files flow on a real Prefect API, real servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.warehouse import cdr_legs, get_engine
from blocks.clouducm import CloudUCM
from blocks.pickup import ImapSource, SftpSource
from flows.pickup import pickup_files
from tests.integration.pickup_support import (
    IMAP_PASSWORD,
    SFTP_PASSWORD,
    SFTP_USER,
    ImapTestServer,
    SftpTestServer,
    export_bytes,
    sftp_server,
)
from tests.integration.pipeline_support import TZ, simulator, table_count
from tests.integration.prefect_support import latest_artifact

pytestmark = pytest.mark.usefixtures("prefect_api")

runner = CliRunner()
TENANT = "pickup-co"
WRONG_PASSWORD = "not-the-" + IMAP_PASSWORD


@pytest.fixture
def tenant() -> Iterator[str]:
    CloudUCM(timezone=TZ).save(TENANT, overwrite=True)
    yield TENANT
    CloudUCM.delete(TENANT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpTestServer]:
    (tmp_path / "root" / "drop").mkdir(parents=True)
    with sftp_server(tmp_path / "root") as running:
        yield running


@pytest.fixture
def imap() -> Iterator[ImapTestServer]:
    running = ImapTestServer()
    yield running
    running.close()


def one_error_line(result: object) -> str:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output  # type: ignore[attr-defined]
    return str(lines[0])


def test_sources_from_the_cli_and_one_failing_source_does_not_stop_the_other(
    warehouse_url: str, spool: Path, tenant: str, server: SftpTestServer, imap: ImapTestServer
) -> None:
    legs = simulator(seed=41, calls_per_day=20, days=1).ground_truth()
    (server.root / "drop" / "day.csv").write_bytes(export_bytes(legs, spool.parent))
    added = runner.invoke(app, ["source", "add", "sftp", "drop", "--tenant", tenant, "--host", "127.0.0.1",
                                "--port", str(server.port), "--user", SFTP_USER, "--password-stdin",
                                "--trust-host-key", "--directory", "/drop", "--settle-seconds", "0"],
                          input=SFTP_PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "host key pinned (SHA256:" in added.output
    assert cast(SftpSource, SftpSource.load("drop")).host_key == server.host_key_line
    added = runner.invoke(app, ["source", "add", "imap", "mail", "--tenant", tenant, "--host", "127.0.0.1",
                                "--port", str(imap.port), "--security", "plain", "--user", "cdr",
                                "--password-stdin", "--sender", "@acme.example"],
                          input=WRONG_PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert cast(ImapSource, ImapSource.load("mail")).senders == ["@acme.example"]

    listed = runner.invoke(app, ["source", "list"])
    assert listed.exit_code == 0 and "drop" in listed.output and "mail" in listed.output
    tested = runner.invoke(app, ["source", "test", "drop"])
    assert tested.exit_code == 0, tested.output
    assert "would import /drop/day.csv" in tested.output
    assert table_count(get_engine(warehouse_url), cdr_legs) == 0  # a test fetches nothing
    refused = runner.invoke(app, ["source", "test", "mail"])
    assert refused.exit_code == 1
    assert "refused the login of 'cdr'" in one_error_line(refused)
    for output in (added.output, listed.output, tested.output, refused.output):
        assert SFTP_PASSWORD not in output and WRONG_PASSWORD not in output

    state = pickup_files(return_state=True)
    rows: dict[str, Any] = {
        row["source"]: row for row in cast(list[Any], state.result(raise_on_failure=False))
    }
    assert state.is_failed() and "mail" in str(state.message)
    assert rows["drop"]["imported"] == 1 and rows["drop"]["new_legs"] == len(legs)
    assert rows["mail"]["status"] == "failed" and WRONG_PASSWORD not in rows["mail"]["error"]
    assert table_count(get_engine(warehouse_url), cdr_legs) == len(legs)
    artifact = latest_artifact("pickup-files-summary")
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert {row["source"]: row["status"] for row in table} == {"drop": "ok", "mail": "failed"}
    SftpSource.delete("drop")
    ImapSource.delete("mail")
