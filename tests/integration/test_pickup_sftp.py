"""SFTP pickup against asyncssh's real SFTP server on loopback: exactly once, readiness, host keys."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiapro.pickup.core import ImportTarget
from audiapro.pickup.errors import HostKeyMismatch, SourceAuthError, SourceUnreachable
from audiapro.pickup.files import Limits
from audiapro.pickup.sftp import SftpSettings, pickup_sftp
from audiapro.ucm.simulator import UcmSimulator
from audiapro.warehouse import FILE_DONE, FILE_IMPORTED, cdr_legs, imported_files, sftp_files
from tests.integration.pickup_support import (
    SFTP_PASSWORD,
    SFTP_USER,
    SftpTestServer,
    export_bytes,
    free_port,
    sftp_server,
    zip_bomb,
    zipped,
)
from tests.integration.pipeline_support import TENANT, simulator, table_count

T0 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
SETTLE = 60
SOURCE = "acme-drop"
MTIME = int(datetime(2026, 3, 4, 8, 0, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def legs() -> list[dict[str, str]]:
    sim: UcmSimulator = simulator(seed=31, calls_per_day=40, days=1)
    return sim.ground_truth()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SftpTestServer]:
    root = tmp_path / "sftp-root"
    (root / "drop").mkdir(parents=True)
    with sftp_server(root) as running:
        yield running


def settings(server: SftpTestServer, **overrides: object) -> SftpSettings:
    base = SftpSettings(host="127.0.0.1", port=server.port, user=SFTP_USER, password=SFTP_PASSWORD,
                        host_key=server.host_key_line, directory="/drop", pattern="*.csv",
                        settle_seconds=SETTLE)  # fmt: skip
    return replace(base, **overrides)  # type: ignore[arg-type]


def put(server: SftpTestServer, name: str, data: bytes, mtime: int = MTIME) -> Path:
    path = server.root / "drop" / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def run(server: SftpTestServer, engine: sa.Engine, now: datetime, **overrides: object) -> dict[str, object]:
    target = ImportTarget(engine=engine, tenant=TENANT, limits=overrides.pop("limits", Limits()))  # type: ignore[arg-type]
    return pickup_sftp(SOURCE, settings(server, **overrides), target, now=now).as_row()


def statuses(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sftp_files.c.remote_path, sftp_files.c.status).order_by(sftp_files.c.remote_path)
        )
        return [tuple(row) for row in rows]


def test_a_file_is_imported_once_it_settled_and_never_again(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    put(server, "cdr-1.csv", export_bytes(legs, spool.parent))
    first = run(server, pg_engine, T0)
    assert (first["seen"], first["waiting"], first["imported"]) == (1, 1, 0)  # just appeared: may grow
    assert table_count(pg_engine, cdr_legs) == 0
    too_soon = run(server, pg_engine, T0 + timedelta(seconds=SETTLE - 1))
    assert too_soon["waiting"] == 1 and table_count(pg_engine, cdr_legs) == 0
    settled = run(server, pg_engine, T0 + timedelta(seconds=SETTLE))
    assert (settled["imported"], settled["new_legs"]) == (1, len(legs))
    assert statuses(pg_engine) == [("/drop/cdr-1.csv", FILE_DONE)]
    again = run(server, pg_engine, T0 + timedelta(hours=1))
    assert (again["seen"], again["imported"], again["duplicates"]) == (0, 0, 0)  # not even fetched
    assert table_count(pg_engine, cdr_legs) == len(legs)
    assert not list((spool / "pickup" / SOURCE).iterdir())  # the spool is cleaned up


def test_partial_upload_waits_until_it_stops_changing(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    data = export_bytes(legs, spool.parent)
    put(server, "big.csv", data[: len(data) // 2], mtime=MTIME)
    assert run(server, pg_engine, T0)["waiting"] == 1
    put(server, "big.csv", data, mtime=MTIME + 30)  # the upload went on: new size and mtime
    grown = run(server, pg_engine, T0 + timedelta(seconds=SETTLE))
    assert (grown["waiting"], grown["imported"]) == (1, 0)  # its new (size, mtime) was only seen now
    done = run(server, pg_engine, T0 + timedelta(seconds=2 * SETTLE))
    assert (done["imported"], done["new_legs"], done["rejected_rows"]) == (1, len(legs), 0)


def test_done_marker_makes_a_file_ready_at_once_and_move_puts_both_into_done(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    put(server, "a.csv", export_bytes(legs, spool.parent))
    assert run(server, pg_engine, T0, done_marker=".done", post_action="move")["waiting"] == 1
    put(server, "a.csv.done", b"")
    report = run(server, pg_engine, T0, done_marker=".done", post_action="move")
    assert report["imported"] == 1
    assert sorted(p.name for p in (server.root / "drop" / "done").iterdir()) == ["a.csv", "a.csv.done"]
    assert not (server.root / "drop" / "a.csv").exists()


def test_same_content_under_another_name_and_a_modified_file(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    half = export_bytes(legs[: len(legs) // 2], spool.parent)
    put(server, "one.csv", half)
    put(server, "copy.csv", half)
    run(server, pg_engine, T0)
    report = run(server, pg_engine, T0 + timedelta(seconds=SETTLE))
    assert (report["imported"], report["duplicates"], report["new_legs"]) == (1, 1, len(legs) // 2)
    # one.csv rewritten with every leg: the new half is loaded, the old half adds nothing.
    put(server, "one.csv", export_bytes(legs, spool.parent), mtime=MTIME + 600)
    run(server, pg_engine, T0 + timedelta(minutes=5))
    changed = run(server, pg_engine, T0 + timedelta(minutes=5, seconds=SETTLE))
    assert changed["imported"] == 1 and changed["new_legs"] == len(legs) - len(legs) // 2
    assert changed["duplicate_legs"] == len(legs) // 2
    assert table_count(pg_engine, cdr_legs) == len(legs)


def test_crash_between_import_and_ledger_update_imports_nothing_twice(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import audiapro.pickup.sftp as sftp_module

    put(server, "c.csv", export_bytes(legs, spool.parent))
    run(server, pg_engine, T0, post_action="delete")
    real = sftp_module.set_sftp_file

    def crash(*args: object, **kwargs: object) -> None:
        if kwargs.get("status") == FILE_IMPORTED:
            raise ConnectionError("worker died")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sftp_module, "set_sftp_file", crash)
    with pytest.raises(ConnectionError):
        run(server, pg_engine, T0 + timedelta(seconds=SETTLE), post_action="delete")
    assert table_count(pg_engine, cdr_legs) == len(legs)
    assert (server.root / "drop" / "c.csv").exists()  # never deleted before the ledger knew
    monkeypatch.setattr(sftp_module, "set_sftp_file", real)
    rerun = run(server, pg_engine, T0 + timedelta(seconds=SETTLE + 1), post_action="delete")
    assert (rerun["imported"], rerun["duplicates"], rerun["new_legs"]) == (0, 1, 0)
    assert table_count(pg_engine, imported_files) == 1 and table_count(pg_engine, cdr_legs) == len(legs)
    assert not (server.root / "drop" / "c.csv").exists()


def test_zip_and_gzip_are_read_and_a_zip_bomb_is_refused(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, legs: list[dict[str, str]]
) -> None:
    import gzip

    put(server, "x.zip", zipped({"export/cdr.csv": export_bytes(legs[:10], spool.parent)}))
    put(server, "y.csv.gz", gzip.compress(export_bytes(legs[10:20], spool.parent)))
    put(server, "bomb.zip", zip_bomb(8 << 20))
    caps = Limits(max_unpacked_bytes=1 << 20)
    run(server, pg_engine, T0, pattern="*[zp]", limits=caps)
    report = run(server, pg_engine, T0 + timedelta(seconds=SETTLE), pattern="*[zp]", limits=caps)
    assert (report["imported"], report["new_legs"], report["refused"]) == (2, 20, 1)
    refusal = next(f for f in report["files"] if f["status"] == "refused")  # type: ignore[attr-defined]
    assert "bomb.zip" in refusal["detail"] and "max_unpacked_bytes" in refusal["detail"]
    assert not list((spool / "pickup" / SOURCE).rglob("*.csv"))  # nothing left on disk
    again = run(server, pg_engine, T0 + timedelta(hours=1), pattern="*[zp]", limits=caps)
    assert (again["seen"], again["refused"]) == (0, 0)  # refused for good, not fetched again


def test_private_key_login(server: SftpTestServer, pg_engine: sa.Engine, spool: Path,
                           legs: list[dict[str, str]]) -> None:  # fmt: skip
    put(server, "k.csv", export_bytes(legs[:5], spool.parent))
    report = run(server, pg_engine, T0, password="", private_key=server.client_key_text, settle_seconds=0)
    assert report["new_legs"] == 5


def test_wrong_host_key_is_refused_before_any_password_is_sent(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    with caplog.at_level(logging.DEBUG), pytest.raises(HostKeyMismatch) as refused:
        run(server, pg_engine, T0, host_key=other)
    assert "not the pinned one" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(HostKeyMismatch, match="no host key pinned"):
        run(server, pg_engine, T0, host_key="")
    assert SFTP_PASSWORD not in caplog.text and SFTP_PASSWORD not in str(refused.value)


def test_wrong_password_and_unreachable_server_fail_fast_without_the_secret(
    server: SftpTestServer, pg_engine: sa.Engine, spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceAuthError) as denied:
        run(server, pg_engine, T0, password="not-the-" + SFTP_PASSWORD)
    assert "check the user and its password" in str(denied.value)
    with pytest.raises(SourceUnreachable) as unreachable:
        run(server, pg_engine, T0, port=free_port(), connect_timeout_s=5)
    assert "check the host name, the port" in str(unreachable.value)
    for text in (str(denied.value), str(unreachable.value), caplog.text):
        assert SFTP_PASSWORD not in text
