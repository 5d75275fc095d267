"""Sanity tests of the fake PBX the other ``test_ucm_*`` modules use (``fakepbx_support.py``)."""

from __future__ import annotations

from tests.unit.fakepbx_support import FakePbx, flat_leg, make_client, wav_bytes


def test_fake_pbx_happy_path() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(1)]
    client, _ = make_client(pbx)
    reply = client.call("cdrapi", {"offset": "0", "numRecords": "10"})
    assert reply["cdr_root"][0]["AcctId"] == "1"
    assert pbx.actions() == ["challenge", "login", "cdrapi"]


def test_wav_helper_is_riff() -> None:
    data = wav_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
