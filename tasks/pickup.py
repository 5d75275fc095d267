"""Prefect task of one pickup source: load its block, fetch and import; logic is in audiapro.pickup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audiapro.errors import describe_error
from audiapro.pickup.core import ImportTarget, PickupReport
from audiapro.pickup.imap import pickup_imap
from audiapro.pickup.sftp import pickup_sftp
from blocks.pickup import ImapSource, SftpSource, load_source
from tasks.import_file import import_tenant
from tasks.progress import ProgressReporter
from tasks.support import artifact_key, current_flow_run_id, retrying_task
from tasks.warehouse import warehouse_engine

#: A dropped connection or a busy tenant is retried; a refused login or a wrong host key is not
#: (``audiapro.pickup.errors`` marks which is which). Files done before the failure stay done.
PICKUP_RETRIES = 2
PICKUP_RETRY_DELAYS: list[float] = [20.0, 60.0]


class _FileProgress:
    """A progress artifact per source, created for the first file that takes more than one chunk."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._reporter: ProgressReporter | None = None

    def __call__(self, name: str, fraction: float, rows: int) -> None:
        if self._reporter is None and fraction >= 1.0:
            return  # a file loaded in one chunk: too quick to be worth an artifact
        if self._reporter is None:
            self._reporter = ProgressReporter(
                key=artifact_key("pickup", self._source, "progress"), description=f"{self._source}: {name}"
            )
        self._reporter.update(fraction, f"{self._source}: {name}, {rows} rows")


def run_source(name: str, *, dry_run: bool = False, now: datetime | None = None) -> PickupReport:
    """Pick up one source now (the task's body; ``audiapro source test`` runs it with ``dry_run``).

    Raises:
        ValueError: No such source, or its tenant does not exist.
        PickupError: The server refused or could not be reached (one line, no secret).
    """
    kind, block = load_source(name)
    target = ImportTarget(
        engine=warehouse_engine(),
        tenant=import_tenant(block.tenant, None),
        limits=block.limits(),
        flow_run_id=current_flow_run_id(),
        on_progress=_FileProgress(name),
    )
    moment = now or datetime.now(UTC)
    if isinstance(block, SftpSource):
        return pickup_sftp(name, block.settings(), target, now=moment, dry_run=dry_run)
    assert isinstance(block, ImapSource), kind
    return pickup_imap(name, block.settings(), target, now=moment, dry_run=dry_run)


@retrying_task(
    "pickup-source", "pickup-{source}", retries=PICKUP_RETRIES, delays=PICKUP_RETRY_DELAYS, cache=False
)
def pickup_source_task(source: str) -> dict[str, Any]:
    """Fetch the source's new files and import them (see ``audiapro.pickup``).

    Returns:
        The report row: files seen, imported, duplicates, refused, waiting, legs, rejected rows.
    """
    return {"status": "ok", **run_source(source).as_row()}


def failure_row(source: str, kind: str, exc: BaseException) -> dict[str, Any]:
    """The report row of a source whose pickup failed (after retries)."""
    return {"source": source, "kind": kind, "status": "failed", "error": describe_error(exc)}
