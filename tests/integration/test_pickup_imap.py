"""E-mail pickup against pymap's real IMAP server on loopback: exactly once by (mailbox, UIDVALIDITY, UID)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiapro.pickup.core import ImportTarget
from audiapro.pickup.errors import SourceAuthError, SourceConfigError, SourceUnreachable
from audiapro.pickup.files import Limits
from audiapro.pickup.imap import ImapSettings, pickup_imap
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import cdr_legs, imported_files, mail_messages
from tests.integration.pickup_support import (
    IMAP_PASSWORD,
    IMAP_USER,
    ImapTestServer,
    cdr_mail,
    export_bytes,
    free_port,
    zip_bomb,
    zipped,
)
from tests.integration.pipeline_support import TENANT, simulator, table_count

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
PBX = "pbx@acme.example"
SOURCE = "acme-mail"


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapTestServer]:
    server = ImapTestServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def legs() -> list[dict[str, str]]:
    sim: UcmSimulator = simulator(seed=37, calls_per_day=30, days=1)
    return sim.ground_truth()


@pytest.fixture
def folder(imap: ImapTestServer, request: pytest.FixtureRequest) -> str:
    """A folder of this test's own on the shared server."""
    name = "T" + request.node.name.split("_", 2)[-1][:40].replace("_", "-")
    imap.recreate(name)
    return name


def settings(imap: ImapTestServer, folder: str, **overrides: object) -> ImapSettings:
    base = ImapSettings(host="127.0.0.1", port=imap.port, user=IMAP_USER, password=IMAP_PASSWORD,
                        security="plain", folder=folder, senders=("@acme.example",),
                        rescan_days=0)  # fmt: skip
    return replace(base, **overrides)  # type: ignore[arg-type]


def run(imap: ImapTestServer, folder: str, engine: sa.Engine, **overrides: object) -> dict[str, object]:
    limits = overrides.pop("limits", Limits())
    target = ImportTarget(engine=engine, tenant=TENANT, limits=limits)  # type: ignore[arg-type]
    return pickup_imap(SOURCE, settings(imap, folder, **overrides), target, now=NOW).as_row()


def ledger(engine: sa.Engine) -> list[tuple[int, int, str]]:
    with engine.connect() as conn:
        query = sa.select(mail_messages.c.uidvalidity, mail_messages.c.uid, mail_messages.c.status)
        return sorted(tuple(row) for row in conn.execute(query))


def test_attachments_imported_once_and_a_rerun_looks_at_nothing(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    half = len(legs) // 2
    imap.append(folder, cdr_mail(PBX, {"day.csv": export_bytes(legs[:half], spool.parent),
                                       "notes.pdf": b"%PDF-1.4"}))  # fmt: skip
    imap.append(folder, cdr_mail("Reports <PBX@ACME.example>", {"more.zip": zipped(
        {"more.csv": export_bytes(legs[half:], spool.parent)})}, message_id=None))  # fmt: skip
    imap.append(folder, cdr_mail("someone@else.example", {"evil.csv": export_bytes(legs[:3], spool.parent)}))
    first = run(imap, folder, pg_engine)
    assert (first["seen"], first["imported"], first["skipped"], first["new_legs"]) == (3, 2, 1, len(legs))
    assert [status for *_, status in ledger(pg_engine)] == ["imported", "imported", "skipped"]
    # "UID n:*" also answers the newest message: the pickup must not take it for a new one.
    again = run(imap, folder, pg_engine)
    assert (again["seen"], again["imported"], again["duplicates"]) == (0, 0, 0)
    with imap.mailbox() as box:  # read-only pickup: nothing marked \Seen
        box.folder.set(folder)
        assert all("\\Seen" not in msg.flags for msg in box.fetch(mark_seen=False, headers_only=True))


def test_redelivered_message_adds_nothing_and_flag_marks_it(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    mail = cdr_mail(PBX, {"day.csv": export_bytes(legs, spool.parent)})
    imap.append(folder, mail)
    assert run(imap, folder, pg_engine, after="flag")["new_legs"] == len(legs)
    imap.append(folder, mail)  # the same report delivered twice: a new UID, the same content
    again = run(imap, folder, pg_engine, after="flag")
    assert (again["seen"], again["imported"], again["duplicates"], again["new_legs"]) == (1, 0, 1, 0)
    assert table_count(pg_engine, imported_files) == 1
    with imap.mailbox() as box:
        box.folder.set(folder)
        assert all("\\Seen" in msg.flags for msg in box.fetch(mark_seen=False, headers_only=True))


def test_uidvalidity_change_rescans_without_duplicates_or_misses(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    old = cdr_mail(PBX, {"old.csv": export_bytes(legs[:10], spool.parent)})
    imap.append(folder, old)
    imap.append(folder, cdr_mail(PBX, {"old2.csv": export_bytes(legs[10:20], spool.parent)}))
    assert run(imap, folder, pg_engine)["new_legs"] == 20
    imap.recreate(folder)  # restored mailbox: new UIDVALIDITY, UIDs start over
    imap.append(folder, old)
    imap.append(folder, cdr_mail(PBX, {"old2.csv": export_bytes(legs[10:20], spool.parent)}))
    imap.append(folder, cdr_mail(PBX, {"new.csv": export_bytes(legs[20:], spool.parent)}))
    report = run(imap, folder, pg_engine)
    # Old UIDs under the new UIDVALIDITY would hide the new message: the third one must be read.
    assert (report["seen"], report["duplicates"], report["imported"]) == (3, 2, 1)
    assert report["new_legs"] == len(legs) - 20 and table_count(pg_engine, cdr_legs) == len(legs)
    assert len({validity for validity, *_ in ledger(pg_engine)}) == 2


def test_crash_between_import_and_ledger_row_is_harmless(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import audiapro.pickup.imap as imap_module

    imap.append(folder, cdr_mail(PBX, {"day.csv": export_bytes(legs, spool.parent)}))
    real = imap_module.record_mail_message

    def crash(engine: sa.Engine, record: object, *, now: datetime) -> None:
        if getattr(record, "status", "") == "imported":
            raise ConnectionError("worker died")
        real(engine, record, now=now)  # type: ignore[arg-type]

    monkeypatch.setattr(imap_module, "record_mail_message", crash)
    with pytest.raises(ConnectionError):
        run(imap, folder, pg_engine, after="move", move_to="Done")
    monkeypatch.setattr(imap_module, "record_mail_message", real)
    assert ledger(pg_engine) == []  # the import committed, its ledger row did not
    rerun = run(imap, folder, pg_engine, after="move", move_to="Done")
    assert (rerun["imported"], rerun["duplicates"], rerun["new_legs"]) == (0, 1, 0)
    assert table_count(pg_engine, cdr_legs) == len(legs)
    with imap.mailbox() as box:  # moved only after its row was committed
        assert box.folder.status(folder)["MESSAGES"] == 0 and box.folder.status("Done")["MESSAGES"] >= 1


def test_zip_bomb_and_oversized_attachment_are_refused_with_a_reason(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path
) -> None:
    imap.append(folder, cdr_mail(PBX, {"bomb.zip": zip_bomb(8 << 20)}))
    imap.append(folder, cdr_mail(PBX, {"huge.csv": b"x" * (300 << 10)}))
    report = run(imap, folder, pg_engine, limits=Limits(max_file_bytes=200 << 10, max_unpacked_bytes=1 << 20))
    assert report["refused"] == 2 and report["imported"] == 0
    reasons = " ".join(f["detail"] for f in report["files"])  # type: ignore[attr-defined]
    assert "max_unpacked_bytes" in reasons and "max_file_bytes" in reasons
    assert [status for *_, status in ledger(pg_engine)] == ["refused", "refused"]
    assert run(imap, folder, pg_engine)["seen"] == 0  # refused for good


def test_wrong_password_unreachable_server_and_missing_folder(
    imap: ImapTestServer, folder: str, pg_engine: sa.Engine, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-" + IMAP_PASSWORD
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceAuthError) as denied:
        run(imap, folder, pg_engine, password=wrong)
    assert "check the user and password" in str(denied.value)
    with pytest.raises(SourceUnreachable, match="check the host name, the port"):
        run(imap, folder, pg_engine, port=free_port())
    with pytest.raises(SourceConfigError, match="no folder 'Nope'"):
        run(imap, "Nope", pg_engine)
    with pytest.raises(SourceConfigError, match="unencrypted"):
        run(imap, folder, pg_engine, host="mail.example.com")
    for text in (str(denied.value), caplog.text):
        assert wrong not in text and IMAP_PASSWORD not in text
