"""import-cdr-file: a UCM web-UI CSV export or a saved cdrapi JSON reply into the warehouse, once.

file --> import-file (hash, claim, chunks: read -> normalize -> load without overwriting, rejects
quarantined; resumable) --> summary artifact
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from audiapro.importing import DEFAULT_IMPORT_CHUNK_ROWS
from tasks.import_file import import_file_task
from tasks.support import artifact_key

SUMMARY_COLUMNS = ("file", "format", "status", "read", "new", "duplicate", "rejected", "chunks",
                   "resumed_from_row", "seconds")  # fmt: skip
#: Bounds of the chunk size: tiny chunks make one transaction per handful of rows, huge ones defeat
#: the bounded memory.
MIN_CHUNK_ROWS = 100
MAX_CHUNK_ROWS = 200_000


@flow(name="import-cdr-file", persist_result=False)
def import_cdr_file(
    path: str,
    tenant: str,
    timezone: str | None = None,
    chunk_rows: Annotated[int, Field(ge=MIN_CHUNK_ROWS, le=MAX_CHUNK_ROWS)] = DEFAULT_IMPORT_CHUNK_ROWS,
) -> dict[str, Any]:
    """Import a CDR file for a tenant; importing the same file again adds nothing.

    Legs already in the warehouse (from polling, a backfill or another file) are counted as
    duplicates and never overwritten; unreadable rows are quarantined with their line number.

    Args:
        path: The file, as seen by the worker: a UCM web-UI CSV export ("Download All Records") or a
            saved cdrapi JSON reply (format detected from the content). It must lie in an import
            root: the spool directory (.audiapro/spool) or a directory listed in
            AUDIAPRO_IMPORT_ROOTS on the worker; any other path is refused unread.
        tenant: Tenant name (its CloudUCM block; an import-only tenant needs no PBX host).
        timezone: IANA zone the file's times are in, when it is not the tenant's.
        chunk_rows: Rows read, normalized and committed at a time (memory is bounded by it).

    Returns:
        The summary: read, new, duplicate, rejected and the first rejected lines.
    """
    summary: dict[str, Any] = import_file_task(path, tenant, timezone, chunk_rows)
    get_run_logger().info(
        "tenant %s: %s %s: read %d, new %d, duplicate %d, rejected %d",
        tenant, summary["file"], summary["status"], summary["read"], summary["new"],
        summary["duplicate"], summary["rejected"],
    )  # fmt: skip
    rejects = "; ".join(f"line {line}: {reason}" for line, reason in summary["first_rejects"])
    create_table_artifact(
        table=[{col: summary[col] for col in SUMMARY_COLUMNS}],
        key=artifact_key("import", tenant, "summary"),
        description=(
            f"Import of {summary['file']} (sha256 {summary['sha256'][:12]}) for {tenant}"
            + (f". First rejected rows: {rejects}. All: {summary['rejects_sql']}" if rejects else "")
        ),
    )
    return summary
