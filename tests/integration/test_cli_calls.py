"""`audiapro calls` and the README's SQL, on a real Postgres warehouse loaded from the simulator.

The README's queries are read from the README itself and run as written, with ``now()`` pinned to a
fixed instant (the data are two simulated days in March 2026); their answers are checked against the
``calls`` table read in Python.
"""

from __future__ import annotations

import ast
import csv
import io
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.ingest import ingest_window
from audiapro.warehouse import calls
from tests.integration.pipeline_support import DAY, TENANT, TZ, make_client, simulator

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
README_SECTION = "## Looking at the data"
#: "Now" for the README's queries: the end of the second simulated day, in the tenant's zone.
NOW = datetime.combine(DAY + timedelta(days=1), time(23, 59, 59), ZoneInfo(TZ))


@pytest.fixture
def loaded(warehouse_url: str, pg_engine: sa.Engine) -> Iterator[sa.Engine]:
    """Two simulated days of tenant ``acme`` loaded through the production ingest path."""
    sim = simulator(days=2)
    start = datetime.combine(DAY, time(), ZoneInfo(TZ)).astimezone(UTC)
    with sim.serve() as url:
        client = make_client(sim, url)
        ingest_window(client, pg_engine, TENANT, start, start + timedelta(days=2), kind="backfill",
                      advance_cursor=False)  # fmt: skip
    yield pg_engine


def stored(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(calls).where(calls.c.tenant == "acme"))]


def readme_queries() -> list[str]:
    """The ```sql blocks of the README's section on looking at the data."""
    text = (REPO / "README.md").read_text()
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.DOTALL)


def run_readme_query(engine: sa.Engine, sql: str) -> list[sa.Row[object]]:
    pinned = sql.replace("now()", f"TIMESTAMPTZ '{NOW.isoformat()}'")
    assert pinned != sql
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(pinned))


def test_the_readme_queries_answer_from_the_real_schema(loaded: sa.Engine) -> None:
    today, missed, top = readme_queries()
    rows = stored(loaded)
    local_day = NOW.date()

    expected_today = [r["id"] for r in sorted(rows, key=lambda r: (r["started_at"], r["id"]), reverse=True)
                      if r["started_at"].astimezone(ZoneInfo(TZ)).date() == local_day]  # fmt: skip
    assert expected_today and [row.id for row in run_readme_query(loaded, today)] == expected_today

    week = NOW - timedelta(days=7)
    expected_missed = {
        r["id"] for r in rows if r["direction"] == "inbound" and not r["answered"] and r["started_at"] >= week
    }
    got_missed = run_readme_query(loaded, missed)
    assert expected_missed and {row.id for row in got_missed} == expected_missed
    assert all(row.caller for row in got_missed)

    answered = Counter(r["answered_by"] for r in rows if r["answered"] and r["answered_by"])
    expected_top = sorted(answered.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(row.extension, row.calls) for row in run_readme_query(loaded, top)] == expected_top


def test_calls_lists_the_newest_calls_and_writes_csv(loaded: sa.Engine) -> None:
    rows = sorted(stored(loaded), key=lambda r: (r["started_at"], r["id"]), reverse=True)
    shown = runner.invoke(app, ["calls", "--tenant", "ACME", "--limit", "3"])
    assert shown.exit_code == 0, shown.output
    for row in rows[:3]:
        assert f"│ {row['id']} " in shown.stdout
    assert f"│ {rows[3]['id']} " not in shown.stdout

    since = datetime.combine(DAY + timedelta(days=1), time(), UTC)
    exported = runner.invoke(app, ["calls", "--tenant", "acme", "--since", since.isoformat(), "--csv",
                                   "--limit", "100000"])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    records = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [int(r["id"]) for r in records] == [r["id"] for r in rows if r["started_at"] >= since]
    first = next(r for r in rows if r["started_at"] >= since)
    assert records[0]["src_raw"] == (first["src_raw"] or "") and records[0]["started_at"].endswith("+00:00")


def test_calls_of_a_tenant_without_calls_says_so_on_stderr(loaded: sa.Engine) -> None:
    result = runner.invoke(app, ["calls", "--tenant", "other"])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip() == "no calls of tenant 'other' in the warehouse"


def test_calls_needs_no_prefect(loaded: sa.Engine) -> None:
    env = {**os.environ, "AUDIAPRO_DATABASE_URL": loaded.url.render_as_string(hide_password=False)}
    # sys.modules at exit, not ``-X importtime``: the warehouse package loads its modules lazily with
    # importlib.import_module, which importtime does not report.
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(sys.modules), file=sys.stderr))\n"
        "import runpy\n"
        "sys.argv = ['audiapro', 'calls', '--tenant', 'acme', '--limit', '2']\n"
        "runpy.run_module('audiapro.cli', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded_line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED"))
    imported = set(ast.literal_eval(loaded_line.removeprefix("LOADED ")))
    assert "audiapro.warehouse.queries" in imported and not {m for m in imported if m.startswith("prefect")}
