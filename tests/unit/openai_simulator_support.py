"""Shared helpers for the OpenAI simulator tests (no tests here).

Each test module builds its own simulator fixture from these helpers so the modules stay
independent; conftest.py is not touched.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Literal

import numpy as np
import openai
from pydantic import BaseModel, Field

from audiapro.analysis.openai_simulator import OpenAIFaults, OpenAISimConfig, OpenAISimulator

API_KEY = "sk-test-simulator-0123456789"
TEXT_MODEL = "gpt-6-luna"
RATE = 8000
TONE_HZ = 440.0
AMPLITUDE = 0.3
PCM16_MAX = 32767

REFUND_TRANSCRIPT = (
    "Agent: Thank you for calling, how can I help? Caller: I was charged twice last month and I want a "
    "refund to my card. Agent: I can process that refund today."
)
APPOINTMENT_TRANSCRIPT = (
    "Agent: Good morning. Caller: I'd like to book an appointment for Tuesday morning. "
    "Agent: Great, your appointment is booked for ten thirty."
)


class Sentiment(StrEnum):
    """Overall caller sentiment."""

    positive = "positive"
    neutral = "neutral"
    negative = "negative"


class SpeakerStats(BaseModel):
    """Per-speaker figures (a nested object)."""

    role: Literal["agent", "caller"]
    sentiment_score: float = Field(ge=-1.0, le=1.0)
    talk_share_pct: int = Field(ge=0, le=100)


class ActionItem(BaseModel):
    """A follow-up task (a nested object inside a list)."""

    owner: Literal["agent", "caller", "team"]
    description: str
    due_in_days: int | None = Field(ge=0, le=30)


class CallAnalysis(BaseModel):
    """A strict-schema friendly analysis model with enums, nesting, lists, optionals and ranges."""

    outcome: Literal["refund_requested", "cancellation", "appointment_booked", "complaint", "other"]
    sentiment: Sentiment
    summary: str
    quality_score: int = Field(ge=1, le=5)
    refund_requested: bool
    speakers: list[SpeakerStats] = Field(min_length=1, max_length=2)
    action_items: list[ActionItem] = Field(max_length=3)
    topics: list[Literal["refund", "billing", "cancellation", "appointment", "complaint", "support"]]
    escalation: ActionItem | None
    callback_number: str | None


def make_wav(
    seconds: float,
    *,
    channels: int = 1,
    silent: bool = False,
    rate: int = RATE,
    channel_schedule: list[int] | None = None,
) -> bytes:
    """A 16-bit PCM WAV built with stdlib `wave`.

    Args:
        seconds: Duration.
        channels: Channel count.
        silent: All-zero samples.
        rate: Sample rate.
        channel_schedule: For stereo, which channel talks in each equal slice of the call (the
            other one is silent), e.g. `[0, 1]` = left talks first, then right.

    Returns:
        The WAV file bytes.
    """
    frames = round(seconds * rate)
    tone = np.zeros(frames) if silent else AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(frames) / rate)
    data = np.zeros((frames, channels))
    if channel_schedule:
        for index, channel in enumerate(channel_schedule):
            first = frames * index // len(channel_schedule)
            last = frames * (index + 1) // len(channel_schedule)
            data[first:last, channel] = tone[first:last]
    else:
        data[:, :] = tone[:, None]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((data * PCM16_MAX).astype("<i2").tobytes())
    return buffer.getvalue()


@contextmanager
def running(
    *, faults: OpenAIFaults | None = None, max_retries: int = 2, timeout: float = 10.0, **config: object
) -> Iterator[tuple[OpenAISimulator, openai.OpenAI]]:
    """A served simulator and a real client pointed at it."""
    sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY, **config), faults=faults)  # type: ignore[arg-type]
    with sim.serve(port=0) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=max_retries, timeout=timeout)
        try:
            yield sim, client
        finally:
            client.close()
