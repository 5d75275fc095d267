"""Recording preparation for transcription: decode, inspect, split or downmix, resample, chunk, encode.

CloudUCM recordings are RIFF WAV files (8 kHz, 16-bit, mono or stereo with one call leg per channel).
A true stereo recording is split into one part per speaker, so speaker roles are certain without a
diarization model (the diarizing model shuts down 2027-02-26). A mono call copied onto both channels
is detected by correlation and treated as mono, so it is not transcribed (and paid for) twice.

Transcription bills uploaded seconds, so by default each track is trimmed to its speech first
(`speech.py`: voice-activity detection, short gaps merged, edges padded, silent tracks skipped). Every
part carries a `SpanMap` from its own time back to the call time, so segments of the two speakers
still line up.

WAV decoding and encoding live in `wav.py` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from audiapro.analysis.models import SpeakerRole
from audiapro.analysis.speech import SpanMap, VadSettings, detect_speech, trim
from audiapro.analysis.wav import (
    PCM16_BYTES,
    WAV_HEADER_BYTES,
    AudioFormatError,
    DecodedAudio,
    Samples,
    decode_wav,
    encode_wav,
    read_wav,
)

MIB: Final = 1024 * 1024
#: Upload cap of the transcription endpoint.
DEFAULT_MAX_PART_BYTES: Final = 25 * MIB
#: Longest part per request: ~10 min of dense speech fills the ~2k output-token cap of the
#: gpt-4o transcribe family, and stays well under its 1400-s duration limit.
DEFAULT_MAX_PART_SECONDS: Final = 600.0
DEFAULT_TARGET_RATE: Final = 16_000
#: RMS level (dBFS) above which a frame counts as speech; PBX line noise sits around -60..-50 dBFS.
DEFAULT_SPEECH_DBFS: Final = -50.0
#: A part with less speech than this is silent and is not sent for transcription.
DEFAULT_MIN_SPEECH_SECONDS: Final = 0.5
#: |correlation| of the two channels at or above which a stereo file is a duplicated mono call.
DEFAULT_DUPLICATE_CORRELATION: Final = 0.95
#: Cuts between parts go to the quietest frame of a window this long, centred on the cut target.
DEFAULT_SPLIT_SEARCH_SECONDS: Final = 20.0

FRAME_SECONDS: Final = 0.02  # 20 ms analysis frames, the usual speech-processing unit
SILENCE_FLOOR_DBFS: Final = -120.0  # reported level of digital silence instead of -inf
# Low-pass filter used before downsampling (windowed sinc).
LOWPASS_TAPS: Final = 63
LOWPASS_CUTOFF_SHARE: Final = 0.45  # of the target rate, just under its Nyquist frequency


class AudioLimits(BaseModel):
    """How recordings are prepared for transcription.

    Attributes:
        target_rate: Output sample rate in Hz (None keeps the recording's rate).
        max_part_seconds: Longest part sent in one request.
        max_part_bytes: Largest encoded part sent in one request.
        speech_dbfs: Frame RMS level above which a frame counts as speech.
        min_speech_seconds: Parts with less speech are marked silent.
        duplicate_correlation: Channel correlation at or above which stereo is a duplicated mono.
        split_search_seconds: Window around each cut target searched for the quietest frame.
        stereo_roles: Speaker role of the left and right channel (the PBX records the caller left,
            the agent right; see `AnalyzerSettings.outbound_stereo_roles` for outbound calls).
        vad: Silence trimming before transcription (on by default; `vad.enabled=False` sends every
            track whole).
    """

    model_config = ConfigDict(frozen=True)

    target_rate: int | None = Field(default=DEFAULT_TARGET_RATE, gt=0)
    max_part_seconds: float = Field(default=DEFAULT_MAX_PART_SECONDS, gt=1)
    max_part_bytes: int = Field(default=DEFAULT_MAX_PART_BYTES, gt=WAV_HEADER_BYTES + 1000)
    speech_dbfs: float = DEFAULT_SPEECH_DBFS
    min_speech_seconds: float = Field(default=DEFAULT_MIN_SPEECH_SECONDS, ge=0)
    duplicate_correlation: float = Field(default=DEFAULT_DUPLICATE_CORRELATION, gt=0, le=1)
    split_search_seconds: float = Field(default=DEFAULT_SPLIT_SEARCH_SECONDS, ge=0)
    stereo_roles: tuple[SpeakerRole, SpeakerRole] = (SpeakerRole.caller, SpeakerRole.agent)
    vad: VadSettings = Field(default_factory=VadSettings)


@dataclass(frozen=True)
class AudioInfo:
    """What a recording holds.

    Attributes:
        channels: Channel count in the file.
        sample_rate: Sample rate in Hz.
        seconds: Duration.
        is_silent: No channel holds `min_speech_seconds` of speech.
        is_stereo: Two channels that both hold speech and differ (one speaker per channel).
        channel_energy: RMS level per channel in dBFS.
        channel_speech_seconds: Seconds of speech-level frames per channel.
        channel_correlation: Correlation of the first two channels (None for mono files).
    """

    channels: int
    sample_rate: int
    seconds: float
    is_silent: bool
    is_stereo: bool
    channel_energy: tuple[float, ...]
    channel_speech_seconds: tuple[float, ...]
    channel_correlation: float | None


@dataclass(frozen=True)
class AudioPart:
    """One upload for the transcription endpoint.

    Attributes:
        index: Chunk number in time order (untrimmed, a stereo chunk yields one part per role with one
            index; trimmed, each role's chunks are numbered on their own).
        role: Speaker role (`unknown` for mono).
        start_s: Start within the recording (call time of the part's first sample).
        end_s: End within the recording (call time of the part's last sample).
        wav: Mono 16-bit PCM WAV bytes.
        sample_rate: Sample rate of `wav`.
        is_silent: Less than the minimum speech; not worth transcribing.
        span_map: Where the part's audio came from when silence was trimmed (None: one piece,
            `start_s`..`end_s`).
    """

    index: int
    role: SpeakerRole
    start_s: float
    end_s: float
    wav: bytes
    sample_rate: int
    is_silent: bool
    span_map: SpanMap | None = None

    @property
    def seconds(self) -> float:
        """Duration of the uploaded audio (what transcription bills)."""
        return self.span_map.audio_seconds if self.span_map else self.end_s - self.start_s

    def to_call_time(self, t: float) -> float:
        """Map a time within the part's audio to the call time of the recording."""
        if self.span_map is None:
            return self.start_s + min(max(t, 0.0), self.seconds)
        return self.span_map.to_call_time(t)

    @property
    def filename(self) -> str:
        """Upload file name (the extension tells the API the format)."""
        return f"part-{self.index:03d}-{self.role.value}.wav"


def content_sha256(data: bytes) -> str:
    """SHA-256 hex digest of the original recording bytes (the idempotency key of a recording)."""
    return hashlib.sha256(data).hexdigest()


# -- measurements -----------------------------------------------------------------------------


def _frame_power(samples: Samples, rate: int) -> npt.NDArray[np.float64]:
    """Mean square per 20 ms frame and channel, shape (frames, channels); the tail frame is partial."""
    size = max(1, round(rate * FRAME_SECONDS))
    count = math.ceil(samples.shape[0] / size)
    padded = np.zeros((count * size, samples.shape[1]), dtype=np.float64)
    padded[: samples.shape[0]] = samples
    power = np.square(padded).reshape(count, size, -1).sum(axis=1)
    lengths = np.full(count, size, dtype=np.float64)
    if count:
        lengths[-1] = samples.shape[0] - (count - 1) * size
    result: npt.NDArray[np.float64] = power / lengths[:, None]
    return result


def _dbfs(mean_square: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(mean_square)
    return np.maximum(levels, SILENCE_FLOOR_DBFS)


def _speech_seconds(samples: Samples, rate: int, limits: AudioLimits) -> npt.NDArray[np.float64]:
    """Seconds of speech-level frames per channel."""
    loud = _dbfs(_frame_power(samples, rate)) > limits.speech_dbfs
    return loud.sum(axis=0) * FRAME_SECONDS


def _correlation(left: Samples, right: Samples) -> float:
    """Pearson correlation; 1.0 for two constant (e.g. silent) channels, which are duplicates."""
    a = left.astype(np.float64) - left.mean()
    b = right.astype(np.float64) - right.mean()
    denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 1.0


def describe(audio: DecodedAudio, limits: AudioLimits | None = None) -> AudioInfo:
    """Measure decoded audio (see `inspect`)."""
    limits = limits or AudioLimits()
    samples = audio.samples
    mean_square = np.square(samples.astype(np.float64)).mean(axis=0) if samples.shape[0] else None
    energy = _dbfs(mean_square) if mean_square is not None else np.full(audio.channels, SILENCE_FLOOR_DBFS)
    speech = _speech_seconds(samples, audio.sample_rate, limits)
    voiced = speech >= limits.min_speech_seconds
    has_pair = audio.channels >= 2 and samples.shape[0] > 1
    correlation = _correlation(samples[:, 0], samples[:, 1]) if has_pair else None
    # Both legs must talk: a file with one silent channel is a mono call placed on one side.
    stereo = (
        audio.channels == 2
        and bool(voiced.all())
        and correlation is not None
        and abs(correlation) < limits.duplicate_correlation
    )
    return AudioInfo(
        channels=audio.channels,
        sample_rate=audio.sample_rate,
        seconds=audio.seconds,
        is_silent=not bool(voiced.any()),
        is_stereo=stereo,
        channel_energy=tuple(round(float(v), 2) for v in energy),
        channel_speech_seconds=tuple(round(float(v), 3) for v in speech),
        channel_correlation=None if correlation is None else round(correlation, 4),
    )


def inspect(wav: bytes | str | os.PathLike[str], limits: AudioLimits | None = None) -> AudioInfo:
    """Decode and measure a recording.

    Args:
        wav: WAV bytes or a path.
        limits: Speech thresholds (defaults: `AudioLimits()`).

    Returns:
        Channels, rate, duration, silence, true-stereo status and per-channel levels.

    Raises:
        AudioFormatError: Undecodable input.
    """
    return describe(read_wav(wav), limits)


# -- transforms -------------------------------------------------------------------------------


def _lowpass(signal: Samples, cutoff_share_of_rate: float) -> Samples:
    """Windowed-sinc low-pass FIR; `cutoff_share_of_rate` is the cutoff divided by the sample rate."""
    n = np.arange(LOWPASS_TAPS) - (LOWPASS_TAPS - 1) / 2
    taps = 2 * cutoff_share_of_rate * np.sinc(2 * cutoff_share_of_rate * n) * np.hamming(LOWPASS_TAPS)
    taps /= taps.sum()
    return np.convolve(signal, taps, mode="same").astype(np.float32)


def resample(signal: Samples, source_rate: int, target_rate: int) -> Samples:
    """Resample a 1-D signal by linear interpolation (low-pass filtered first when downsampling).

    Linear interpolation is plenty for telephone speech going 8 kHz → 16 kHz: there is nothing above
    4 kHz to preserve, and the transcription model resamples internally anyway.
    """
    if source_rate == target_rate or signal.size == 0:
        return signal.astype(np.float32, copy=False)
    if target_rate < source_rate:
        signal = _lowpass(signal, LOWPASS_CUTOFF_SHARE * target_rate / source_rate)
    count = round(signal.size * target_rate / source_rate)
    positions = np.arange(count) * (source_rate / target_rate)
    return np.interp(positions, np.arange(signal.size), signal).astype(np.float32)


def _part_limit_seconds(limits: AudioLimits, rate: int) -> float:
    by_bytes = (limits.max_part_bytes - WAV_HEADER_BYTES) // PCM16_BYTES / rate
    return min(limits.max_part_seconds, by_bytes)


def split_points(
    power: npt.NDArray[np.float64], seconds: float, limit_s: float, search_s: float
) -> list[float]:
    """Cut times (seconds) that keep every chunk within `limit_s`, placed at quiet frames.

    Chunks are balanced (targets at k·total/n) and each cut moves to the quietest 20 ms frame within
    half a search window of its target, so words are not cut in half. Choosing n with the window
    subtracted from the limit guarantees no chunk exceeds the limit whatever frames are chosen.

    Args:
        power: Mean square per frame (summed over channels), one value per 20 ms frame.
        seconds: Total duration.
        limit_s: Longest allowed chunk.
        search_s: Search window length.

    Returns:
        Interior cut times in increasing order (empty when one chunk fits).
    """
    if seconds <= limit_s:
        return []
    window = min(search_s, limit_s / 10)
    count = math.ceil(seconds / (limit_s - window))
    cuts: list[float] = []
    for k in range(1, count):
        target = k * seconds / count
        first = max(0, math.floor((target - window / 2) / FRAME_SECONDS))
        last = min(len(power), math.floor((target + window / 2) / FRAME_SECONDS) + 1)
        if last <= first:
            cuts.append(target)
            continue
        quietest = first + int(np.argmin(power[first:last]))
        cuts.append(min(max(quietest * FRAME_SECONDS, target - window / 2), target + window / 2))
    return cuts


def prepare(wav: bytes | str | os.PathLike[str], limits: AudioLimits | None = None) -> list[AudioPart]:
    """Turn a recording into transcription uploads.

    True stereo is split into one track per speaker role (left/right = `limits.stereo_roles`);
    anything else is downmixed to one `unknown` track (a silent channel is left out of the mix so it
    does not halve the level). With `limits.vad.enabled` (the default) each track is first cut down
    to its speech (`speech.detect_speech`), a track without speech is left out, and each role is
    chunked on its own; each part's `span_map` maps its time back to the call. Untrimmed, tracks are
    resampled to `limits.target_rate`, cut into chunks that fit
    the per-request limits at quiet moments (the same cut times for both roles, so chunks of the two
    speakers line up), and encoded as 16-bit PCM WAV.

    Args:
        wav: WAV bytes or a path.
        limits: Preparation limits (defaults: `AudioLimits()`).

    Returns:
        Parts ordered by chunk index, then role. Silent parts are included and flagged.

    Raises:
        AudioFormatError: Undecodable input.
    """
    limits = limits or AudioLimits()
    audio = read_wav(wav)
    tracks = _tracks(audio, describe(audio, limits), limits)
    rate = limits.target_rate or audio.sample_rate
    if limits.vad.enabled:
        return _trimmed_parts(tracks, audio.sample_rate, rate, limits)
    resampled = [(role, resample(track, audio.sample_rate, rate)) for role, track in tracks]
    stacked = np.stack([track for _, track in resampled], axis=1)
    seconds = stacked.shape[0] / rate
    power = _frame_power(stacked, rate).sum(axis=1)
    cuts = split_points(power, seconds, _part_limit_seconds(limits, rate), limits.split_search_seconds)
    bounds = [0.0, *cuts, seconds]
    parts: list[AudioPart] = []
    for index, (start_s, end_s) in enumerate(itertools.pairwise(bounds)):
        first, last = round(start_s * rate), round(end_s * rate)
        for role, track in resampled:
            chunk = track[first:last]
            parts.append(
                AudioPart(
                    index=index,
                    role=role,
                    start_s=first / rate,
                    end_s=last / rate,
                    wav=encode_wav(chunk, rate),
                    sample_rate=rate,
                    is_silent=_is_silent(chunk, rate, limits),
                )
            )
    return parts


def _tracks(audio: DecodedAudio, info: AudioInfo, limits: AudioLimits) -> list[tuple[SpeakerRole, Samples]]:
    """One track per speaker role for true stereo, else one downmix without the silent channels."""
    samples = audio.samples
    if info.is_stereo:
        return [(limits.stereo_roles[i], samples[:, i]) for i in range(2)]
    speaking = np.asarray(info.channel_speech_seconds) >= limits.min_speech_seconds
    chosen = samples[:, speaking] if speaking.any() else samples
    return [(SpeakerRole.unknown, chosen.mean(axis=1).astype(np.float32))]


def _is_silent(chunk: Samples, rate: int, limits: AudioLimits) -> bool:
    speech = float(_speech_seconds(chunk[:, None], rate, limits)[0]) if chunk.size else 0.0
    return speech < limits.min_speech_seconds


def _trimmed_parts(
    tracks: list[tuple[SpeakerRole, Samples]], source_rate: int, rate: int, limits: AudioLimits
) -> list[AudioPart]:
    """Parts of each track cut down to its speech; a track without speech yields no part.

    Speech is detected at the recording's own rate (the detector's zero-crossing test assumes the
    original spectrum), then the resampled track is trimmed to the same spans and chunked on its own.
    """
    parts: list[AudioPart] = []
    for role, track in tracks:
        spans = detect_speech(track, source_rate, limits.vad)
        if not spans:
            continue  # nothing said on this channel: nothing to pay for
        trimmed, span_map = trim(resample(track, source_rate, rate), rate, spans, limits.vad.join_gap_seconds)
        seconds = trimmed.size / rate
        power = _frame_power(trimmed[:, None], rate)[:, 0]
        cuts = split_points(power, seconds, _part_limit_seconds(limits, rate), limits.split_search_seconds)
        for index, (start_s, end_s) in enumerate(itertools.pairwise([0.0, *cuts, seconds])):
            first, last = round(start_s * rate), round(end_s * rate)
            window = span_map.window(first / rate, last / rate)
            if not window.spans:
                continue
            chunk = trimmed[first:last]
            parts.append(
                AudioPart(
                    index=index,
                    role=role,
                    start_s=window.spans[0].start_s,
                    end_s=window.spans[-1].end_s,
                    wav=encode_wav(chunk, rate),
                    sample_rate=rate,
                    is_silent=_is_silent(chunk, rate, limits),
                    span_map=window,
                )
            )
    order = {role: position for position, (role, _) in enumerate(tracks)}
    return sorted(parts, key=lambda part: (part.index, order[part.role]))


__all__ = [
    "AudioFormatError",
    "AudioInfo",
    "AudioLimits",
    "AudioPart",
    "DecodedAudio",
    "SpanMap",
    "VadSettings",
    "content_sha256",
    "decode_wav",
    "describe",
    "encode_wav",
    "inspect",
    "prepare",
    "read_wav",
    "resample",
    "split_points",
]
