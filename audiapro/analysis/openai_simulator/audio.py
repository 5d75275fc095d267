"""Audio inspection: duration, channels and per-window voice activity.

WAV files are read by the pipeline's own decoder (`audiapro.analysis.wav`: RIFF chunks, PCM 8/16-bit,
G.711 µ-law/A-law, WAVE_FORMAT_EXTENSIBLE), plus the 24/32-bit PCM and IEEE-float encodings the real
API also accepts. Other formats are not decoded: their duration is estimated from the byte size and
every window counts as speech.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audiapro.analysis.openai_simulator.errors import SimError
from audiapro.analysis.wav import (
    TAG_FLOAT,
    TAG_PCM,
    AudioFormatError,
    Samples,
    WavFormat,
    decode_samples,
    parse_wav,
)

_PCM24_BYTES = 3


@dataclass(frozen=True)
class AudioWindow:
    """One analysis window.

    Attributes:
        start: Start time in seconds.
        end: End time in seconds.
        voiced: Whether any channel is louder than the silence threshold.
        channel: Loudest channel (a speaker hint for one-leg-per-channel recordings).
    """

    start: float
    end: float
    voiced: bool
    channel: int


@dataclass(frozen=True)
class AudioInfo:
    """What the simulator knows about an upload.

    Attributes:
        digest: SHA-256 of the file bytes (drives the pseudo-transcript).
        extension: Lower-case file extension.
        duration_s: Duration in seconds (exact for WAV, estimated otherwise).
        channels: Channel count (1 when not decoded).
        sample_rate: Sample rate in Hz, None when not decoded.
        decoded: True when samples were analysed.
        windows: Consecutive analysis windows covering the whole duration.
    """

    digest: str
    extension: str
    duration_s: float
    channels: int
    sample_rate: int | None
    decoded: bool
    windows: tuple[AudioWindow, ...]

    @property
    def silent(self) -> bool:
        """True when the audio was decoded and no window holds speech."""
        return self.decoded and not any(w.voiced for w in self.windows)


def _corrupted() -> SimError:
    # Wording of the real API for undecodable uploads.
    return SimError(400, "Audio file might be corrupted or unsupported", param="file", code="invalid_value")


def _decode(data: bytes) -> tuple[WavFormat, Samples]:
    """The format and samples (float32 in [-1, 1], shape (frames, channels)) of a WAV upload."""
    try:
        fmt, raw = parse_wav(data)
        wide = _decode_wide(fmt, raw)
        return fmt, wide if wide is not None else decode_samples(fmt, raw)
    except AudioFormatError:
        raise _corrupted() from None


def _decode_wide(fmt: WavFormat, raw: bytes) -> Samples | None:
    """Samples of 24/32-bit PCM or IEEE float; None for other encodings.

    The real API takes these, but `audiapro.analysis.wav` rejects them on purpose (PBXs never write
    them), so they are decoded here only.
    """
    samples: Samples
    if fmt.tag == TAG_PCM and fmt.bits == 24:
        triples = np.frombuffer(raw, np.uint8).reshape(-1, _PCM24_BYTES).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    elif fmt.tag == TAG_PCM and fmt.bits == 32:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    elif fmt.tag == TAG_FLOAT and fmt.bits in (32, 64):
        samples = np.frombuffer(raw, "<f4" if fmt.bits == 32 else "<f8").astype(np.float32)
    else:
        return None
    return samples.reshape(-1, fmt.channels)


def _windows(
    samples: npt.NDArray[np.float32], rate: int, window_s: float, silence_dbfs: float
) -> tuple[AudioWindow, ...]:
    frames_per_window = max(1, round(rate * window_s))
    threshold_rms = 10.0 ** (silence_dbfs / 20.0)
    windows: list[AudioWindow] = []
    for first in range(0, samples.shape[0], frames_per_window):
        block = samples[first : first + frames_per_window].astype(np.float64)
        rms = np.sqrt(np.mean(block * block, axis=0))
        windows.append(
            AudioWindow(
                start=first / rate,
                end=(first + block.shape[0]) / rate,
                voiced=bool(np.max(rms) > threshold_rms),
                channel=int(np.argmax(rms)),
            )
        )
    return tuple(windows)


def _uniform_windows(duration_s: float, window_s: float) -> tuple[AudioWindow, ...]:
    count = math.ceil(duration_s / window_s) if duration_s > 0 else 0
    return tuple(
        AudioWindow(i * window_s, min(duration_s, (i + 1) * window_s), voiced=True, channel=0)
        for i in range(count)
    )


def inspect_audio(
    data: bytes, extension: str, *, window_s: float, silence_dbfs: float, assumed_kbps: float
) -> AudioInfo:
    """Measure an upload.

    Args:
        data: File bytes.
        extension: Lower-case extension of the uploaded file name.
        window_s: Analysis window length.
        silence_dbfs: RMS threshold for silence.
        assumed_kbps: Bit rate used to estimate the duration of undecoded formats.

    Returns:
        Duration, channels and voice-activity windows.

    Raises:
        SimError: 400 when a WAV file cannot be decoded.
    """
    digest = hashlib.sha256(data).hexdigest()
    # Sniff the content too: a RIFF/WAVE body is decoded whatever its extension says.
    if extension == "wav" or data[:4] == b"RIFF":
        fmt, samples = _decode(data)
        duration = samples.shape[0] / fmt.rate
        return AudioInfo(
            digest=digest,
            extension=extension,
            duration_s=duration,
            channels=fmt.channels,
            sample_rate=fmt.rate,
            decoded=True,
            windows=_windows(samples, fmt.rate, window_s, silence_dbfs),
        )
    duration = len(data) * 8.0 / (assumed_kbps * 1000.0)
    return AudioInfo(
        digest=digest,
        extension=extension,
        duration_s=duration,
        channels=1,
        sample_rate=None,
        decoded=False,
        windows=_uniform_windows(duration, window_s),
    )
