"""OpenAI simulator: `/v1/audio/transcriptions` through the real `openai` client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from audiapro.analysis.openai_simulator import OpenAISimulator
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


def test_silence_gives_empty_text_but_is_still_billed(served: tuple[OpenAISimulator, openai.OpenAI]) -> None:
    sim, client = served
    result = client.audio.transcriptions.create(
        file=("silent.wav", make_wav(3.0, silent=True), "audio/wav"), model="gpt-transcribe"
    )
    assert result.text == ""
    assert result.languages == []
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 3.0
    assert sim.stats.audio_seconds == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("kwargs", "status", "param"),
    [
        ({"model": "gpt-6-luna"}, 400, "model"),
        ({"model": "gpt-transcribe", "file": ("bad.wav", b"RIFF....nope", "audio/wav")}, 400, "file"),
        ({"model": "whisper-1", "keywords": ["refund"]}, 400, "keywords"),
        ({"model": "gpt-transcribe", "file": ("big.wav", make_wav(30.0), "audio/wav")}, 413, None),
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


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"file": ("notes.mp3", b"\xff" * 1000, "audio/mpeg")}, "file"),
        ({"response_format": "verbose_json"}, "response_format"),
        ({"include": ["logprobs"]}, "include[]"),
        ({"temperature": 0.2}, "temperature"),
    ],
)
def test_what_the_client_never_sends_is_a_clear_400(
    served: tuple[OpenAISimulator, openai.OpenAI], kwargs: dict[str, object], param: str
) -> None:
    sim, client = served
    request = {"model": "gpt-4o-transcribe", "file": ("call.wav", make_wav(2.0), "audio/wav"), **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(**request)  # type: ignore[call-overload]
    assert (caught.value.param, caught.value.code) == (param, "unsupported_by_simulator")
    assert "not supported by the OpenAI simulator" in caught.value.message
    assert sim.stats.billed == []
