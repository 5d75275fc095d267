"""poll-cdrs: every enabled tenant's new CDRs, exactly once, every 2 minutes.

tenants --one block read--> poll each tenant (threads, bounded parallel, retried) --> summary artifact

With more tenants than ``shard_size`` the tick fans out: each shard of tenants is a `poll-shard`
flow run that any worker of the pool picks up (``flows.fanout``; docs/operations.md "Fan-out").
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.prefect_names import POLL_FLOW, POLL_SHARD_FLOW
from blocks.clouducm import list_tenants, load_tenants
from flows.fanout import ShardOutcome, plan_shards, run_shard_deployments, run_shard_subflows
from flows.support import parallel_flow
from tasks.events import emit_tenant_failed, emit_tenant_silent
from tasks.poll import failure_row, poll_tenant_retrying
from tasks.support import current_flow_run_id

#: How many tenants are polled at once (each tenant is still one PBX session at a time).
MAX_PARALLEL_TENANTS = 4
SUMMARY_COLUMNS = ("tenant", "status", "window_start", "window_end", "pieces", "fetched", "inserted",
                   "updated", "rejected", "behind_seconds", "swept", "empty_ticks", "seconds",
                   "error", "fraud_alerts")  # fmt: skip
#: Tenants a tick polls itself; beyond that, no more `poll-shard` runs than shards of this size make.
#: A shard is one flow-run process: ~2.7 CPU-s to start (Python, Prefect, pandas), as much as ~30
#: idle tenants' polls cost, so a shard is large enough to pay for it (100: ~27 ms per tenant or less).
DEFAULT_SHARD_SIZE = 100
#: Shards of one tick, all in flight at once (``flows.fanout.plan_shards``): the pool's free slots.
#: 3 = one worker started with ``--limit 4`` (as `make up` and the scale bench start them) minus the
#: tick's own slot; with more workers set it to their slots minus one, so every machine gets work.
DEFAULT_PARALLEL_SHARDS = 3
#: Longest a tick waits for its shards: a shard whose worker died is given up after this (its
#: tenants' cursors are committed per piece, so the next tick polls them again, losing nothing).
DEFAULT_SHARD_WAIT_S = 300.0


@parallel_flow(POLL_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def poll_cdrs(
    tenant: str | None = None,
    analyze: bool = True,
    shard_size: int = DEFAULT_SHARD_SIZE,
    parallel_shards: int = DEFAULT_PARALLEL_SHARDS,
    shard_wait_s: float = DEFAULT_SHARD_WAIT_S,
) -> State:
    """Poll every enabled CloudUCM tenant once (or only ``tenant``) and load new legs.

    Args:
        tenant: Poll only this tenant (a "sync now" for one customer); all enabled ones when empty.
        analyze: Start `analyze-calls` for tenants that loaded new calls (a deployment run when
            deployed, so the tick does not wait; a subflow otherwise).
        shard_size: Up to this many tenants are polled in this run; more are split into
            ``parallel_shards`` shards, no more than shards of this size make
            (``flows.fanout.plan_shards``), each a
            `poll-shard` run (deployment runs on any worker when deployed, subflows otherwise).
        parallel_shards: Shards per tick, all in flight at once (the pool's free slots).
        shard_wait_s: Longest the tick waits for its shard runs (see ``DEFAULT_SHARD_WAIT_S``).

    Returns:
        Completed when every tenant succeeded (or was busy), Failed naming the tenants (or shards)
        that failed; the other tenants' data is loaded either way.
    """
    logger = get_run_logger()
    names = [tenant] if tenant else list_tenants(with_pbx=True)  # import-only tenants have no PBX
    if not names:
        logger.warning("no enabled CloudUCM tenants: add one with `audiapro tenant add`")
    if len(names) <= shard_size:
        return poll_tenants(names, analyze=analyze)
    shards = plan_shards(names, shard_size, max(1, parallel_shards))
    from prefect.runtime import deployment, flow_run

    if deployment.id is not None:
        outcomes = run_shard_deployments(
            shards,
            parameters={"analyze": analyze},
            parallel_shards=max(1, parallel_shards),
            shard_wait_s=shard_wait_s,
            tick_id=str(flow_run.id),
            tick_name=str(flow_run.name),
        )
    else:
        outcomes = run_shard_subflows(shards, lambda part: poll_shard(part, analyze, return_state=True))
    return _tick_state(outcomes, len(names))


@parallel_flow(POLL_SHARD_FLOW, max_workers=MAX_PARALLEL_TENANTS)
def poll_shard(tenants: list[str], analyze: bool = True) -> State:
    """Poll one shard of a tick's tenants (started by `poll-cdrs`; see ``flows.fanout``).

    Args:
        tenants: The shard's tenant names.
        analyze: As in `poll-cdrs`.

    Returns:
        As `poll-cdrs` for these tenants.
    """
    return poll_tenants(tenants, analyze=analyze)


def poll_tenants(names: list[str], *, analyze: bool) -> State:
    """Poll ``names`` in this flow run (bounded parallel), report them, start their analysis.

    Their blocks are read in one Prefect API call, and each tenant is polled in a thread of this run
    rather than as a task run of its own (``tasks.poll``): what an idle tenant costs the Prefect
    server is its PBX session slot (acquire, release), nothing more.
    """
    logger = get_run_logger()
    blocks = load_tenants(names) if names else {}
    run_id = current_flow_run_id()
    with ThreadPoolExecutor(MAX_PARALLEL_TENANTS, thread_name_prefix="poll-tenant") as pool:
        # Each thread runs in a copy of this run's context (a context runs in one thread at once).
        futures = {
            name: pool.submit(
                contextvars.copy_context().run,
                poll_tenant_retrying,
                name,
                blocks.get(name),
                flow_run_id=run_id,
                logger=logger,
            )
            for name in names
        }
        rows = _collect(futures, logger)
    create_table_artifact(
        table=[{col: row.get(col, "") for col in SUMMARY_COLUMNS} for row in rows],
        key=f"{POLL_FLOW}-summary",
        description="Per-tenant result of this poll tick",
    )
    if analyze and any(row.get("inserted") or row.get("updated") for row in rows):
        # Imported only when there is something to analyze: the analysis stack (OpenAI's client
        # among it) is a second of CPU at every flow-run process start, and most ticks load nothing.
        from flows.analyze import trigger_analysis

        trigger_analysis(rows)
    failed = [row["tenant"] for row in rows if row["status"] == "failed"]
    if failed:
        return Failed(message=f"{len(failed)} of {len(rows)} tenants failed: {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} tenants polled", data=rows)


def _collect(futures: dict[str, Future[dict[str, Any]]], logger: Any) -> list[dict[str, Any]]:
    """Each tenant's row, in ``futures`` order; a failed tenant is recorded, logged and announced."""
    rows: list[dict[str, Any]] = []
    for name, future in futures.items():
        try:
            rows.append(future.result())
            if rows[-1].get("silent"):
                logger.warning("tenant %s: %d empty windows in a row where calls are usual", name,
                               rows[-1]["empty_ticks"])  # fmt: skip
                emit_tenant_silent(rows[-1])  # the automations alert on it
        except Exception as exc:
            rows.append(failure_row(name, exc))
            logger.error("tenant %s failed: %s", name, rows[-1]["error"])
            emit_tenant_failed(name, rows[-1]["error"])  # the automations alert on a failure streak
    return rows


def _tick_state(outcomes: list[ShardOutcome], tenants: int) -> State:
    """The fanned-out tick's state: a table of its shards; Failed when any shard was not Completed."""
    create_table_artifact(
        table=[outcome.as_row() for outcome in outcomes],
        key=f"{POLL_FLOW}-shards",
        description="Per-shard result of this poll tick (each shard's run has the per-tenant table)",
    )
    bad = [outcome for outcome in outcomes if not outcome.ok]
    if bad:
        detail = "; ".join(f"shard {o.index + 1} {o.state}: {o.message}" for o in bad)
        return Failed(message=f"{len(bad)} of {len(outcomes)} shards not completed: {detail}")
    return Completed(message=f"{tenants} tenants polled in {len(outcomes)} shards")
