"""WAV reading and writing with numpy.

Decoding uses a small RIFF chunk reader instead of stdlib `wave`, which refuses
WAVE_FORMAT_EXTENSIBLE and G.711 (µ-law/A-law) files that PBXs and ffmpeg write; `wave` is used only
to encode, where the format is ours to choose (mono 16-bit PCM). The chunk reader (`parse_wav`) and
the sample decoder (`decode_samples`) are public so that the OpenAI simulator can accept the same files
plus the few encodings only it needs.
"""

from __future__ import annotations

import io
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

WAV_HEADER_BYTES: Final = 44
PCM16_BYTES: Final = 2
PCM16_SCALE: Final = 32768.0
PCM8_OFFSET: Final = 128.0
# WAVE format tags and fmt-chunk layout.
TAG_PCM: Final = 0x0001
TAG_FLOAT: Final = 0x0003
_TAG_ALAW: Final = 0x0006
_TAG_MULAW: Final = 0x0007
_TAG_EXTENSIBLE: Final = 0xFFFE
_EXTENSIBLE_SUBFORMAT_OFFSET: Final = 24
_FMT_MIN_BYTES: Final = 16
_EXTENSIBLE_FMT_BYTES: Final = 40

Samples = npt.NDArray[np.float32]


class AudioFormatError(ValueError):
    """The bytes are not a WAV file this module can decode."""


@dataclass(frozen=True)
class WavFormat:
    """The fmt chunk of a WAV file (WAVE_FORMAT_EXTENSIBLE resolved to its sub-format).

    Attributes:
        tag: WAVE format tag (1 PCM, 3 IEEE float, 6 A-law, 7 µ-law).
        channels: Channel count.
        rate: Samples per second.
        bits: Bits per sample.
        block_align: Bytes per frame (all channels).
    """

    tag: int
    channels: int
    rate: int
    bits: int
    block_align: int


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples.

    Attributes:
        samples: float32 in [-1, 1], shape (frames, channels).
        sample_rate: Samples per second.
    """

    samples: Samples
    sample_rate: int

    @property
    def channels(self) -> int:
        """Channel count."""
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        """Duration."""
        return self.samples.shape[0] / self.sample_rate


def _g711_decode(codes: npt.NDArray[np.uint8], *, mulaw: bool) -> Samples:
    """Expand G.711 µ-law or A-law bytes to floats (ITU-T G.711, vectorized)."""
    if mulaw:
        inverted = (~codes).astype(np.int32) & 0xFF
        exponent = (inverted >> 4) & 0x07
        magnitude = ((((inverted & 0x0F) << 3) + 0x84) << exponent) - 0x84
        signed = np.where(inverted & 0x80, -magnitude, magnitude)
    else:
        toggled = codes.astype(np.int32) ^ 0x55
        exponent = (toggled >> 4) & 0x07
        mantissa = toggled & 0x0F
        magnitude = np.where(
            exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
        )
        # A-law stores positive samples with the sign bit set.
        signed = np.where(toggled & 0x80, magnitude, -magnitude)
    return (signed / PCM16_SCALE).astype(np.float32)


def _parse_riff(data: bytes) -> tuple[WavFormat, bytes]:
    """The format and the sample bytes of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    fmt: WavFormat | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < _FMT_MIN_BYTES or body + size > len(data):
                raise AudioFormatError("truncated fmt chunk")
            tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _TAG_EXTENSIBLE and size >= _EXTENSIBLE_FMT_BYTES:
                (tag,) = struct.unpack_from("<H", data, body + _EXTENSIBLE_SUBFORMAT_OFFSET)
            fmt = WavFormat(tag, channels, rate, bits, align)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("data chunk before fmt chunk")
            # Recorders that stream to disk may leave a placeholder size; read what is there.
            return fmt, data[body : min(body + size, len(data))]
        offset = body + size + (size & 1)  # chunks are word aligned
    raise AudioFormatError("no data chunk")


def parse_wav(data: bytes) -> tuple[WavFormat, bytes]:
    """The format of a RIFF/WAVE file and its sample bytes, cut to whole frames.

    Raises:
        AudioFormatError: Not a RIFF/WAVE file, or its chunks or format are invalid.
    """
    fmt, raw = _parse_riff(data)
    if fmt.channels < 1 or fmt.rate < 1 or fmt.block_align < 1:
        raise AudioFormatError("invalid fmt chunk")
    return fmt, raw[: len(raw) - len(raw) % fmt.block_align]


def decode_samples(fmt: WavFormat, raw: bytes) -> Samples:
    """Samples of PCM 8/16-bit or G.711 µ-law/A-law sample bytes: float32 in [-1, 1], (frames, channels).

    Raises:
        AudioFormatError: Another encoding.
    """
    tag, bits = fmt.tag, fmt.bits
    if tag == TAG_PCM and bits == 16:
        flat = np.frombuffer(raw, "<i2").astype(np.float32) / PCM16_SCALE
    elif tag == TAG_PCM and bits == 8:
        flat = (np.frombuffer(raw, np.uint8).astype(np.float32) - PCM8_OFFSET) / PCM8_OFFSET
    elif tag in (_TAG_MULAW, _TAG_ALAW) and bits == 8:
        flat = _g711_decode(np.frombuffer(raw, np.uint8), mulaw=tag == _TAG_MULAW)
    else:
        raise AudioFormatError(f"unsupported WAV encoding (format tag {tag:#06x}, {bits} bits)")
    return flat.reshape(-1, fmt.channels)


def decode_wav(data: bytes) -> DecodedAudio:
    """Decode WAV bytes: PCM 8/16-bit or G.711 µ-law/A-law, any channel count.

    Raises:
        AudioFormatError: Not a WAV file, or an unsupported encoding.
    """
    fmt, raw = parse_wav(data)
    return DecodedAudio(decode_samples(fmt, raw), fmt.rate)


def read_wav(source: bytes | str | os.PathLike[str]) -> DecodedAudio:
    """Decode WAV bytes, or a WAV file given by path."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return decode_wav(data)


def encode_wav(signal: Samples, sample_rate: int) -> bytes:
    """Encode a 1-D float signal as mono 16-bit PCM WAV bytes."""
    pcm = np.clip(np.round(signal * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(PCM16_BYTES)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()
