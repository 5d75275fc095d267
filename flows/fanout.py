"""How one poll tick spreads over workers: shards of tenants, each a `poll-shard` flow run.

::

    poll-cdrs (1 run per tick, concurrency 1 + CANCEL_NEW)
        tenants --plan_shards--> parallel_shards shards (no more than shard_size makes, none
                                 over MAX_SHARD_SIZE tenants): all start at once, in one wave
        deployed:     run_deployment(poll-shard, timeout=0) for up to parallel_shards at once,
                      each picked up by whichever worker of the pool polls first; wait for all
        not deployed: each shard as a subflow in this process, one after the other

The tick waits for its shards, so the next tick (cancelled by CANCEL_NEW while this one runs) never
starts shards beside them; within a shard, the per-tenant lock and the ``ucm:<tenant>`` session
limit still decide, so even a shard outliving its tick (see ``shard_wait_s``) cannot work a tenant
twice at once. Data never depends on a shard finishing: each tenant's cursor is committed in the
warehouse per piece, and the next tick reads its window from there.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from audiapro.prefect_names import POLL_SHARD_DEPLOYMENT

#: How often the tick reads its shards' states while waiting (one API call for all of them).
SHARD_POLL_S: Final = 2.0
#: Most tenants one shard polls: beyond ``parallel_shards`` x this, a tick runs its shards in waves.
MAX_SHARD_SIZE: Final = 1000
#: State types after which a shard run does nothing more.
FINAL_STATES: Final = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


@dataclass(frozen=True)
class ShardOutcome:
    """What became of one shard of a tick.

    Attributes:
        index: Position of the shard (0-based).
        tenants: Its tenants.
        state: Final state type (``COMPLETED``, ``FAILED``...), or ``LOST`` when the tick stopped
            waiting for it (its worker died, or it ran longer than ``shard_wait_s``).
        message: The run's state message.
        run_name: The flow run's name ("" for an inline subflow without a run name).
    """

    index: int
    tenants: tuple[str, ...]
    state: str
    message: str
    run_name: str = ""

    @property
    def ok(self) -> bool:
        """Whether every tenant of the shard succeeded (or was busy)."""
        return self.state == "COMPLETED"

    def as_row(self) -> dict[str, Any]:
        """A row of the tick's summary artifact."""
        return {"shard": self.index + 1, "run": self.run_name, "tenants": len(self.tenants),
                "first": self.tenants[0] if self.tenants else "", "state": self.state,
                "message": self.message}  # fmt: skip


def split_shards(names: Sequence[str], shard_size: int) -> list[list[str]]:
    """Cut ``names`` into consecutive shards of at most ``shard_size`` tenants.

    Sorted names give stable shards from tick to tick, so a tenant's polls show up in the same
    shard's history in the UI.

    Raises:
        ValueError: ``shard_size`` below 1.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, not {shard_size}")
    ordered = sorted(names)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


def plan_shards(
    names: Sequence[str], shard_size: int, parallel_shards: int, max_shard_size: int = MAX_SHARD_SIZE
) -> list[list[str]]:
    """Cut one tick's tenants into as many shards as run at once, in one wave.

    Each wave of shard runs waits for a worker's next query of the pool and then for new flow-run
    processes to start (seconds of imports each), and a last wave of fewer shards than slots leaves
    cores idle: a 1,000-tenant tick in 10 shards of 100 on one worker running 3 at once spent
    about a third of its wall time so. So the tick makes ``parallel_shards`` shards (the pool's
    free slots), but no more than cutting the tenants into shards of ``shard_size`` would make
    (a small tick gets fewer shards: a process start costs as much as ~30 idle tenants' polls), and
    none larger than ``max_shard_size`` (more shards, in waves, for a huge tick). Sizes differ by
    one at most.

    Args:
        names: The tick's tenants.
        shard_size: At most ``ceil(len(names) / shard_size)`` shards are made.
        parallel_shards: Shard runs in flight at once.
        max_shard_size: Most tenants per shard.

    Raises:
        ValueError: ``shard_size``, ``parallel_shards`` or ``max_shard_size`` below 1.
    """
    if min(shard_size, parallel_shards, max_shard_size) < 1:
        raise ValueError(
            f"shard_size, parallel_shards and max_shard_size must be at least 1, not "
            f"{shard_size}, {parallel_shards}, {max_shard_size}"
        )
    ordered = sorted(names)
    count = max(min(parallel_shards, math.ceil(len(ordered) / shard_size)),
                math.ceil(len(ordered) / max_shard_size))  # fmt: skip
    if not count:
        return []
    small, extra = divmod(len(ordered), count)
    bounds = [0]
    for index in range(count):
        bounds.append(bounds[-1] + small + (index < extra))
    return [ordered[a:b] for a, b in itertools.pairwise(bounds)]


def run_shard_deployments(
    shards: Sequence[Sequence[str]],
    *,
    parameters: dict[str, Any],
    parallel_shards: int,
    shard_wait_s: float,
    tick_id: str,
    tick_name: str,
) -> list[ShardOutcome]:
    """Start a `poll-shard` deployment run per shard (at most ``parallel_shards`` unfinished at
    once) and wait until each is final or ``shard_wait_s`` has passed since the first start.

    Args:
        shards: Tenant names per shard.
        parameters: Further `poll-shard` parameters (e.g. ``analyze``).
        parallel_shards: Shard runs in flight at once; the rest start as these finish.
        shard_wait_s: Longest the tick waits for its shards; those still unfinished are reported
            ``LOST`` (their tenants are polled again by the next tick, from their cursors).
        tick_id: The tick's flow run id: with the shard index it makes the idempotency key, so a
            retried tick does not start a shard twice.
        tick_name: The tick's flow run name: shard runs are named ``<tick>-shard-<i>-of-<n>``, so
            the UI and the workers' logs tie each shard to its tick.

    Returns:
        One outcome per shard, in shard order.
    """
    logger = get_run_logger()
    deadline = time.monotonic() + shard_wait_s
    outcomes: dict[int, ShardOutcome] = {}
    running: dict[UUID, int] = {}
    waiting = list(range(len(shards)))
    while waiting or running:
        while waiting and len(running) < parallel_shards:
            index = waiting.pop(0)
            # Sync call in a sync flow: a FlowRun, never the coroutine of the async dispatch.
            run = cast(FlowRun, run_deployment(
                POLL_SHARD_DEPLOYMENT,
                parameters={"tenants": list(shards[index]), **parameters},
                flow_run_name=f"{tick_name}-shard-{index + 1}-of-{len(shards)}",
                idempotency_key=f"{tick_id}-shard-{index}",
                timeout=0,
            ))  # fmt: skip
            running[run.id] = index
        if time.monotonic() > deadline:
            break
        time.sleep(SHARD_POLL_S)
        for run in _read_runs(list(running)):
            state = run.state.type.value if run.state else ""
            if state in FINAL_STATES:
                index = running.pop(run.id)
                outcomes[index] = _outcome(index, shards[index], run, state)
    for index in [*running.values(), *waiting]:
        logger.error("shard %d (%d tenants from %s) did not finish within %.0f s; the next tick polls "
                     "its tenants from their cursors", index + 1, len(shards[index]), shards[index][0],
                     shard_wait_s)  # fmt: skip
        outcomes[index] = ShardOutcome(index, tuple(shards[index]), "LOST",
                                       f"not finished after {shard_wait_s:.0f} s")  # fmt: skip
    return [outcomes[i] for i in range(len(shards))]


def run_shard_subflows(
    shards: Sequence[Sequence[str]], run_shard: Callable[[list[str]], Any]
) -> list[ShardOutcome]:
    """Run each shard in this process, one after the other (no deployment: CLI, tests).

    Args:
        shards: Tenant names per shard.
        run_shard: Runs one shard and returns its final Prefect state (the `poll-shard` flow).
    """
    outcomes = []
    for index, shard in enumerate(shards):
        state = run_shard(list(shard))
        outcomes.append(ShardOutcome(index, tuple(shard), state.type.value, state.message or "", state.name))
    return outcomes


def _read_runs(ids: list[UUID]) -> list[FlowRun]:
    if not ids:
        return []
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))


def _outcome(index: int, tenants: Sequence[str], run: FlowRun, state: str) -> ShardOutcome:
    message = (run.state.message if run.state else None) or ""
    return ShardOutcome(index, tuple(tenants), state, message, run.name)
