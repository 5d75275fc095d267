"""Synthetic call recordings: deterministic RIFF/WAVE audio derived from the file name.

The audio imitates a two-party conversation: the speakers take turns, each "talks" in syllable-like
bursts of a harmonic voice with its own pitch (caller low, agent high), over faint line noise. In
stereo the caller is on the left channel and the agent on the right, as a call-centre recorder
would store them, so a later stage can tell the two speakers apart. Between turns a channel carries
only the line noise, as a real recorder's would, so a voice-activity detector has to separate speech
from noise rather than from digital zero.

The simulator knows where it put speech: `speech_intervals` returns each speaker's turns (ground
truth) for the same name and length, so tests can prove that silence trimming loses no speech.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
MIN_SECONDS = 1.0
CALLER_PITCH_HZ = 125.0
AGENT_PITCH_HZ = 215.0
HARMONICS = 6
TURN_SECONDS = (1.2, 4.0)
GAP_SECONDS = (0.15, 0.6)
#: No turn starts closer than this to the end (a few ms of a syllable's silent onset is not speech).
MIN_TURN_SECONDS = 0.25
SYLLABLE_HZ = (3.0, 5.5)
VOICE_LEVEL = 0.35
NOISE_LEVEL = 0.004
_FULL_SCALE = 32767


def _voice(rng: np.random.Generator, n: int, pitch: float) -> np.ndarray:
    """A harmonic tone with slow pitch movement (intonation)."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = pitch * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 0.9) * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    return sum((np.sin(k * phase) / k for k in range(1, HARMONICS + 1)), start=np.zeros(n))


@dataclass(frozen=True)
class SpeechIntervals:
    """Where each speaker talks in a synthetic recording (seconds from its start).

    Attributes:
        caller: The caller's turns (left channel in stereo), as (start, end) in time order.
        agent: The agent's turns (right channel in stereo).
    """

    caller: tuple[tuple[float, float], ...]
    agent: tuple[tuple[float, float], ...]


def _rng(name: str) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return np.random.default_rng(seed)


def _frames(seconds: float) -> int:
    return int(max(MIN_SECONDS, seconds) * SAMPLE_RATE)


def _turn_gates(
    rng: np.random.Generator, n: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Amplitude envelopes of (caller, agent), alternating turns of syllable bursts, and the turns."""
    gates = (np.zeros(n), np.zeros(n))
    turns: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
    pos = 0
    speaker = 1  # the agent answers first
    while n - pos >= MIN_TURN_SECONDS * SAMPLE_RATE:
        length = int(rng.uniform(*TURN_SECONDS) * SAMPLE_RATE)
        end = min(n, pos + length)
        t = np.arange(end - pos) / SAMPLE_RATE
        syllables = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(*SYLLABLE_HZ) * t))
        gates[speaker][pos:end] = syllables * rng.uniform(0.5, 1.0)
        if end > pos:
            turns[speaker].append((pos, end))
        pos = end + int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
        speaker = 1 - speaker
    return gates, turns


def speech_intervals(name: str, seconds: float) -> SpeechIntervals:
    """Ground truth of `synth_wav(name, seconds)`: each speaker's turns, in seconds.

    The same name and length give the same turns as the audio (both are drawn from the same seed).
    """
    _, (caller, agent) = _turn_gates(_rng(name), _frames(seconds))
    return SpeechIntervals(
        caller=tuple((a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in caller),
        agent=tuple((a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in agent),
    )


def synth_wav(name: str, seconds: float, *, stereo: bool = False) -> bytes:
    """Render the recording ``name`` as a complete WAV file.

    Args:
        name: Recording file name; it seeds the audio, so the same name always gives the same bytes.
        seconds: Length (at least ``MIN_SECONDS``).
        stereo: Two channels (caller left, agent right) instead of one mixed channel.

    Returns:
        RIFF/WAVE bytes, 8 kHz, 16-bit PCM.
    """
    rng = _rng(name)
    n = _frames(seconds)
    (caller_gate, agent_gate), _ = _turn_gates(rng, n)
    caller = _voice(rng, n, CALLER_PITCH_HZ * rng.uniform(0.9, 1.1)) * caller_gate * VOICE_LEVEL
    agent = _voice(rng, n, AGENT_PITCH_HZ * rng.uniform(0.9, 1.1)) * agent_gate * VOICE_LEVEL
    if stereo:
        left = caller + rng.normal(0, NOISE_LEVEL, n)
        right = agent + rng.normal(0, NOISE_LEVEL, n)
        samples = np.column_stack((left, right)).reshape(-1)
    else:
        samples = caller + agent + rng.normal(0, NOISE_LEVEL, n)
    pcm = np.clip(np.round(samples * _FULL_SCALE), -_FULL_SCALE, _FULL_SCALE).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2 if stereo else 1)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()
