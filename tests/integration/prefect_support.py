"""Helpers for the flow tests on a real Prefect API: artifacts, flow-run logs, CLI tables (no tests here)."""

from __future__ import annotations

import re
from typing import Any


def latest_artifact(key: str) -> Any:
    """The latest version of a keyed artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
        )
    return artifact


def flow_logs(flow_run_id: object) -> str:
    """Every log message the API stored for one flow run, one per line."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def number_rows(output: str) -> list[list[int]]:
    """The whole-number cells of each printed table row that has any (text cells are skipped)."""
    rows = []
    for line in output.splitlines():
        numbers = [int(cell.strip()) for cell in re.split(r"[│┃|]", line) if cell.strip().isdigit()]
        if numbers:
            rows.append(numbers)
    return rows
