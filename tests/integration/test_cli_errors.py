"""User mistakes end CLI commands with ONE line on stderr and exit code 2, never a traceback.

Bad warehouse URLs are tried against the real throwaway Postgres (missing database, unknown user)
and real loopback ports (refused); the password in the URL must never be printed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.commands.common import EXIT_USAGE
from audiapro.warehouse import current_revision, get_engine, head_revision

PASSWORD = "Pa55-w0rd-never-shown"
runner = CliRunner()


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare(url: str, scheme: str) -> str:
    """``url`` spelled with the scheme Postgres hosts hand out (``postgresql://``, ``postgres://``)."""
    return scheme + "://" + url.split("://", 1)[1]


def one_line_error(result: Result) -> str:
    """The single stderr line of a refused command (asserting there is exactly one, and no traceback)."""
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_bare_postgres_urls_use_the_shipped_driver(
    pg_url: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bare(pg_url, scheme)
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = get_engine(url)  # SQLAlchemy alone maps postgresql:// to psycopg 3 (not installed)
    assert engine.dialect.driver == "psycopg2"
    assert current_revision(engine) == head_revision()
    engine.dispose()


def bad_urls(pg_url: str) -> dict[str, tuple[str, str]]:
    """Broken warehouse URLs (all carrying ``PASSWORD``) and a fragment of what the line must say."""
    server = sa.make_url(pg_url)
    port = free_port()
    return {
        "refused": (f"postgresql://ops:{PASSWORD}@127.0.0.1:{port}/calls", f"port {port}: check the host"),
        "unknown host": (f"postgres://ops:{PASSWORD}@pbx-db.invalid/calls", "unknown host 'pbx-db.invalid'"),
        "missing database": (
            bare(server.set(password=PASSWORD, database="no_such_db").render_as_string(False), "postgresql"),
            "database 'no_such_db' does not exist",
        ),
        "unknown user": (
            bare(server.set(username="nobody", password=PASSWORD).render_as_string(False), "postgresql"),
            "user 'nobody' does not exist",
        ),
        "garbage": (f"not a url {PASSWORD}", "not a database URL"),
        "other database": (f"mysql://ops:{PASSWORD}@127.0.0.1/calls", "not a supported database"),
    }


COMMANDS = {
    "db upgrade": ["db", "upgrade"],
    "poll": ["poll"],
    "backfill": ["backfill", "--tenant", "acme", "--start", "2026-01-01", "--end", "2026-01-02"],
    "import": ["import", "{file}", "--tenant", "acme"],
    "analyze": ["analyze"],
    "status": ["status"],
    "api": ["api", "--port", "1"],
    "demo": ["demo"],
}


@pytest.mark.parametrize("case", ["refused", "unknown host", "missing database", "unknown user", "garbage",
                                  "other database"])  # fmt: skip
def test_a_bad_warehouse_url_is_one_line_saying_what_to_check(
    pg_url: str, case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, expected = bad_urls(pg_url)[case]
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", url)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")  # nothing may reach Prefect first
    export = tmp_path / "export.csv"
    export.write_text("AcctId,start\n")
    for name, args in COMMANDS.items():
        result = runner.invoke(app, [arg.replace("{file}", str(export)) for arg in args])
        line = one_line_error(result)
        assert expected in line, (name, line)
        assert PASSWORD not in result.output, (name, result.output)
        if case not in ("garbage",):
            assert "AUDIAPRO_DATABASE_URL" in line, (name, line)


def test_db_upgrade_url_option_is_checked_too(tmp_path: Path) -> None:
    port = free_port()
    line = one_line_error(
        runner.invoke(app, ["db", "upgrade", "--url", f"postgresql://u@127.0.0.1:{port}/x"])
    )
    assert f"port {port}" in line and "(--url)" in line


@pytest.mark.parametrize(
    "args",
    [
        ["tenant", "add", "acme", "--host", "pbx.example", "--timezone", "Mars/Olympus", "--password-stdin"],
        ["import", "{file}", "--tenant", "acme", "--timezone", "Mars/Olympus"],
        ["simulate", "--tz", "Mars/Olympus"],
    ],
)
def test_an_unknown_time_zone_is_one_line_naming_examples(args: list[str], tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("AcctId,start\n")
    result = runner.invoke(app, [arg.replace("{file}", str(export)) for arg in args], input="pw\n")
    line = one_line_error(result)
    assert "'Mars/Olympus' is not a time zone" in line and "America/Chicago" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tenant", "add", "___", "--timezone", "UTC"], "has no letter or digit"),
        (["tenant", "set", "acme/corp", "--timezone", "UTC"], "characters that are not allowed"),
        (["poll", "--tenant", "x" * 64], "too long"),
        (["analyze", "--tenant", "..."], "has no letter or digit"),
        (["backfill", "--tenant", "a:b", "--start", "2026-01-01", "--end", "2026-01-02"], "not allowed"),
    ],
)
def test_an_unusable_tenant_name_is_one_line_saying_what_is_allowed(args: list[str], expected: str) -> None:
    line = one_line_error(runner.invoke(app, args))
    assert expected in line and "lowercase letters, digits and dashes" in line


def table_names(url: str) -> list[str]:
    """Tables in the warehouse at ``url`` (a refused command must leave a fresh one empty)."""
    engine = get_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


BACKFILL = ["backfill", "--tenant", "acme"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--start", "2026-01-05", "--end", "2026-01-01"], "end 2026-01-01 is before start 2026-01-05"),
        (["--start", "2026-01-05T10:00", "--end", "2026-01-05T09:00"], "is before start 2026-01-05 10:00"),
        (["--start", "2026-01-01", "--end", "2026-01-02", "--max-parallel", "9"], "parallel 9 is not 1..4"),
        (["--start", "2026-01-01", "--end", "2026-01-02", "--window", "10s"], "shorter than 0:01:00"),
        (["--start", "2026-01-01", "--end", "2026-01-02", "--window", "fortnight"],
         "--window 'fortnight' is not a duration"),
        (["--start", "2026-02-30", "--end", "2026-03-02"], "--start '2026-02-30': use YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_backfill_parameter_mistakes_are_one_line_before_anything_starts(
    pg_url: str, args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", pg_url)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")  # nothing may reach Prefect
    line = one_line_error(runner.invoke(app, [*BACKFILL, *args]))
    assert expected in line, line
    assert table_names(pg_url) == []


def backfill_runs() -> int:
    """How many backfill-cdrs flow runs the Prefect API knows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from audiapro.prefect_names import BACKFILL_FLOW

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[BACKFILL_FLOW])))
    return len(runs)


@pytest.fixture
def cli_tenants(prefect_api: None) -> Iterator[None]:
    """``cli-pbx`` (a PBX that is never reached: nothing listens) and ``cli-files`` (import-only)."""
    from pydantic import SecretStr

    from blocks.clouducm import CloudUCM

    CloudUCM(host="127.0.0.1", port=free_port(), scheme="http", password=SecretStr("pw"),
             timezone="America/Chicago").save("cli-pbx", overwrite=True)  # fmt: skip
    CloudUCM(timezone="UTC").save("cli-files", overwrite=True)
    yield
    CloudUCM.delete("cli-pbx")
    CloudUCM.delete("cli-files")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tenant", "nobody-here", "--start", "2026-01-01", "--end", "2026-01-02"], "no tenant 'nobody"),
        (["--tenant", "cli-files", "--start", "2026-01-01", "--end", "2026-01-02"], "import-only"),
        (["--tenant", "cli-pbx", "--start", "2099-01-01", "--end", "2099-01-02"], "has not happened yet"),
        (["--tenant", "cli-pbx", "--start", "2020-01-01", "--end", "2025-12-31", "--window", "1h"],
         "over 20000 windows"),
        (["--tenant", "cli-pbx", "--start", "2024-01-01", "--end", "2025-12-31"], "add --yes"),
        (["--tenant", "cli-pbx", "--start", "2026-01-05T10:00-05:00", "--end", "2026-01-05T09:00"],
         "must be after start"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("cli_tenants")
def test_backfill_mistakes_found_with_the_tenant_are_one_line_and_start_nothing(
    pg_url: str, args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", pg_url)
    runs = backfill_runs()
    line = one_line_error(runner.invoke(app, ["backfill", *args]))  # stdin is no terminal: nobody to ask
    assert expected in line, line
    assert table_names(pg_url) == [] and backfill_runs() == runs


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "0"], "--limit 0: give a number of calls, 1 or more"),
        (["--since", "last tuesday"], "--since 'last tuesday' is neither an ISO date/time nor a span"),
        ([], "the warehouse has no calls yet: run `audiapro db upgrade`"),
    ],
)
def test_calls_mistakes_are_one_line_and_write_nothing(
    pg_url: str, args: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", pg_url)
    line = one_line_error(runner.invoke(app, ["calls", "--tenant", "acme", *args]))
    assert expected in line, line
    assert table_names(pg_url) == []
