"""Fetched files: archives opened as streams under caps, safe names, and the source blocks' names."""

from __future__ import annotations

import gzip
from collections.abc import Generator
from pathlib import Path

import pytest
from pydantic import SecretStr

from audiapro import prefect_names as names
from audiapro.pickup.core import ServerLogin
from audiapro.pickup.errors import FileRefused
from audiapro.pickup.files import Limits, cdr_files, safe_name, save_bytes
from audiapro.pickup.imap import ImapSettings
from audiapro.pickup.sftp import SftpSettings
from tests.integration.pickup_support import zipped

CSV = b"Unique ID,Start Time\n1,2026-03-02 09:00:00\n"


def test_a_plain_file_is_itself_and_a_gzip_is_unpacked_then_removed(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_bytes(CSV)
    assert list(cdr_files(plain, Limits())) == [plain]
    packed = tmp_path / "b.csv.gz"
    packed.write_bytes(gzip.compress(CSV))
    files = cdr_files(packed, Limits())
    assert isinstance(files, Generator)
    unpacked = next(files)
    assert unpacked.name == "b.csv" and unpacked.read_bytes() == CSV
    files.close()
    assert not unpacked.exists()  # one member on disk at a time, gone once the caller moved on


def test_gzip_bomb_stops_at_the_cap_while_streaming(tmp_path: Path) -> None:
    # gzip declares no trustworthy size: only counting while unpacking can stop it.
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"0" * (4 << 20)))
    with pytest.raises(FileRefused, match="max_unpacked_bytes"):
        list(cdr_files(bomb, Limits(max_unpacked_bytes=1 << 20)))
    assert [p.name for p in tmp_path.rglob("*")] == ["bomb.csv.gz", "unpacked"]


def test_zip_caps_members_and_names(tmp_path: Path) -> None:
    many = tmp_path / "many.zip"
    many.write_bytes(zipped({f"{i}.csv": CSV for i in range(5)}))
    with pytest.raises(FileRefused, match="5 files in the archive, more than the cap of 4"):
        list(cdr_files(many, Limits(max_members=4)))
    nothing = tmp_path / "nothing.zip"
    nothing.write_bytes(zipped({"readme.txt": b"hi"}))
    with pytest.raises(FileRefused, match=r"no \.csv or \.json file"):
        list(cdr_files(nothing, Limits()))
    sneaky = tmp_path / "sneaky.zip"
    sneaky.write_bytes(zipped({"../../etc/cdr.csv": CSV, "sneaky.zip": b"not me"}))
    (member,) = list(path.name for path in cdr_files(sneaky, Limits()))
    assert member == "cdr.csv" and sneaky.read_bytes()[:2] == b"PK"  # written inside the slot only
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(FileRefused, match="not a readable zip archive"):
        list(cdr_files(broken, Limits()))


def test_attachment_over_the_file_cap_is_refused_and_not_kept(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="max_file_bytes"):
        save_bytes(b"x" * 2048, tmp_path / "big.csv", Limits(max_file_bytes=1024), "attachment big.csv")
    assert (
        save_bytes(CSV, tmp_path / "ok.csv", Limits(), "ok") == __import__("hashlib").sha256(CSV).hexdigest()
    )


SAFE_NAMES = [("../../x.csv", "x.csv"), ("a\\b\\c.csv", "c.csv"), ("..", "file"), ("", "file"),
              ("report 1.csv", "report 1.csv")]  # fmt: skip


@pytest.mark.parametrize(("given", "safe"), SAFE_NAMES)
def test_safe_name(given: str, safe: str) -> None:
    assert safe_name(given) == safe


def test_source_blocks_use_the_names_in_prefect_names() -> None:
    from blocks.pickup import ImapSource, SftpSource

    assert SftpSource.get_block_type_slug() == names.SFTP_SOURCE_BLOCK_TYPE
    assert ImapSource.get_block_type_slug() == names.IMAP_SOURCE_BLOCK_TYPE
    block = SftpSource(
        tenant="acme", host="h", user="u", host_key="k", password=SecretStr("pw"), max_file_mb=2
    )
    assert block.limits().max_file_bytes == 2 << 20 and "pw" not in repr(block.settings())


def test_both_sources_name_their_server_one_way_without_the_secret() -> None:
    sources = [
        SftpSettings(host="sftp.example", user="pbx", password="s3cret-pw", host_key="ssh-ed25519 AAAA"),
        ImapSettings(host="mail.example", user="cdr", password="s3cret-pw", port=143, security="starttls"),
    ]
    assert all(isinstance(source, ServerLogin) for source in sources)
    assert [source.where for source in sources] == ["pbx@sftp.example:22", "cdr@mail.example:143"]
    assert all("s3cret" not in source.where + repr(source) for source in sources)
