"""Voice-activity detection and silence trimming, so transcription bills speech rather than silence.

Transcription is priced per second of uploaded audio, and a stereo recording is transcribed per
channel although each party speaks only part of the time. This module finds the spans of one channel
that hold speech (numpy only: frame energy against an adaptive noise floor, zero-crossing rate to tell
hiss from voice, a hangover that bridges the dips between syllables), merges short gaps, pads the
edges, and cuts the channel down to those spans. A `SpanMap` records where every kept span came from,
so times in the trimmed audio map back to the original call time and the two channels still line up.

The detector errs towards keeping audio: a missed word costs insight, a kept pause costs a fraction
of a cent. Its thresholds are `VadSettings` (one per analyzer, `AudioLimits.vad`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from audiapro.analysis.wav import Samples

#: Analysis frame length: 20 ms, the usual speech-processing unit.
VAD_FRAME_SECONDS: Final = 0.02
SILENCE_FLOOR_DBFS: Final = -120.0  # level of digital silence instead of -inf
DEFAULT_NOISE_PERCENTILE: Final = 10.0
DEFAULT_MARGIN_DB: Final = 9.0
DEFAULT_MIN_THRESHOLD_DBFS: Final = -55.0
DEFAULT_MAX_THRESHOLD_DBFS: Final = -35.0
DEFAULT_MAX_NOISE_ZCR: Final = 0.3
DEFAULT_STRONG_MARGIN_DB: Final = 15.0
DEFAULT_MIN_ONSET_SECONDS: Final = 0.04
DEFAULT_HANGOVER_SECONDS: Final = 0.1
DEFAULT_MERGE_GAP_SECONDS: Final = 0.5
DEFAULT_PAD_SECONDS: Final = 0.15
DEFAULT_MIN_CHANNEL_SPEECH_SECONDS: Final = 0.3
DEFAULT_JOIN_GAP_SECONDS: Final = 0.05

FloatArray = npt.NDArray[np.float64]


class VadSettings(BaseModel):
    """How silence is trimmed from each channel before transcription.

    Attributes:
        enabled: Trim silence (off: every channel is sent whole, as before).
        noise_percentile: Percentile of frame levels taken as the channel's noise floor.
        margin_db: A frame is loud when it is this far above the noise floor ...
        min_threshold_dbfs: ... but never below this level (digital silence has no floor) ...
        max_threshold_dbfs: ... nor above this one (a channel that is all speech has no noise frames).
        max_noise_zcr: Zero crossings per sample above which a loud frame is hiss, not voice ...
        strong_margin_db: ... unless it is this far above the threshold (fricatives, loud consonants).
        min_onset_seconds: Shorter loud runs are clicks, not speech.
        hangover_seconds: Speech is held this long after the last loud frame (dips between syllables).
        merge_gap_seconds: Gaps shorter than this between speech runs are kept (pauses within a turn).
        pad_seconds: Kept before and after every span (soft onsets and endings below the threshold).
        min_channel_speech_seconds: A channel with less detected speech is skipped entirely.
        join_gap_seconds: Silence placed between concatenated spans so words do not run together.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    noise_percentile: float = Field(default=DEFAULT_NOISE_PERCENTILE, ge=0, le=100)
    margin_db: float = Field(default=DEFAULT_MARGIN_DB, ge=0)
    min_threshold_dbfs: float = DEFAULT_MIN_THRESHOLD_DBFS
    max_threshold_dbfs: float = DEFAULT_MAX_THRESHOLD_DBFS
    max_noise_zcr: float = Field(default=DEFAULT_MAX_NOISE_ZCR, gt=0, le=1)
    strong_margin_db: float = Field(default=DEFAULT_STRONG_MARGIN_DB, ge=0)
    min_onset_seconds: float = Field(default=DEFAULT_MIN_ONSET_SECONDS, ge=0)
    hangover_seconds: float = Field(default=DEFAULT_HANGOVER_SECONDS, ge=0)
    merge_gap_seconds: float = Field(default=DEFAULT_MERGE_GAP_SECONDS, ge=0)
    pad_seconds: float = Field(default=DEFAULT_PAD_SECONDS, ge=0)
    min_channel_speech_seconds: float = Field(default=DEFAULT_MIN_CHANNEL_SPEECH_SECONDS, ge=0)
    join_gap_seconds: float = Field(default=DEFAULT_JOIN_GAP_SECONDS, ge=0)


@dataclass(frozen=True)
class KeptSpan:
    """One stretch of the original channel kept for transcription.

    Attributes:
        start_s: Start in the original recording.
        end_s: End in the original recording.
        offset_s: Where it starts in the trimmed audio.
    """

    start_s: float
    end_s: float
    offset_s: float

    @property
    def seconds(self) -> float:
        """Length of the span."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SpanMap:
    """Where the pieces of a trimmed track came from.

    Attributes:
        spans: Kept spans in time order (offsets increasing).
        audio_seconds: Length of the trimmed track (spans plus join gaps).
    """

    spans: tuple[KeptSpan, ...]
    audio_seconds: float

    @classmethod
    def identity(cls, seconds: float) -> SpanMap:
        """The map of an untrimmed track: trimmed time equals call time."""
        return cls((KeptSpan(0.0, seconds, 0.0),), seconds)

    @property
    def kept_seconds(self) -> float:
        """Original audio kept (without join gaps)."""
        return sum(span.seconds for span in self.spans)

    def to_call_time(self, t: float) -> float:
        """Map a time in the trimmed track to the original call time.

        A time inside a join gap maps to the end of the span before it; times outside the track are
        clamped to its first start and last end.
        """
        if not self.spans:
            return 0.0
        offsets = [span.offset_s for span in self.spans]
        index = max(0, bisect.bisect_right(offsets, t) - 1)
        span = self.spans[index]
        return span.start_s + min(max(t - span.offset_s, 0.0), span.seconds)

    def window(self, start_s: float, end_s: float) -> SpanMap:
        """The map of the trimmed-track window [start_s, end_s), re-based to start at 0."""
        pieces: list[KeptSpan] = []
        for span in self.spans:
            first = max(start_s, span.offset_s)
            last = min(end_s, span.offset_s + span.seconds)
            if last > first:
                origin = span.start_s + first - span.offset_s
                pieces.append(KeptSpan(origin, origin + last - first, first - start_s))
        return SpanMap(tuple(pieces), max(0.0, end_s - start_s))


def _frames(signal: Samples, rate: int) -> tuple[FloatArray, FloatArray]:
    """Level (dBFS) and zero-crossing rate per 20 ms frame of a 1-D signal (tail frame dropped)."""
    size = max(2, round(rate * VAD_FRAME_SECONDS))
    count = signal.size // size
    frames = signal[: count * size].astype(np.float64).reshape(count, size)
    with np.errstate(divide="ignore"):
        level = np.maximum(10.0 * np.log10(np.square(frames).mean(axis=1)), SILENCE_FLOOR_DBFS)
    signs = np.signbit(frames)
    zcr = (signs[:, 1:] != signs[:, :-1]).mean(axis=1).astype(np.float64)
    return level, zcr


def speech_frames(signal: Samples, rate: int, settings: VadSettings | None = None) -> npt.NDArray[np.bool_]:
    """Which 20 ms frames of a 1-D signal hold speech (before hangover, merging and padding).

    A frame is speech when its level is `margin_db` above the channel's noise floor (clamped to the
    absolute bounds) and it is not hiss: a high zero-crossing rate is accepted only from frames well
    above the threshold.
    """
    settings = settings or VadSettings()
    level, zcr = _frames(signal, rate)
    if level.size == 0:
        return np.zeros(0, dtype=bool)
    floor = float(np.percentile(level, settings.noise_percentile))
    threshold = min(max(floor + settings.margin_db, settings.min_threshold_dbfs), settings.max_threshold_dbfs)
    loud = level > threshold
    voiced = (zcr <= settings.max_noise_zcr) | (level > threshold + settings.strong_margin_db)
    result: npt.NDArray[np.bool_] = loud & voiced
    return result


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[first, last) frame indices of the runs of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _merge(spans: list[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """Join spans (sorted by start) whose gap is at most `gap`."""
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def detect_speech(
    signal: Samples, rate: int, settings: VadSettings | None = None
) -> list[tuple[float, float]]:
    """Speech spans (seconds) of a 1-D signal: hangover applied, short gaps merged, edges padded.

    Args:
        signal: Mono samples in [-1, 1].
        rate: Sample rate in Hz.
        settings: Detector settings (defaults: `VadSettings()`).

    Returns:
        Disjoint (start_s, end_s) spans in time order within [0, duration]; empty when the channel
        holds less than `min_channel_speech_seconds` of speech (nothing worth transcribing).
    """
    settings = settings or VadSettings()
    duration = signal.size / rate
    onset = math.ceil(settings.min_onset_seconds / VAD_FRAME_SECONDS - 1e-9)
    runs = [(a, b) for a, b in _runs(speech_frames(signal, rate, settings)) if b - a >= max(onset, 1)]
    speech = sum(b - a for a, b in runs) * VAD_FRAME_SECONDS
    if not runs or speech < settings.min_channel_speech_seconds:
        return []
    held = [(a * VAD_FRAME_SECONDS, b * VAD_FRAME_SECONDS + settings.hangover_seconds) for a, b in runs]
    joined = _merge(held, settings.merge_gap_seconds)
    pad = settings.pad_seconds
    padded = [(max(0.0, a - pad), min(duration, b + pad)) for a, b in joined]
    return _merge(padded, 0.0)


def trim(
    signal: Samples, rate: int, spans: list[tuple[float, float]], join_gap_seconds: float
) -> tuple[Samples, SpanMap]:
    """Concatenate the spans of a 1-D signal, with `join_gap_seconds` of silence between them.

    Args:
        signal: Mono samples.
        rate: Sample rate in Hz.
        spans: Disjoint (start_s, end_s) spans in time order (from `detect_speech`).
        join_gap_seconds: Silence inserted between consecutive spans.

    Returns:
        The trimmed signal and the map from its time to the original time.
    """
    gap = np.zeros(round(join_gap_seconds * rate), dtype=np.float32)
    pieces: list[Samples] = []
    kept: list[KeptSpan] = []
    position = 0
    for start_s, end_s in spans:
        first, last = round(start_s * rate), min(round(end_s * rate), signal.size)
        if last <= first:
            continue
        if pieces and gap.size:
            pieces.append(gap)
            position += gap.size
        kept.append(KeptSpan(first / rate, last / rate, position / rate))
        pieces.append(signal[first:last].astype(np.float32, copy=False))
        position += last - first
    joined = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return joined, SpanMap(tuple(kept), position / rate)


def covers(spans: list[tuple[float, float]], interval: tuple[float, float], tolerance: float = 0.0) -> bool:
    """Whether one span contains `interval` (within `tolerance` seconds at either edge)."""
    start, end = interval
    return any(a - tolerance <= start and end <= b + tolerance for a, b in spans)


__all__ = [
    "KeptSpan",
    "SpanMap",
    "VadSettings",
    "covers",
    "detect_speech",
    "speech_frames",
    "trim",
]
