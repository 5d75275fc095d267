"""UCM simulator recordings: getRecordInfosByCall, recapi WAVs, monitor vs queue, stereo."""

from __future__ import annotations

import io
import wave
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from audiapro.ucm.simulator import UcmSimulator
from tests.unit.simulator_support import Session, simulator


def make_sim(**overrides: Any) -> UcmSimulator:
    """One day of calls (``overrides`` change any setting)."""
    return simulator(**{"seed": 21, "calls_per_day": 150, "days": 1, **overrides})


@pytest.fixture(scope="module")
def sim() -> UcmSimulator:
    return make_sim()


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1].rstrip("@")


def read_wav(data: bytes) -> tuple[Any, np.ndarray]:
    with wave.open(io.BytesIO(data)) as w:
        params = w.getparams()
        frames = np.frombuffer(w.readframes(params.nframes), dtype="<i2")
    return params, frames


def test_record_infos_lists_the_legs_files(sim: UcmSimulator, session: Session) -> None:
    legs = sim.ground_truth()
    recorded = next(leg for leg in legs if leg["recordfiles"])
    reply = session.post(action="getRecordInfosByCall", id=recorded["AcctId"])
    assert reply["status"] == 0
    expected = [name for name in recorded["recordfiles"].split("@") if name]
    assert reply["response"]["recordfiles"].split(",") == expected
    assert session.post(action="getRecordInfosByCall", id=int(recorded["AcctId"]))["status"] == 0

    unrecorded = next(leg for leg in legs if not leg["recordfiles"])
    assert session.post(action="getRecordInfosByCall", id=unrecorded["AcctId"])["status"] == -15
    assert session.post(action="getRecordInfosByCall", id="999999999")["status"] == -15


def test_recapi_returns_a_valid_wav(sim: UcmSimulator, session: Session) -> None:
    leg = next(
        x
        for x in sim.ground_truth()
        if x["recordfiles"] and "QUEUE" not in x["action_type"] and x["billsec"] != "0"
    )
    name = basename(leg["recordfiles"].split("@")[0])
    reply = session.raw(action="recapi", filedir="monitor", filename=name)
    assert reply.headers["content-type"] == "audio/x-wav"
    assert reply.content[:4] == b"RIFF" and reply.content[8:12] == b"WAVE"
    params, frames = read_wav(reply.content)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    talk = int(leg["recordfiles_desc"].split("duration=")[1].split(",")[0])
    assert params.nframes == 8000 * max(1, min(talk, 20))
    assert np.abs(frames).max() > 1000  # not silence
    # Deterministic: the same name gives the same bytes; the trailing "@" is tolerated.
    assert session.raw(action="recapi", filedir="monitor", filename=name + "@").content == reply.content


def test_recapi_not_found_is_json(sim: UcmSimulator, session: Session) -> None:
    leg = next(x for x in sim.ground_truth() if x["recordfiles"])
    path = leg["recordfiles"].split("@")[0]
    for filename in (path, "auto-1772460000-1000-1001.wav", "nothing.wav"):  # full path = not found
        reply = session.raw(action="recapi", filedir="monitor", filename=filename)
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.json() == {"status": -16}


def test_queue_recordings_live_under_queue(sim: UcmSimulator, session: Session) -> None:
    legs = sim.ground_truth()
    queue_leg = next(x for x in legs if x["recordfiles"] and x["action_type"].startswith("QUEUE"))
    name = basename(queue_leg["recordfiles"].split("@")[0])
    assert session.raw(action="recapi", filedir="monitor", filename=name).json()["status"] == -16
    assert session.raw(action="recapi", filedir="queue", filename=name).content[:4] == b"RIFF"
    monitor_leg = next(x for x in legs if x["recordfiles"] and not x["action_type"].startswith("QUEUE"))
    other = basename(monitor_leg["recordfiles"].split("@")[0])
    assert session.raw(action="recapi", filedir="queue", filename=other).json()["status"] == -16


def test_recordings_of_unfinished_legs_are_not_served() -> None:
    sim = make_sim()
    leg = next(x for x in sim.ground_truth() if x["recordfiles"] and "QUEUE" not in x["action_type"])
    name = basename(leg["recordfiles"].split("@")[0])
    sim.clock.set(datetime(2026, 3, 2, 0, 0, tzinfo=ZoneInfo("America/New_York")))  # before every call
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        s = Session(client)
        assert s.raw(action="recapi", filedir="monitor", filename=name).json()["status"] == -16
        assert s.post(action="getRecordInfosByCall", id=leg["AcctId"])["status"] == -15


def test_stereo_recordings_put_speakers_on_separate_channels() -> None:
    sim = make_sim(
        stereo_recordings=True, recording_max_seconds=12, recording_content_type="application/octet-stream"
    )
    leg = next(
        x
        for x in sim.ground_truth()
        if x["recordfiles"] and int(x["billsec"]) >= 12 and "QUEUE" not in x["action_type"]
    )
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        reply = Session(client).raw(action="recapi", filedir="monitor", filename=basename(leg["recordfiles"]))
    assert reply.headers["content-type"] == "application/octet-stream"
    params, frames = read_wav(reply.content)
    assert params.nchannels == 2 and params.nframes == 12 * 8000
    left, right = frames[0::2].astype(float), frames[1::2].astype(float)
    # Frame-wise energy (100 ms): each side talks in turns, rarely at the same time.
    window = 800
    left_energy = (left[: len(left) // window * window].reshape(-1, window) ** 2).mean(axis=1)
    right_energy = (right[: len(right) // window * window].reshape(-1, window) ** 2).mean(axis=1)
    loud = 1e5
    left_active, right_active = left_energy > loud, right_energy > loud
    assert left_active.sum() >= 10 and right_active.sum() >= 10
    assert (left_active & right_active).sum() <= 0.1 * min(left_active.sum(), right_active.sum())

    # Different voices: the dominant pitch differs between the channels.
    def pitch(signal: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(signal))
        freqs = np.fft.rfftfreq(len(signal), 1 / 8000)
        band = (freqs > 80) & (freqs < 300)
        return float(freqs[band][spectrum[band].argmax()])

    assert abs(pitch(left) - pitch(right)) > 40
