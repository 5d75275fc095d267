"""`audiapro analyze` names never-analysed calls older than its window, and how to include them.

A day of simulated calls from January 2025 is loaded into a real Postgres warehouse; the commands
run the real analyze-calls flow (offline analyzer: no OpenAI block) on a real Prefect API. Windows
are given as explicit dates, so nothing depends on today's date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.ingest import ingest_window
from audiapro.warehouse import calls, get_engine, upgrade
from audiapro.warehouse.backlog import unanalysed_before
from tests.integration.pipeline_support import TENANT, make_client, simulator

pytestmark = pytest.mark.usefixtures("prefect_api")

DAY = date(2025, 1, 6)
CUT = datetime.combine(DAY, time(17), tzinfo=UTC)  # noon in New York: calls on both sides
runner = CliRunner()


@pytest.fixture
def loaded(warehouse_url: str) -> sa.Engine:
    """The warehouse with one day of the tenant's calls (none analysed yet)."""
    engine = get_engine(warehouse_url)
    upgrade(engine)
    sim = simulator(start=DAY, days=1, calls_per_day=60)
    start = datetime.combine(DAY, time(0), tzinfo=UTC) - timedelta(hours=12)
    with sim.serve() as base_url, make_client(sim, base_url) as client:
        ingest_window(client, engine, TENANT, start, start + timedelta(days=2), kind="backfill",
                      advance_cursor=False)  # fmt: skip
    return engine


def calls_before(engine: sa.Engine, instant: datetime) -> int:
    query = sa.select(sa.func.count()).where(calls.c.tenant == TENANT.name, calls.c.started_at < instant)
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def test_analyze_says_how_many_older_calls_it_left_out_and_how_to_include_them(loaded: sa.Engine) -> None:
    older = calls_before(loaded, CUT)
    assert 0 < older < calls_before(loaded, CUT + timedelta(days=2))
    # The tenant as an operator types it: the CLI maps it to the stored name (`acme`).
    first = runner.invoke(app, ["analyze", "--tenant", "ACME", "--since", CUT.isoformat()])
    assert first.exit_code == 0, first.output
    hint = [line for line in first.output.splitlines() if "never analysed" in line]
    assert hint == [
        f"{older} older calls (started before 2025-01-06 17:00 UTC, the start of this run's window) never "
        "analysed: include them with --since, e.g. `audiapro analyze --tenant acme --since 2025-01-06`"
    ]
    assert unanalysed_before(loaded, TENANT.name, CUT).calls == older

    second = runner.invoke(app, ["analyze", "--tenant", "acme", "--since", "2025-01-06"])
    assert second.exit_code == 0, second.output
    assert "never analysed" not in second.output
    assert unanalysed_before(loaded, TENANT.name, CUT).calls == 0


def test_the_default_window_names_a_freshly_imported_history(loaded: sa.Engine) -> None:
    result = runner.invoke(app, ["analyze", "--tenant", "acme"])  # the last 24 hours: none of 2025
    assert result.exit_code == 0, result.output
    everything = calls_before(loaded, CUT + timedelta(days=2))
    assert f"{everything} older calls (started before" in result.output
    assert "`audiapro analyze --tenant acme --since 2025-01-06`" in result.output
