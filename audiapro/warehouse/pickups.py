"""The pickup ledgers: which SFTP files and which e-mails a pickup source has already handled.

``sftp_files`` keys a file by (source, path, size, mtime): a file rewritten in place is a new row and
is fetched again (the import's content hash decides whether anything in it is new). ``mail_messages``
keys a message by (source, mailbox, UIDVALIDITY, UID), the identity IMAP guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from audiapro.warehouse.dialect import upsert_insert
from audiapro.warehouse.tables import mail_messages, sftp_files

#: Statuses of ``sftp_files``: listed but not yet stable, in the warehouse with its post-action still
#: to do, finished, permanently unusable.
FILE_WAITING, FILE_IMPORTED, FILE_DONE, FILE_REFUSED = "waiting", "imported", "done", "refused"
#: Statuses of ``mail_messages``; ``failed`` is retried by the next run, the others are final.
MAIL_IMPORTED, MAIL_SKIPPED, MAIL_REFUSED, MAIL_FAILED = "imported", "skipped", "refused", "failed"
#: Paths per ``IN (...)`` list when reading the ledger of one listing.
_PATHS_PER_QUERY: Final = 500


@dataclass(frozen=True)
class RemoteFile:
    """One file of an SFTP listing: its identity in the ledger.

    Attributes:
        path: Path on the server (as listed: directory + name).
        size: Bytes.
        mtime: Modification time, whole seconds since the epoch.
    """

    path: str
    size: int
    mtime: int


@dataclass(frozen=True)
class FileRecord:
    """What the ledger knows of one (path, size, mtime)."""

    file: RemoteFile
    status: str
    first_seen_at: datetime
    sha256: str | None
    detail: str | None


def read_sftp_files(engine: sa.Engine, source: str, paths: Iterable[str]) -> dict[RemoteFile, FileRecord]:
    """The ledger rows of ``source`` for these paths (every size and mtime seen of each)."""
    wanted = sorted(set(paths))
    records: dict[RemoteFile, FileRecord] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), _PATHS_PER_QUERY):
            query = sa.select(sftp_files).where(
                sftp_files.c.source == source,
                sftp_files.c.remote_path.in_(wanted[start : start + _PATHS_PER_QUERY]),
            )
            for row in conn.execute(query):
                file = RemoteFile(row.remote_path, row.size, row.mtime)
                records[file] = FileRecord(file, row.status, row.first_seen_at, row.sha256, row.detail)
    return records


def note_sftp_files(
    engine: sa.Engine, *, source: str, tenant: str, files: Sequence[RemoteFile], now: datetime
) -> None:
    """Add the files not in the ledger yet as ``waiting``, first seen ``now`` (known ones keep theirs)."""
    if not files:
        return
    rows = [{"source": source, "remote_path": f.path, "size": f.size, "mtime": f.mtime, "tenant": tenant,
             "status": FILE_WAITING, "first_seen_at": now, "updated_at": now} for f in files]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(upsert_insert(conn, sftp_files).values(rows).on_conflict_do_nothing())


def set_sftp_file(
    engine: sa.Engine,
    *,
    source: str,
    tenant: str,
    file: RemoteFile,
    status: str,
    now: datetime,
    sha256: str | None = None,
    detail: str | None = None,
) -> None:
    """Record the file's new status (the row is created when the file was never listed before)."""
    values = {"status": status, "updated_at": now, "sha256": sha256, "detail": detail}
    with engine.begin() as conn:
        insert = upsert_insert(conn, sftp_files).values(
            source=source, remote_path=file.path, size=file.size, mtime=file.mtime, tenant=tenant,
            first_seen_at=now, **values,
        )  # fmt: skip
        set_ = {key: insert.excluded[key] for key in ("status", "updated_at")}
        # A later step that knows no hash or detail keeps what an earlier step recorded.
        for key in ("sha256", "detail"):
            set_[key] = sa.func.coalesce(insert.excluded[key], sftp_files.c[key])
        conn.execute(
            insert.on_conflict_do_update(index_elements=["source", "remote_path", "size", "mtime"], set_=set_)
        )


@dataclass(frozen=True)
class MailMark:
    """Where a mailbox's pickup stands under one UIDVALIDITY.

    Attributes:
        last_uid: Highest UID recorded (0: none, e.g. after a UIDVALIDITY change: re-scan).
        retry_uids: UIDs whose last attempt failed (looked at again).
        known: Whether any message was recorded under this UIDVALIDITY.
    """

    last_uid: int
    retry_uids: tuple[int, ...]
    known: bool


def read_mail_mark(engine: sa.Engine, source: str, mailbox: str, uidvalidity: int) -> MailMark:
    """The mailbox's high-water UID and failed UIDs under ``uidvalidity``."""
    where = (
        mail_messages.c.source == source,
        mail_messages.c.mailbox == mailbox,
        mail_messages.c.uidvalidity == uidvalidity,
    )
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(mail_messages.c.uid)).where(*where)).scalar()
        failed = conn.execute(
            sa.select(mail_messages.c.uid).where(*where, mail_messages.c.status == MAIL_FAILED)
        ).scalars()
        retry = tuple(sorted(int(uid) for uid in failed))
    return MailMark(last_uid=int(last or 0), retry_uids=retry, known=last is not None)


@dataclass(frozen=True)
class MailRecord:
    """One message's outcome, keyed by (source, mailbox, UIDVALIDITY, UID)."""

    source: str
    mailbox: str
    uidvalidity: int
    uid: int
    tenant: str
    status: str
    message_id: str | None = None
    attachments: int = 0
    detail: str | None = None


def record_mail_message(engine: sa.Engine, record: MailRecord, *, now: datetime) -> None:
    """Store (or replace) a message's outcome."""
    values = {"tenant": record.tenant, "status": record.status, "message_id": record.message_id,
              "attachments": record.attachments, "detail": record.detail, "seen_at": now}  # fmt: skip
    with engine.begin() as conn:
        insert = upsert_insert(conn, mail_messages).values(
            source=record.source, mailbox=record.mailbox, uidvalidity=record.uidvalidity, uid=record.uid,
            **values,
        )  # fmt: skip
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["source", "mailbox", "uidvalidity", "uid"],
                set_={key: insert.excluded[key] for key in values},
            )
        )


def pickup_totals(engine: sa.Engine) -> dict[str, dict[str, int]]:
    """Per source: how many ledger rows of each status (``source list``)."""
    totals: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table in (sftp_files, mail_messages):
            query = sa.select(table.c.source, table.c.status, sa.func.count()).group_by(
                table.c.source, table.c.status
            )
            for source, status, count in conn.execute(query):
                totals.setdefault(source, {})[status] = int(count)
    return totals
