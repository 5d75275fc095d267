"""pickup-files: CDR files from every enabled SFTP drop and mailbox into the file import, every 10 minutes.

sources --> pickup-source (per source, bounded parallel: list, fetch, import_file, ledger) --> table
artifact (one row per source)

One flow for both kinds, with an optional ``kind``: after "fetch a file" the two are the same
pipeline (spool, archives, import, ledger, report), one schedule and one concurrency limit keep two
runs from fetching the same file at once, and a per-source task isolates each source's failure
just as a flow per kind would. ``kind`` lets an operator run (or schedule) one kind alone.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed, State

from audiapro.prefect_names import PICKUP_FLOW
from blocks.pickup import list_sources, load_source
from flows.support import parallel_flow
from tasks.pickup import failure_row, pickup_source_task

#: Sources picked up at once (each holds one connection and imports one file at a time).
MAX_PARALLEL_SOURCES = 4
SUMMARY_COLUMNS = ("source", "kind", "tenant", "status", "seen", "imported", "duplicates", "refused",
                   "skipped", "waiting", "new_legs", "duplicate_legs", "rejected_rows", "error")  # fmt: skip


@parallel_flow(PICKUP_FLOW, max_workers=MAX_PARALLEL_SOURCES)
def pickup_files(kind: Literal["sftp", "imap"] | None = None, source: str | None = None) -> State:
    """Pick up the files of every enabled pickup source (or one kind, or one source).

    Args:
        kind: Only SFTP or only IMAP sources.
        source: Only this source (enabled or not: an operator asked for it).

    Returns:
        Completed when every source succeeded, Failed naming the sources that failed; the other
        sources' files are imported either way.
    """
    logger = get_run_logger()
    sources = [(load_source(source)[0], source)] if source else list_sources(kind)
    if not sources:
        logger.warning("no enabled pickup sources: add one with `audiapro source add sftp|imap`")
    futures = {(name, source_kind): pickup_source_task.submit(name) for source_kind, name in sources}
    rows: list[dict[str, Any]] = []
    for (name, source_kind), future in futures.items():
        try:
            rows.append(future.result())
        except Exception as exc:  # one source's failure never stops the others
            rows.append(failure_row(name, source_kind, exc))
            logger.error("pickup source %s failed: %s", name, rows[-1]["error"])
    create_table_artifact(
        table=[{col: row.get(col, "") for col in SUMMARY_COLUMNS} for row in rows],
        key=f"{PICKUP_FLOW}-summary",
        description="Per source: files seen, imported, duplicates, refused; legs new; rows rejected",
    )
    failed = [row["source"] for row in rows if row["status"] == "failed"]
    if failed:
        return Failed(message=f"{len(failed)} of {len(rows)} sources failed: {', '.join(failed)}", data=rows)
    return Completed(message=f"{len(rows)} sources picked up", data=rows)
