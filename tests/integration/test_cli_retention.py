"""`audiapro tenant purge` and the retention options of `tenant set`, through the CLI on Postgres.

User mistakes (unknown tenant, bad date, no terminal to confirm on) end in one line without a
traceback; a confirmed purge prints what it removed per table; a rerun says there is nothing left.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.retention import recording_keeper
from audiapro.warehouse import calls, get_engine
from tests.integration.test_cli_errors import one_line_error
from tests.integration.test_retention import WAV, seed

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()
TENANT = "cli-purge"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIAPRO_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def engine(warehouse_url: str) -> sa.Engine:
    from blocks.clouducm import CloudUCM

    engine = get_engine(warehouse_url)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    seed(engine, TENANT)
    CloudUCM().save(TENANT, overwrite=True)  # import-only tenant
    return engine


def test_unknown_tenant_and_bad_date_are_one_line_errors(warehouse_url: str, home: Path) -> None:
    assert "no tenant 'nobody-here'" in one_line_error(runner.invoke(app, ["tenant", "purge", "nobody-here"]))
    bad = runner.invoke(app, ["tenant", "purge", TENANT, "--before", "2026-13-01", "--yes"])
    assert "--before '2026-13-01' is not a date" in one_line_error(bad)


def test_purge_asks_refuses_without_a_terminal_then_removes_and_a_rerun_removes_nothing(
    engine: sa.Engine, home: Path
) -> None:
    keep = recording_keeper(TENANT, days=5)
    assert keep is not None
    keep("old-call", WAV)
    assert (home / "recordings" / TENANT / "old-call.wav").is_file()  # under AUDIAPRO_HOME

    refused = runner.invoke(app, ["tenant", "purge", TENANT, "--before", "2026-02-20"])
    assert "no terminal: add --yes" in one_line_error(refused)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(calls).where(calls.c.tenant == TENANT)) == 2

    done = runner.invoke(app, ["tenant", "purge", TENANT, "--before", "2026-02-20", "--yes"])
    assert done.exit_code == 0, done.output
    assert "removed" in done.stdout and "cdr_legs" in done.stdout and "recordings (files)" in done.stdout
    with engine.connect() as conn:
        left = conn.scalars(sa.select(calls.c.session).where(calls.c.tenant == TENANT)).all()
    assert left == ["new-call"]
    assert not (home / "recordings" / TENANT / "old-call.wav").exists()

    again = runner.invoke(app, ["tenant", "purge", TENANT, "--before", "2026-02-20", "--yes"])
    assert again.exit_code == 0, again.output
    assert "nothing to remove" in again.stdout

    everything = runner.invoke(app, ["tenant", "purge", TENANT, "--yes"])
    assert everything.exit_code == 0 and "sync_state" in everything.stdout
    assert "nothing to remove" in runner.invoke(app, ["tenant", "purge", TENANT, "--yes"]).stdout


def test_tenant_set_stores_the_retention_periods(engine: sa.Engine, home: Path) -> None:
    from blocks.clouducm import load_tenant

    args = [
        "--recording-retention-days",
        "3",
        "--transcript-retention-days",
        "90",
        "--raw-cdr-retention-days",
        "30",
    ]
    result = runner.invoke(app, ["tenant", "set", TENANT, *args])
    assert result.exit_code == 0, result.output
    settings = load_tenant(TENANT).tenant_settings(TENANT)
    assert (settings.recording_retention_days, settings.transcript_retention_days) == (3, 90)
    assert settings.raw_cdr_retention_days == 30
    negative = runner.invoke(app, ["tenant", "set", TENANT, "--transcript-retention-days", "-1"])
    assert negative.exit_code != 0 and "Traceback" not in negative.output
