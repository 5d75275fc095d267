"""Audio inspection: duration, channels and per-window voice activity.

WAV is decoded with a small RIFF reader instead of stdlib `wave`, because on Python 3.11 `wave`
rejects WAVE_FORMAT_EXTENSIBLE, IEEE-float and G.711 (µ-law/A-law) files, all of which PBX
recordings and ffmpeg produce. Other formats are not decoded: their duration is estimated from the
byte size and every window counts as speech.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import SimError

_RIFF_HEADER_BYTES = 12
_CHUNK_HEADER_BYTES = 8
_FMT_MIN_BYTES = 16
_EXTENSIBLE_FMT_MIN_BYTES = 40
_SUBFORMAT_OFFSET = 24

_TAG_PCM = 0x0001
_TAG_FLOAT = 0x0003
_TAG_ALAW = 0x0006
_TAG_MULAW = 0x0007
_TAG_EXTENSIBLE = 0xFFFE

_PCM24_BYTES = 3


def _g711_tables() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """µ-law and A-law byte → linear sample lookup tables (ITU-T G.711), scaled to [-1, 1]."""
    mulaw = np.zeros(256, dtype=np.float32)
    alaw = np.zeros(256, dtype=np.float32)
    for byte in range(256):
        u = ~byte & 0xFF
        magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
        mulaw[byte] = (magnitude - 0x84) * (-1 if u & 0x80 else 1) / 32768.0
        a = byte ^ 0x55
        exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
        linear = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
        # In A-law a set sign bit means a positive sample.
        alaw[byte] = (linear if a & 0x80 else -linear) / 32768.0
    return mulaw, alaw


_MULAW, _ALAW = _g711_tables()


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


@dataclass(frozen=True)
class _WavFormat:
    tag: int
    channels: int
    rate: int
    bits: int
    block_align: int


def _corrupted() -> SimError:
    # Wording of the real API for undecodable uploads.
    return SimError(400, "Audio file might be corrupted or unsupported", param="file", code="invalid_value")


def _read_chunks(data: bytes) -> tuple[_WavFormat, bytes]:
    if len(data) < _RIFF_HEADER_BYTES or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _corrupted()
    fmt: _WavFormat | None = None
    offset = _RIFF_HEADER_BYTES
    while offset + _CHUNK_HEADER_BYTES <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body_start = offset + _CHUNK_HEADER_BYTES
        if chunk_id == b"fmt ":
            if size < _FMT_MIN_BYTES:
                raise _corrupted()
            tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from(
                "<HHIIHH", data, body_start
            )
            if tag == _TAG_EXTENSIBLE and size >= _EXTENSIBLE_FMT_MIN_BYTES:
                (tag,) = struct.unpack_from("<H", data, body_start + _SUBFORMAT_OFFSET)
            fmt = _WavFormat(tag, channels, rate, bits, block_align)
        elif chunk_id == b"data":
            if fmt is None:
                raise _corrupted()
            # Streamed WAVs carry a placeholder size; clamp to what was actually uploaded.
            return fmt, data[body_start : min(body_start + size, len(data))]
        offset = body_start + size + (size & 1)
    raise _corrupted()


def _decode(fmt: _WavFormat, raw: bytes) -> npt.NDArray[np.float32]:
    """Samples as float32 in [-1, 1], shape (frames, channels)."""
    if fmt.channels < 1 or fmt.rate < 1 or fmt.block_align < 1:
        raise _corrupted()
    usable = len(raw) - len(raw) % fmt.block_align
    raw = raw[:usable]
    samples: npt.NDArray[np.float32]
    if fmt.tag == _TAG_PCM and fmt.bits == 8:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif fmt.tag == _TAG_PCM and fmt.bits == 16:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif fmt.tag == _TAG_PCM and fmt.bits == 24:
        triples = np.frombuffer(raw, np.uint8).reshape(-1, _PCM24_BYTES).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    elif fmt.tag == _TAG_PCM and fmt.bits == 32:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    elif fmt.tag == _TAG_FLOAT and fmt.bits in (32, 64):
        samples = np.frombuffer(raw, "<f4" if fmt.bits == 32 else "<f8").astype(np.float32)
    elif fmt.tag in (_TAG_MULAW, _TAG_ALAW) and fmt.bits == 8:
        table = _MULAW if fmt.tag == _TAG_MULAW else _ALAW
        samples = table[np.frombuffer(raw, np.uint8)]
    else:
        raise _corrupted()
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
        fmt, raw = _read_chunks(data)
        samples = _decode(fmt, raw)
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
