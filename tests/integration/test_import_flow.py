"""The import-cdr-file flow and `audiapro import` on a real Prefect API, for an import-only tenant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import tasks.import_file
from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.cli import app
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator, write_ui_export
from audiapro.warehouse import get_engine
from blocks.clouducm import CloudUCM
from flows.import_file import import_cdr_file
from tests.integration.import_support import KEY_HEADERS, file_with_bad_rows
from tests.integration.prefect_support import latest_artifact, number_rows

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANT = "files-only"
FILE_TZ = "America/New_York"
runner = CliRunner()


@pytest.fixture
def import_only_tenant() -> Iterator[str]:
    """A tenant without PBX access (no host, no password) whose zone is not the file's."""
    CloudUCM(timezone="UTC", region="US").save(TENANT, overwrite=True)
    yield TENANT
    CloudUCM.delete(TENANT)


@pytest.fixture(scope="module")
def truth() -> list[dict[str, str]]:
    config = SimulatorConfig(seed=31, calls_per_day=40, start=date(2026, 3, 2), days=1, tz=FILE_TZ)
    return UcmSimulator(config).ground_truth()


def start_times(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT leg_key, start_at FROM cdr_legs")).all())


def test_cli_import_prints_counts_and_where_the_rejects_are(
    warehouse_url: str, import_only_tenant: str, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path, expected_rejects, good = file_with_bad_rows(truth, tmp_path / "export.csv")
    args = ["import", str(path), "--tenant", import_only_tenant, "--timezone", FILE_TZ, "--chunk-rows", "100"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert number_rows(first.output)[0] == [good + 4, good, 0, 4]  # read, new, duplicate, rejected
    for line, reason in expected_rejects:
        assert f"line {line}: {reason}" in first.output
    assert "SELECT r.position AS line, r.reason, r.raw FROM rejected_rows" in first.output

    # --timezone read the file's wall clock in New York, not in the tenant's UTC.
    api = normalize_legs([truth[1]], NormalizeContext(tenant=TENANT, timezone=FILE_TZ)).legs.iloc[0]
    assert start_times(get_engine(warehouse_url))[api["leg_key"]] == api["start_at"]

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output and number_rows(again.output)[0] == [0, 0, 0, 0]

    summary = latest_artifact(f"import-{TENANT}-summary")
    assert summary.type == "table" and "line 5:" in (summary.description or "")


def test_big_files_get_a_progress_artifact(
    warehouse_url: str, import_only_tenant: str, truth: list[dict[str, str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(tasks.import_file, "PROGRESS_MIN_BYTES", 1)  # every file counts as big here
    path = write_ui_export(truth, tmp_path / "export.csv")
    summary = import_cdr_file(path=str(path), tenant=import_only_tenant, chunk_rows=100)
    assert (summary["read"], summary["new"], summary["status"]) == (len(truth), len(truth), "imported")
    progress = latest_artifact(f"import-{TENANT}-progress")
    assert progress.type == "progress" and float(progress.data) == 100.0


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown tenant", "no tenant 'nobody'"),
        ("missing columns", "lacks columns needed to identify a leg: Last app."),
        ("unknown zone", "Mars/Olympus"),
    ],
)
def test_cli_refuses_clearly(
    warehouse_url: str,
    import_only_tenant: str,
    truth: list[dict[str, str]],
    tmp_path: Path,
    case: str,
    message: str,
) -> None:
    columns = KEY_HEADERS[:-1] if case == "missing columns" else None
    path = write_ui_export(truth, tmp_path / "export.csv", columns=columns)
    tenant = "nobody" if case == "unknown tenant" else import_only_tenant
    extra = ["--timezone", "Mars/Olympus"] if case == "unknown zone" else []
    result = runner.invoke(app, ["import", str(path), "--tenant", tenant, *extra])
    assert result.exit_code == (2 if case == "unknown zone" else 1)  # 2: refused before the flow runs
    assert message in " ".join(result.output.split())
