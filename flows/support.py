"""What the pipeline's flows share: their Prefect options."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect import Flow, flow
from prefect.task_runners import ThreadPoolTaskRunner

P = ParamSpec("P")
R = TypeVar("R")


def parallel_flow(name: str, max_workers: int) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """The flow decorator of the pipeline: up to ``max_workers`` tasks at once (threads; each task
    holds its own PBX session or tenant lock), and no persisted result (the returned state and the
    artifacts carry what a run did).

    Args:
        name: Flow name (``audiapro.prefect_names``).
        max_workers: Tasks run at once.
    """
    return flow(
        name=name,
        task_runner=ThreadPoolTaskRunner(max_workers=max_workers),  # type: ignore[arg-type]
        persist_result=False,
    )
