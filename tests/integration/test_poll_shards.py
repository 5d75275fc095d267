"""poll-cdrs fanned out into poll-shard subflows on a real Prefect API, against PBXs served by one
multi-tenant simulator; and what an idle tick costs each PBX."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

from audiapro.prefect_names import POLL_SHARD_FLOW
from audiapro.ucm.simulator import UcmSimulator
from audiapro.ucm.simulator.multi import MultiSimulator
from audiapro.warehouse import get_engine
from blocks.clouducm import CloudUCM, list_tenants, load_tenant
from flows.fanout import plan_shards, split_shards
from flows.poll import poll_cdrs
from tests.integration.pipeline_support import save_simulated_tenant
from tests.wall_clock_pbx import wall_clock_pbx

pytestmark = pytest.mark.usefixtures("prefect_api")

TZ = "UTC"
TENANTS = ("shard-a", "shard-b", "shard-c")
#: A tenant whose CDRs arrive as files only (no PBX host).
IMPORT_ONLY = "shard-files"
#: Each PBX its own password: the multi-tenant simulator keeps the tenants' credentials apart.
PASSWORDS = {name: f"Pa55-{name}-word!" for name in TENANTS}
#: What an idle tick (nothing new since the last one) asks of a PBX, 6 or 7 requests: challenge +
#: login; cdrapi: the window's page when the lookback holds legs (it re-reads legs already loaded;
#: whether it does depends on the hour of the simulated day), the empty page that ends the window and
#: its two confirmations (a PBX may replay a stale reply, docs/operations.md "Idle tick cost");
#: logout. The long-call sweep (hourly) is not due on a second tick.
IDLE_TICK_REQUESTS = {"challenges": 1, "logins": 1, "logouts": 1, "cdrapi_requests": 3}


@pytest.fixture
def multi_pbx() -> Iterator[MultiSimulator]:
    """Three PBXs behind one simulator port, each saved as a CloudUCM block with its own api_path."""
    multi = MultiSimulator()
    others = _set_enabled(list_tenants(with_pbx=True), enabled=False)  # earlier tests' PBX tenants
    with multi.serve() as url:
        for index, name in enumerate(TENANTS):
            config = wall_clock_pbx(seed=30 + index, calls_per_day=40, tz=TZ, password=PASSWORDS[name])
            multi.add(name, UcmSimulator(config))
            save_simulated_tenant(
                name, url, password=PASSWORDS[name], timezone=TZ, api_path=multi.api_path(name)
            )
        CloudUCM(timezone=TZ).save(IMPORT_ONLY, overwrite=True)  # no PBX: never part of a tick
        yield multi
    for name in (*TENANTS, IMPORT_ONLY):
        CloudUCM.delete(name)
    _set_enabled(others, enabled=True)


def _set_enabled(names: list[str], *, enabled: bool) -> list[str]:
    """Switch the tenants ``names`` on or off (a tick here must poll this module's PBXs only)."""
    for name in names:
        block = load_tenant(name)
        block.enabled = enabled
        block.save(name, overwrite=True)
    return names


def test_split_shards_is_sorted_contiguous_and_complete() -> None:
    names = [f"t{i:02d}" for i in range(7)][::-1]
    shards = split_shards(names, 3)
    assert shards == [["t00", "t01", "t02"], ["t03", "t04", "t05"], ["t06"]]
    assert split_shards([], 5) == []
    with pytest.raises(ValueError, match="shard_size"):
        split_shards(names, 0)


def test_a_tick_plans_one_wave_of_even_shards() -> None:
    names = [f"t{i:04d}" for i in range(1000)][::-1]
    shards = plan_shards(names, 100, 3)  # one worker with --limit 4: 3 free slots, one wave
    assert [len(shard) for shard in shards] == [334, 333, 333]
    assert [name for shard in shards for name in shard] == sorted(names)  # sorted, contiguous, complete
    assert [len(s) for s in plan_shards(names[:150], 100, 3)] == [75, 75]  # no more than size 100 makes
    assert [len(s) for s in plan_shards(names[:50], 10, 5)] == [10] * 5
    assert [len(s) for s in plan_shards(names, 100, 3, max_shard_size=300)] == [250] * 4  # huge: waves
    assert plan_shards([], 100, 3) == []
    with pytest.raises(ValueError, match="parallel_shards"):
        plan_shards(names, 100, 0)


def test_a_tick_fans_out_into_shards_and_loads_every_leg_once(
    warehouse_url: str, multi_pbx: MultiSimulator
) -> None:
    state = poll_cdrs(analyze=False, shard_size=2, return_state=True)

    assert state.is_completed(), state.message
    assert state.message == "3 tenants polled in 2 shards"
    with get_client(sync_client=True) as client:
        shard_runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[POLL_SHARD_FLOW]))
        )
    mine = [run for run in shard_runs if run.parent_task_run_id is not None]
    assert len(mine) >= 2 and all(run.state and run.state.is_completed() for run in mine)
    engine = get_engine(warehouse_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT tenant, count(*) FROM cdr_legs GROUP BY tenant")).all())
        dupes = conn.scalar(sa.text("SELECT count(*) FROM (SELECT tenant, acct_id FROM cdr_legs "
                                    "GROUP BY tenant, acct_id HAVING count(*) > 1) d"))  # fmt: skip
        first_windows = sa.text("SELECT tenant, min(window_start) FROM ingest_runs GROUP BY tenant")
        starts = dict(conn.execute(first_windows).all())
    assert dupes == 0
    for name in TENANTS:
        since = datetime.fromisoformat(str(starts[name])).replace(microsecond=0)
        written = multi_pbx[name].ground_truth(start=since)
        assert stored[name] == len(written) > 0, name


def test_an_idle_tick_costs_each_pbx_at_most_seven_requests(
    warehouse_url: str, multi_pbx: MultiSimulator
) -> None:
    first = poll_cdrs(tenant="shard-a", analyze=False, return_state=True)
    assert first.is_completed(), first.message
    before = multi_pbx["shard-a"].stats.as_dict()

    idle = poll_cdrs(tenant="shard-a", analyze=False, return_state=True)  # the PBX clock did not move

    assert idle.is_completed(), idle.message
    after = multi_pbx["shard-a"].stats.as_dict()
    spent = {key: after[key] - before[key] for key in ("challenges", "logins", "logouts", "cdrapi_requests")}
    (row,) = idle.result()
    data_pages = 1 if row["fetched"] else 0  # the lookback's legs fit one page
    assert spent == {
        **IDLE_TICK_REQUESTS,
        "cdrapi_requests": IDLE_TICK_REQUESTS["cdrapi_requests"] + data_pages,
    }
    assert after["requests"] - before["requests"] == sum(spent.values())
    assert after["failed_logins"] == 0 and multi_pbx["shard-b"].stats.requests == 0
