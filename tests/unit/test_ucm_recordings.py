"""getRecordInfosByCall and recapi downloads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiapro.ucm.errors import (
    UcmApiError,
    UcmConfigError,
    UcmRecordingError,
    UcmRecordingNotFound,
    UcmWrongPasswordError,
)
from tests.unit.fakepbx_support import FakePbx, make_client, wav_bytes

NAME = "auto-1741079737#203-07700900123-6400.wav"
RECORDFILE = f"2025-03/{NAME}@"


def test_record_infos_comma_separated() -> None:
    pbx = FakePbx()
    pbx.record_infos["1202"] = "2025-03/a.wav,2025-03/b.wav@"
    client, _ = make_client(pbx)
    assert client.record_infos("1202") == ["2025-03/a.wav", "2025-03/b.wav"]
    assert pbx.requests[-1]["id"] == "1202"


def test_record_infos_none_is_empty_list() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx)
    assert client.record_infos("999") == []


def test_record_infos_other_errors_raise() -> None:
    pbx = FakePbx()
    pbx.script("getRecordInfosByCall", {"status": -16})
    client, _ = make_client(pbx)
    with pytest.raises(UcmApiError):
        client.record_infos("1")
    with pytest.raises(UcmConfigError):
        client.record_infos(" ")


def test_download_monitor_basename_only(tmp_path: Path) -> None:
    pbx = FakePbx()
    data = wav_bytes()
    pbx.recordings[("monitor", NAME)] = data
    client, _ = make_client(pbx)
    path = client.download_recording(RECORDFILE, tmp_path / "rec")
    assert path == tmp_path / "rec" / NAME and path.read_bytes() == data
    req = pbx.requests[-1]
    assert (req["action"], req["filedir"], req["filename"]) == ("recapi", "monitor", NAME)
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


@pytest.mark.parametrize(
    ("action_type", "stored_in", "asked"),
    [
        pytest.param(
            "QUEUE[6500]", "monitor", ["queue", "monitor"], id="queue-call-queue-first-then-fallback"
        ),
        pytest.param("DIAL", "queue", ["monitor", "queue"], id="other-call-monitor-first-then-fallback"),
    ],
)
def test_recording_directories_tried_in_order_of_the_call_type(
    tmp_path: Path, action_type: str, stored_in: str, asked: list[str]
) -> None:
    pbx = FakePbx()
    pbx.recordings[(stored_in, NAME)] = wav_bytes()
    client, _ = make_client(pbx)
    client.download_recording(RECORDFILE, tmp_path, action_type=action_type)
    assert [r["filedir"] for r in pbx.requests if r["action"] == "recapi"] == asked


def test_not_found_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pbx = FakePbx()
    pbx.script("recapi", {"status": -16}, httpx.Response(404))
    client, _ = make_client(pbx)
    with pytest.raises(UcmRecordingNotFound) as info:
        client.download_recording(RECORDFILE, tmp_path)
    assert "monitor: status -16" in str(info.value) and "queue: HTTP 404" in str(info.value)
    assert "07700900123" not in str(info.value) and "07700900123" not in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_json_body_with_audio_content_type_is_error(tmp_path: Path) -> None:
    pbx = FakePbx()
    body = b'  {"status": -25, "response": {}}'
    pbx.script("recapi", *[httpx.Response(200, content=body, headers={"Content-Type": "audio/x-wav"})] * 2)
    client, _ = make_client(pbx)
    with pytest.raises(UcmRecordingNotFound, match="status -25"):
        client.download_recording(RECORDFILE, tmp_path)


def test_non_riff_body_rejected_and_cleaned(tmp_path: Path) -> None:
    pbx = FakePbx()
    pbx.script(
        "recapi", httpx.Response(200, content=b"GSFF" + b"\0" * 100, headers={"Content-Type": "audio/x-wav"})
    )
    client, _ = make_client(pbx)
    with pytest.raises(UcmRecordingError, match="RIFF"):
        client.download_recording(RECORDFILE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_session_expiry_during_download(tmp_path: Path) -> None:
    pbx = FakePbx()
    pbx.recordings[("monitor", NAME)] = wav_bytes()
    client, _ = make_client(pbx)
    client.login()
    pbx.expire_sessions()
    assert client.download_recording(RECORDFILE, tmp_path).exists()
    assert pbx.count("login") == 2


def test_auth_errors_not_swallowed_by_fallback(tmp_path: Path) -> None:
    pbx = FakePbx(password="wrong")
    client, _ = make_client(pbx)
    with pytest.raises(UcmWrongPasswordError):
        client.download_recording(RECORDFILE, tmp_path)
    assert pbx.count("login") == 1


def test_stream_failure_retried_without_partial_file(tmp_path: Path) -> None:
    pbx = FakePbx()
    data = wav_bytes(b"\x01" * 5000)

    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            yield data[:100]
            raise httpx.ReadError("connection reset")

    pbx.script("recapi", httpx.Response(200, stream=Broken(), headers={"Content-Type": "audio/x-wav"}))
    pbx.recordings[("monitor", NAME)] = data
    client, sleeps = make_client(pbx)
    path = client.download_recording(RECORDFILE, tmp_path)
    assert path.read_bytes() == data and len(sleeps) == 1
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("bad", ["", "2025-03/", "../x.wav@..", "a.wav@b.wav@"])
def test_unsafe_names_rejected(tmp_path: Path, bad: str) -> None:
    client, _ = make_client(FakePbx())
    with pytest.raises(UcmConfigError):
        client.download_recording(bad, tmp_path)
