"""What both pickups share: the run report and the hand-over of a fetched file to the file import.

Each fetched file ends in :func:`audiapro.importing.import_file`, which claims (tenant, SHA-256)
before loading: the same content fetched twice (a rerun after a crash, a re-delivered e-mail, a copy
under another name) adds nothing, whatever the ledgers say. The ledgers only save the fetching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from audiapro.cdr.readers.common import ImportFormatError
from audiapro.importing import DEFAULT_IMPORT_CHUNK_ROWS, import_file
from audiapro.pickup.errors import FileRefused
from audiapro.pickup.files import Limits, cdr_files

if TYPE_CHECKING:
    import sqlalchemy as sa

    from audiapro.tenants import TenantSettings

#: ``on_progress(file_name, fraction_done, rows_done)``, after each committed chunk of a file.
PickupProgress = Callable[[str, float, int], None]
#: ImportSummary statuses meaning "the content was imported before".
_ALREADY: Final = "already imported"
#: Files listed by name in a report (the counts cover all of them).
MAX_FILE_ROWS: Final = 200


class ServerLogin:
    """What every pickup source's settings have: a server and a login on it (the dataclasses of
    :mod:`audiapro.pickup.sftp` and :mod:`audiapro.pickup.imap` declare the fields)."""

    host: str
    user: str
    port: int

    @property
    def where(self) -> str:
        """``user@host:port`` for messages."""
        return f"{self.user}@{self.host}:{self.port}"


@dataclass
class PickupReport:
    """What one pickup run of one source did (the flow's table artifact has one row per source).

    Attributes:
        source: The source's name (its block).
        kind: ``sftp`` or ``imap``.
        tenant: Tenant the files are imported for.
        seen: Files (SFTP) or messages (IMAP) looked at that were not finished before.
        waiting: Files not yet complete (still being written, no ``.done`` marker).
        imported: CDR files whose content was new.
        duplicates: CDR files whose content had been imported before (nothing added).
        refused: Files or attachments refused for good (caps, zip bomb, not a CDR file).
        skipped: Messages ignored (sender not allowed, no matching attachment).
        new_legs: Legs added to the warehouse.
        duplicate_legs: Legs already stored.
        rejected_rows: Rows quarantined by the import (``rejected_rows``).
        files: Per file: name, status, counts, reason.
        would_import: Dry run only: what a real run would fetch now.
    """

    source: str
    kind: str
    tenant: str
    seen: int = 0
    waiting: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: int = 0
    skipped: int = 0
    new_legs: int = 0
    duplicate_legs: int = 0
    rejected_rows: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    would_import: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        """A JSON-friendly dict (task results, artifacts)."""
        return asdict(self)

    def note(self, name: str, status: str, detail: str = "", **counts: int) -> None:
        """List one file in the report (the first ``MAX_FILE_ROWS`` are kept by name)."""
        if len(self.files) < MAX_FILE_ROWS:
            self.files.append({"file": name, "status": status, "detail": detail, **counts})

    def refuse(self, name: str, reason: str) -> None:
        """Count a refused file."""
        self.refused += 1
        self.note(name, "refused", reason)


@dataclass(frozen=True)
class ImportTarget:
    """Where fetched files go: the warehouse, the tenant, the caps, lineage and progress."""

    engine: sa.Engine
    tenant: TenantSettings
    limits: Limits = field(default_factory=Limits)
    chunk_rows: int = DEFAULT_IMPORT_CHUNK_ROWS
    flow_run_id: str | None = None
    on_progress: PickupProgress | None = None


def import_fetched(fetched: Path, target: ImportTarget, report: PickupReport) -> str:
    """Import every CDR file in ``fetched`` (itself, or what its archive holds) and count it.

    Returns:
        One line on what happened (recorded in the ledger).

    Raises:
        FileRefused: The file or an archive member is unusable for good (the members before it stay
            imported; their content hashes make a retry harmless).
    """
    outcomes: list[str] = []
    progress = target.on_progress
    for cdr in cdr_files(fetched, target.limits):

        def report_progress(fraction: float, rows: int, name: str = cdr.name) -> None:
            if progress is not None:
                progress(name, fraction, rows)

        try:
            summary = import_file(
                cdr,
                target.engine,
                target.tenant,
                chunk_rows=target.chunk_rows,
                flow_run_id=target.flow_run_id,
                on_progress=report_progress,
            )
        except ImportFormatError as exc:
            raise FileRefused(f"{cdr.name}: not a CDR export ({exc})") from None
        already = summary.status == _ALREADY
        report.duplicates += already
        report.imported += not already
        report.new_legs += summary.new
        report.duplicate_legs += summary.duplicate
        report.rejected_rows += summary.rejected
        report.note(cdr.name, "duplicate" if already else "imported", new=summary.new,
                    duplicate=summary.duplicate, rejected=summary.rejected)  # fmt: skip
        outcomes.append(f"{cdr.name}: {summary.status}, new {summary.new}, rejected {summary.rejected}")
    return "; ".join(outcomes)
