"""Recording decoding, stereo detection, split/downmix, resampling and chunking."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from audiapro.analysis.audio import (
    AudioFormatError,
    AudioLimits,
    content_sha256,
    decode_wav,
    inspect,
    prepare,
    read_wav,
    resample,
)
from audiapro.analysis.models import SpeakerRole
from audiapro.analysis.speech import VadSettings
from tests.unit.analysis_support import (
    PBX_RATE,
    duplicated_mono_call,
    gated,
    make_wav,
    stereo_call,
    tone,
)

#: Whole tracks, as before silence trimming (trimming is covered in test_analysis_speech.py).
UNTRIMMED = AudioLimits(vad=VadSettings(enabled=False))


def dominant_hz(wav_bytes: bytes) -> float:
    audio = read_wav(wav_bytes)
    spectrum = np.abs(np.fft.rfft(audio.samples[:, 0]))
    return float(np.fft.rfftfreq(audio.samples.shape[0], 1 / audio.sample_rate)[np.argmax(spectrum)])


def wav_header(data: bytes) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(data)) as reader:
        return reader.getnchannels(), reader.getframerate(), reader.getsampwidth()


def test_true_stereo_is_detected_and_split_into_caller_and_agent() -> None:
    info = inspect(stereo_call(20.0))
    assert (info.channels, info.sample_rate, info.seconds) == (2, PBX_RATE, 20.0)
    assert info.is_stereo and not info.is_silent
    assert info.channel_speech_seconds == pytest.approx((10.0, 10.0), abs=0.05)

    parts = prepare(stereo_call(20.0), UNTRIMMED)
    assert [(p.index, p.role) for p in parts] == [(0, SpeakerRole.caller), (0, SpeakerRole.agent)]
    caller, agent = parts
    assert dominant_hz(caller.wav) == pytest.approx(440, abs=2)  # left channel
    assert dominant_hz(agent.wav) == pytest.approx(660, abs=2)  # right channel
    assert all(wav_header(p.wav) == (1, 16_000, 2) for p in parts)
    assert all(p.seconds == pytest.approx(20.0) and not p.is_silent for p in parts)


def test_duplicated_mono_counts_as_mono_even_with_a_gain_difference() -> None:
    assert not inspect(duplicated_mono_call()).is_stereo
    mixed = tone(10.0, 440.0)
    assert not inspect(make_wav(mixed, 0.5 * mixed)).is_stereo  # same signal, quieter copy
    parts = prepare(duplicated_mono_call(20.0))
    assert [(p.index, p.role) for p in parts] == [(0, SpeakerRole.unknown)]
    assert wav_header(parts[0].wav) == (1, 16_000, 2)


def test_a_silent_channel_makes_mono_and_is_left_out_of_the_downmix() -> None:
    voice = tone(10.0, 440.0)
    info = inspect(make_wav(voice, np.zeros_like(voice)))
    assert not info.is_stereo and info.channel_energy[1] == -120.0
    (part,) = prepare(make_wav(voice, np.zeros_like(voice)))
    # Level is kept: the silent channel did not halve the mix.
    peak = np.abs(read_wav(part.wav).samples).max()
    assert peak == pytest.approx(0.3, abs=0.01)


def test_silence_is_reported_and_flagged_on_parts() -> None:
    silent = make_wav(np.zeros(PBX_RATE * 5))
    assert inspect(silent).is_silent
    assert all(p.is_silent for p in prepare(silent))
    # Line noise below the speech threshold is silence too.
    noise = np.random.default_rng(1).normal(0, 10 ** (-70 / 20), PBX_RATE * 5)
    assert inspect(make_wav(noise)).is_silent


def test_resampling_keeps_duration_and_pitch() -> None:
    signal = tone(2.0, 440.0).astype(np.float32)
    up = resample(signal, 8000, 16_000)
    assert up.size == 32_000
    down = resample(tone(2.0, 440.0, rate=48_000).astype(np.float32), 48_000, 16_000)
    assert down.size == 32_000
    for samples in (up, down):
        spectrum = np.abs(np.fft.rfft(samples))
        assert np.fft.rfftfreq(samples.size, 1 / 16_000)[np.argmax(spectrum)] == pytest.approx(440, abs=1)
    # Downsampling first filters out what 16 kHz cannot hold: a 9 kHz tone must not alias back.
    high = resample(tone(1.0, 9000.0, rate=48_000).astype(np.float32), 48_000, 16_000)
    assert np.abs(high[100:-100]).max() < 0.05  # the filter edges see zero padding


def test_long_recordings_are_chunked_at_quiet_moments_within_the_limits() -> None:
    seconds = 130.0
    speech = [(0.0, 42.0), (44.0, 86.0), (88.0, 130.0)]  # pauses at 42-44 s and 86-88 s
    left = gated(tone(seconds, 440.0), PBX_RATE, speech)
    right = gated(tone(seconds, 660.0), PBX_RATE, [(s + 0.5, e) for s, e in speech])
    limits = UNTRIMMED.model_copy(update={"max_part_seconds": 50.0, "split_search_seconds": 10.0})
    parts = prepare(make_wav(left, right), limits)
    assert [p.index for p in parts] == [0, 0, 1, 1, 2, 2]
    caller = [p for p in parts if p.role is SpeakerRole.caller]
    agent = [p for p in parts if p.role is SpeakerRole.agent]
    # Both roles share the cut times, chunks are contiguous and cover the whole call.
    assert [(p.start_s, p.end_s) for p in caller] == [(p.start_s, p.end_s) for p in agent]
    assert caller[0].start_s == 0.0 and caller[-1].end_s == pytest.approx(seconds)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(caller))
    assert all(p.seconds <= 50.0 for p in parts)
    # Cuts fall inside the pauses, not in the middle of speech.
    assert 42.0 <= caller[0].end_s <= 44.0 and 86.0 <= caller[1].end_s <= 88.0


def test_byte_limit_also_bounds_parts() -> None:
    max_bytes = 10 * 16_000 * 2 + 44  # 10 s at 16 kHz mono 16-bit
    parts = prepare(
        make_wav(tone(25.0, 440.0)), AudioLimits(max_part_bytes=max_bytes, split_search_seconds=1.0)
    )
    assert len(parts) == 3
    assert all(len(p.wav) <= max_bytes for p in parts)
    assert sum(p.seconds for p in parts) == pytest.approx(25.0)


def test_target_rate_none_keeps_the_recording_rate() -> None:
    (part,) = prepare(make_wav(tone(3.0, 440.0)), AudioLimits(target_rate=None))
    assert wav_header(part.wav) == (1, PBX_RATE, 2)


def test_8_bit_pcm_and_files_on_disk(tmp_path: Path) -> None:
    data = make_wav(tone(1.0, 440.0), sampwidth=1)
    path = tmp_path / "call.wav"
    path.write_bytes(data)
    audio = read_wav(path)
    assert audio.channels == 1 and audio.sample_rate == PBX_RATE
    assert np.abs(audio.samples).max() == pytest.approx(0.3, abs=0.02)
    assert inspect(str(path)) == inspect(data)


def riff_wav(codes: bytes, tag: int, bits: int = 8) -> bytes:
    """A one-channel WAV with any format tag (stdlib `wave` only writes PCM)."""
    align = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, PBX_RATE, PBX_RATE * align, align, bits)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(codes))
        + codes
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_g711_mulaw_and_alaw_decode() -> None:
    mulaw = decode_wav(riff_wav(bytes([0xFF, 0x7F, 0x00, 0x80]), 7)).samples[:, 0] * 32768
    assert list(mulaw) == [0, 0, -32124, 32124]
    alaw = decode_wav(riff_wav(bytes([0xD5, 0x55, 0xAA, 0x2A]), 6)).samples[:, 0] * 32768
    assert list(alaw) == [8, -8, 32256, -32256]


def test_undecodable_input_is_an_audio_format_error() -> None:
    with pytest.raises(AudioFormatError):
        inspect(b"ID3 this is an mp3")
    with pytest.raises(AudioFormatError, match="unsupported"):
        decode_wav(riff_wav(b"\x00" * 8, 3, bits=32))  # IEEE float


def test_content_hash_is_the_sha256_of_the_original_bytes() -> None:
    data = stereo_call(2.0)
    assert content_sha256(data) == hashlib.sha256(data).hexdigest()
    assert content_sha256(data) != content_sha256(duplicated_mono_call(2.0))
