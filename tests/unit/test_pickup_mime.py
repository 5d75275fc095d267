"""Attachments decoded from a message file line by line, as the IMAP pickup streams them."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from audiapro.pickup.mime import extract_attachments

CSV = 'Unique ID,Start Time,Caller Name\r\n1,2026-03-02 09:00:00,Zoë = "ann"\r\n2,2026-03-02 09:01:00,x\r\n'
ZIP = b"PK\x03\x04" + os.urandom(5000)


def message_file(tmp_path: Path, message: EmailMessage) -> Path:
    path = tmp_path / "message.eml"
    path.write_bytes(message.as_bytes(policy=SMTP))  # CRLF line ends, as IMAP servers send them
    return path


def extract(path: Path, tmp_path: Path, cap: int = 1 << 20) -> dict[str, bytes]:
    result = extract_attachments(path, lambda name: not name.endswith(".pdf"), tmp_path / "out", cap)
    assert not result.refused, result.refused
    return {p.name: p.read_bytes() for p in result.saved}


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
def test_text_attachments_in_every_transfer_encoding(tmp_path: Path, cte: str) -> None:
    message = EmailMessage()
    message["From"] = "pbx@acme.example"
    message.set_content("report attached")
    message.add_attachment(CSV.encode(), maintype="text", subtype="csv", filename="day.csv", cte=cte)
    assert extract(message_file(tmp_path, message), tmp_path) == {"day.csv": CSV.encode()}


def test_nested_multiparts_several_attachments_and_parts_not_wanted(tmp_path: Path) -> None:
    message = EmailMessage()
    message.set_content("plain")
    message.add_alternative("<p>html</p>", subtype="html")  # multipart/alternative inside mixed
    message.add_attachment(ZIP, maintype="application", subtype="zip", filename="cdr.zip")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="notes.pdf")
    message.add_attachment(CSV.encode(), maintype="text", subtype="csv", filename="../../ev il.csv")
    assert extract(message_file(tmp_path, message), tmp_path) == {"cdr.zip": ZIP, "ev il.csv": CSV.encode()}


def test_a_message_that_is_only_an_attachment(tmp_path: Path) -> None:
    message = EmailMessage()
    message.set_content(
        ZIP, maintype="application", subtype="zip", disposition="attachment", filename="a.zip"
    )
    assert extract(message_file(tmp_path, message), tmp_path) == {"a.zip": ZIP}


def test_an_attachment_over_the_cap_is_refused_and_the_next_one_still_saved(tmp_path: Path) -> None:
    message = EmailMessage()
    message.set_content("two")
    message.add_attachment(os.urandom(4000), maintype="application", subtype="zip", filename="big.zip")
    message.add_attachment(CSV.encode(), maintype="text", subtype="csv", filename="small.csv")
    result = extract_attachments(message_file(tmp_path, message), lambda name: True, tmp_path / "out", 1000)
    assert [p.name for p in result.saved] == ["small.csv"]
    assert result.refused[0][0] == "big.zip" and "max_file_bytes" in result.refused[0][1]
    assert [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] == ["small.csv"]
