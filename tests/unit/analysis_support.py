"""Shared helpers for the AI-analysis tests (no tests here): WAV builders and a served simulator."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import openai

from audiapro.analysis.openai_analyzer import AnalyzerSettings, OpenAIAnalyzer
from audiapro.analysis.openai_simulator import OpenAIFaults, OpenAISimConfig, OpenAISimulator
from audiapro.analysis.redact import luhn_valid, number_runs

API_KEY = "sk-test-analysis-5f1c2e9a7b3d4c60"
PBX_RATE = 8000
AMPLITUDE = 0.3
PCM16_MAX = 32767

#: The order number in the simulator's PII scripts: card-length but not Luhn-valid, so it is kept.
ORDER_NUMBER = "1234 5678 9012 3456"
#: The shortest payment card number (ISO/IEC 7812), set here apart from the redactor's own constant.
CARD_MIN_DIGITS = 13

Signal = npt.NDArray[np.float64]


def card_numbers(text: str) -> list[str]:
    """The payment card numbers left in ``text``: Luhn-valid digit runs (written or spoken), card length."""
    runs = number_runs(text)
    return [run.digits for run in runs if len(run.digits) >= CARD_MIN_DIGITS and luhn_valid(run.digits)]


def tone(seconds: float, hz: float, rate: int = PBX_RATE, amplitude: float = AMPLITUDE) -> Signal:
    """A sine tone (a stand-in for speech: loud, with a known frequency)."""
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def gated(signal: Signal, rate: int, spans: list[tuple[float, float]]) -> Signal:
    """`signal` kept only within the given (start, end) second spans, silent elsewhere."""
    t = np.arange(signal.size) / rate
    keep = np.zeros(signal.size, dtype=bool)
    for start, end in spans:
        keep |= (t >= start) & (t < end)
    return np.where(keep, signal, 0.0)


def make_wav(*channels: Signal, rate: int = PBX_RATE, sampwidth: int = 2) -> bytes:
    """PCM WAV bytes (16-bit, or 8-bit unsigned) written with stdlib `wave`."""
    data = np.stack(channels, axis=1)
    if sampwidth == 2:
        frames = (np.clip(data, -1, 1) * PCM16_MAX).astype("<i2").tobytes()
    else:
        frames = np.round(np.clip(data, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(len(channels))
        writer.setsampwidth(sampwidth)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return buffer.getvalue()


def stereo_call(seconds: float = 20.0) -> bytes:
    """Caller (left, 440 Hz) talks in the first half, agent (right, 660 Hz) in the second."""
    half = seconds / 2
    left = gated(tone(seconds, 440.0), PBX_RATE, [(0.0, half)])
    right = gated(tone(seconds, 660.0), PBX_RATE, [(half, seconds)])
    return make_wav(left, right)


def duplicated_mono_call(seconds: float = 20.0) -> bytes:
    """The same mixed signal on both channels."""
    mixed = tone(seconds, 440.0) + tone(seconds, 660.0, amplitude=0.1)
    return make_wav(mixed, mixed)


def silent_call(seconds: float) -> bytes:
    """A mono recording without any sound (nothing to transcribe)."""
    return make_wav(tone(seconds, 440.0, amplitude=0.0))


@contextmanager
def served(
    *,
    faults: OpenAIFaults | None = None,
    settings: AnalyzerSettings | None = None,
    seed: int = 7,
    **config: object,
) -> Iterator[tuple[OpenAISimulator, OpenAIAnalyzer]]:
    """A simulator on loopback and an analyzer using the real client against it."""
    sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY, seed=seed, **config), faults=faults)  # type: ignore[arg-type]
    with sim.serve(port=0) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY)
        try:
            yield sim, OpenAIAnalyzer(client, settings or AnalyzerSettings(request_timeout_s=10.0))
        finally:
            client.close()
