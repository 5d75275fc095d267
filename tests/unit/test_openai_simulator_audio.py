"""OpenAI simulator: `/v1/audio/transcriptions` through the real `openai` client."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import openai
import pytest

from audiapro.analysis.openai_simulator import OpenAISimulator
from audiapro.analysis.openai_simulator.audio import inspect_audio
from tests.unit.openai_simulator_support import make_wav, running

pytestmark = pytest.mark.timeout(60)

WORDS_PER_SECOND = 2.5


@pytest.fixture
def served() -> Iterator[tuple[OpenAISimulator, openai.OpenAI]]:
    with running(seed=7, max_audio_bytes=400_000) as pair:
        yield pair


def test_mono_transcription_is_deterministic_and_bills_duration(
    served: tuple[OpenAISimulator, openai.OpenAI],
) -> None:
    sim, client = served
    audio = make_wav(6.0)
    first = client.audio.transcriptions.create(file=("call.wav", audio, "audio/wav"), model="gpt-transcribe")
    second = client.audio.transcriptions.create(file=("call.wav", audio, "audio/wav"), model="gpt-transcribe")

    assert first.text and first.text == second.text
    assert first.usage is not None and first.usage.type == "duration"
    assert first.usage.seconds == pytest.approx(6.0)
    # Length is proportional to the duration (about 2.5 words per second).
    assert len(first.text.split()) == pytest.approx(6.0 * WORDS_PER_SECOND, abs=2)
    assert [lang.code for lang in first.languages or []] == ["en"]

    stats = sim.stats
    assert stats.requests["POST /v1/audio/transcriptions"] == 2
    assert stats.usage_by_model["gpt-transcribe"].audio_seconds == pytest.approx(12.0)
    assert stats.usage_by_model["gpt-transcribe"].cost_usd == pytest.approx(12 / 60 * 0.0045)
    # The same request billed twice is visible as a duplicate fingerprint.
    assert len(stats.billed) == 2 and stats.duplicate_fingerprints() == [stats.billed[0].fingerprint]


def test_different_audio_gives_different_text(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    texts = {
        client.audio.transcriptions.create(
            file=("c.wav", make_wav(4.0 + i), "audio/wav"), model="whisper-1"
        ).text
        for i in range(3)
    }
    assert len(texts) == 3


def test_stereo_diarized_json_uses_the_talking_channel_as_speaker(
    served: tuple[OpenAISimulator, openai.OpenAI],
) -> None:
    sim, client = served
    audio = make_wav(8.0, channels=2, channel_schedule=[0, 1])
    result = client.audio.transcriptions.create(
        file=("call.wav", audio, "audio/wav"),
        model="gpt-4o-transcribe-diarize",
        response_format="diarized_json",
        known_speaker_names=["agent", "caller"],
        known_speaker_references=["data:audio/wav;base64,AAAA", "data:audio/wav;base64,AAAA"],
    )
    assert result.duration == pytest.approx(8.0)
    assert [s.speaker for s in result.segments] == ["agent", "caller"]
    assert result.segments[0].start == 0.0 and result.segments[-1].end == pytest.approx(8.0)
    assert result.text == " ".join(s.text for s in result.segments)
    # The gpt-4o family is token-billed: the usage variant says so.
    assert result.usage is not None and result.usage.type == "tokens"
    assert sim.stats.usage_by_model["gpt-4o-transcribe-diarize"].audio_seconds == pytest.approx(8.0)


def test_silence_gives_empty_text_but_is_still_billed(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    result = client.audio.transcriptions.create(
        file=("silent.wav", make_wav(3.0, silent=True), "audio/wav"), model="gpt-transcribe"
    )
    assert result.text == ""
    assert result.languages == []
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 3.0
    assert sim.stats.audio_seconds == pytest.approx(3.0)


def test_whisper_text_formats(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    audio = make_wav(5.0)
    plain = client.audio.transcriptions.create(
        file=("c.wav", audio, "audio/wav"), model="whisper-1", response_format="text"
    )
    srt = client.audio.transcriptions.create(
        file=("c.wav", audio, "audio/wav"), model="whisper-1", response_format="srt"
    )
    vtt = client.audio.transcriptions.create(
        file=("c.wav", audio, "audio/wav"), model="whisper-1", response_format="vtt"
    )
    verbose = client.audio.transcriptions.create(
        file=("c.wav", audio, "audio/wav"),
        model="whisper-1",
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert isinstance(plain, str) and plain.strip() == verbose.text
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert verbose.duration == pytest.approx(5.0) and verbose.language == "english"
    assert verbose.words and [w.word for w in verbose.words] == verbose.text.split()
    assert verbose.segments and verbose.segments[0].text.strip() in verbose.text


def test_logprobs_on_gpt_4o_transcribe(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    _, client = served
    result = client.audio.transcriptions.create(
        file=("c.wav", make_wav(3.0), "audio/wav"), model="gpt-4o-transcribe", include=["logprobs"]
    )
    assert result.logprobs and [lp.token for lp in result.logprobs] == result.text.split()


@pytest.mark.parametrize(
    ("kwargs", "status", "param"),
    [
        ({"model": "gpt-6-luna"}, 400, "model"),
        ({"model": "gpt-transcribe", "file": ("notes.txt", b"hello", "text/plain")}, 400, "file"),
        ({"model": "gpt-transcribe", "file": ("bad.wav", b"RIFF....nope", "audio/wav")}, 400, "file"),
        ({"model": "gpt-4o-transcribe", "response_format": "verbose_json"}, 400, "response_format"),
        ({"model": "gpt-4o-transcribe-diarize", "prompt": "hi"}, 400, "prompt"),
        ({"model": "whisper-1", "timestamp_granularities": ["word"]}, 400, "timestamp_granularities"),
        ({"model": "gpt-transcribe", "file": ("big.wav", make_wav(30.0), "audio/wav")}, 413, None),
        (
            {"model": "gpt-4o-transcribe-diarize", "file": ("long.mp3", b"\xff" * 160_000, "audio/mpeg")},
            400,
            "chunking_strategy",
        ),
    ],
)
def test_invalid_requests_are_rejected_like_the_real_api(
    served: tuple[OpenAISimulator, openai.OpenAI], kwargs: dict[str, object], status: int, param: str | None
) -> None:
    sim, client = served
    request = {"file": ("call.wav", make_wav(2.0), "audio/wav"), **kwargs}
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(**request)  # type: ignore[call-overload]
    assert caught.value.status_code == status
    assert caught.value.param == param
    assert isinstance(caught.value.body, dict) and caught.value.body["message"]
    assert sim.stats.billed == []


def test_diarize_long_audio_is_accepted_with_chunking_strategy(
    served: tuple[OpenAISimulator, openai.OpenAI],
) -> None:
    _, client = served
    # 40 s of compressed audio (estimated from size at the assumed 32 kbps).
    result = client.audio.transcriptions.create(
        file=("long.mp3", b"\xff" * 160_000, "audio/mpeg"),
        model="gpt-4o-transcribe-diarize",
        chunking_strategy="auto",
        response_format="diarized_json",
    )
    assert result.duration == pytest.approx(40.0)
    assert {s.speaker for s in result.segments} <= {"A", "B"}


def _riff(fmt_tag: int, channels: int, rate: int, bits: int, payload: bytes) -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block_align, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload))
    return b"RIFF" + struct.pack("<I", len(body) + len(payload)) + body + payload


def test_inspect_audio_reads_g711_and_float_wav() -> None:
    mulaw_silence = _riff(7, 1, 8000, 8, b"\xff" * 16000)
    info = inspect_audio(mulaw_silence, "wav", window_s=2.0, silence_dbfs=-60.0, assumed_kbps=32.0)
    assert info.duration_s == pytest.approx(2.0) and info.silent

    mulaw_loud = _riff(7, 2, 8000, 8, bytes([0x10, 0x90]) * 8000)
    info = inspect_audio(mulaw_loud, "wav", window_s=2.0, silence_dbfs=-60.0, assumed_kbps=32.0)
    assert info.channels == 2 and info.duration_s == pytest.approx(1.0) and not info.silent

    float_tone = _riff(3, 1, 16000, 32, struct.pack("<f", 0.5) * 16000)
    info = inspect_audio(float_tone, "wav", window_s=0.5, silence_dbfs=-60.0, assumed_kbps=32.0)
    assert (
        info.duration_s == pytest.approx(1.0)
        and len(info.windows) == 2
        and all(w.voiced for w in info.windows)
    )
