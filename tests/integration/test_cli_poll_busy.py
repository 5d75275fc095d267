"""`audiapro poll` ("sync now" from the CLI) while another run works the tenant: it says so.

The CLI runs the poll flow in-process; a tenant whose lock is held (a scheduled tick, a backfill) is
reported ``busy``, and the command explains in words that nothing was lost and who covers the window.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.warehouse import tenant_lock
from blocks.clouducm import CloudUCM
from tests.integration.pipeline_support import SIM_PASSWORD, TZ, save_simulated_tenant, simulator

pytestmark = pytest.mark.usefixtures("prefect_api")

TENANT = "busy-acme"


def test_poll_while_another_run_holds_the_tenant_says_so(warehouse_url: str, pg_engine: sa.Engine) -> None:
    sim = simulator()
    with sim.serve() as url:
        save_simulated_tenant(TENANT, url, password=SIM_PASSWORD, timezone=TZ)
        try:
            with tenant_lock(pg_engine, TENANT, wait=False) as acquired:  # what a running tick holds
                assert acquired
                result = CliRunner().invoke(app, ["poll", "--tenant", TENANT])
        finally:
            CloudUCM.delete(TENANT)
    assert result.exit_code == 0, result.output
    assert "busy" in result.output
    assert f"{TENANT}: busy: another poll tick or a backfill is working this tenant right now" in " ".join(
        result.output.split()
    )
