"""The import-cdr-file flow and `audiapro import` on a real Prefect API, for an import-only tenant."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import tasks.import_file
from audiapro import settings
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
#: The first line of a file that is no CDR export (it must never reach an error message).
SECRET_LINE = "root:$6$hunter2-salt$c2VjcmV0:0:0:root:/root:/bin/bash"
runner = CliRunner()

#: Paths opened in this process while a test watches (an audit hook cannot be removed: it stays idle).
_opened: list[str] | None = None


def _record_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str | bytes | Path):
        _opened.append(str(Path(args[0].decode() if isinstance(args[0], bytes) else args[0]).resolve()))


sys.addaudithook(_record_open)


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file opened in this process (the flow runs here) within the block, resolved."""
    global _opened
    seen: list[str] = []
    _opened = seen
    try:
        yield seen
    finally:
        _opened = None


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
    monkeypatch.setenv(settings.IMPORT_ROOTS_ENV, str(tmp_path))  # a run reads only from import roots
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


@pytest.mark.parametrize("escape", ["absolute", "link", "dotdot"])
def test_a_run_refuses_paths_outside_the_import_roots_unread(
    warehouse_url: str, import_only_tenant: str, spool: Path, tmp_path: Path, escape: str
) -> None:
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET_LINE}\ndaemon:x:1:1::/:/bin/false\n")
    path = {
        "absolute": secret,
        "link": spool / "export.csv",
        "dotdot": spool / ".." / ".." / "etc" / "passwd",
    }
    if escape == "link":  # a link inside the spool that leads out of it
        path["link"].symlink_to(secret)
    with files_opened() as opened:
        state = import_cdr_file(path=str(path[escape]), tenant=import_only_tenant, return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert f"refused to read {str(path[escape])!r}" in message and str(spool.resolve()) in message
    assert "AUDIAPRO_IMPORT_ROOTS" in message and "hunter2" not in message
    assert str(secret) not in opened  # refused before the file was opened


def test_a_file_in_a_root_that_is_no_cdr_export_fails_without_quoting_it(
    warehouse_url: str, import_only_tenant: str, spool: Path
) -> None:
    path = spool / "passwd.csv"
    path.write_text(f"{SECRET_LINE}\n")
    state = import_cdr_file(path=str(path), tenant=import_only_tenant, return_state=True)
    assert state.is_failed()
    assert "lacks columns needed to identify a leg" in (state.message or "")
    assert "Found: 1 column, none of them a UCM CDR column" in (state.message or "")
    assert "hunter2" not in (state.message or "")


def test_cli_import_reads_the_named_file_wherever_it_is_but_never_quotes_it(
    warehouse_url: str, import_only_tenant: str, truth: list[dict[str, str]], spool: Path, tmp_path: Path
) -> None:
    (tmp_path / "home").mkdir()
    good = write_ui_export(truth, tmp_path / "home" / "export.csv")  # outside every root: the CLI grants it
    result = runner.invoke(app, ["import", str(good), "--tenant", import_only_tenant, "--timezone", FILE_TZ])
    assert result.exit_code == 0, result.output
    assert number_rows(result.output)[0] == [len(truth), len(truth), 0, 0]
    secret = tmp_path / "home" / "notes.csv"
    secret.write_text(f"{SECRET_LINE}\n")
    refused = runner.invoke(app, ["import", str(secret), "--tenant", import_only_tenant])
    assert refused.exit_code == 1
    output = " ".join(refused.output.split())
    assert "lacks columns needed to identify a leg" in output and "hunter2" not in output
    # The grant ended with the command: a run started from elsewhere may not read the file.
    state = import_cdr_file(path=str(good), tenant=import_only_tenant, return_state=True)
    assert state.is_failed() and "refused to read" in (state.message or "")
