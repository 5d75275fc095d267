"""A call's audio from the PBX: download its recordings (one PBX session per worker) and join them.

A call can have several recordings: a long recording split by a pause, or one per leg after a
transfer. They are joined in leg order into one WAV, so the call is transcribed and analysed as one
conversation and its content hash covers all of it. A single recording is passed through unchanged
(its hash is the recording file's own).
"""

from __future__ import annotations

import io
import logging
import tempfile
import wave
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from audiapro.analysis.audio import resample
from audiapro.analysis.models import call_label
from audiapro.analysis.wav import PCM16_BYTES, PCM16_SCALE, DecodedAudio, Samples, decode_wav
from audiapro.ucm.errors import UcmRecordingNotFound
from audiapro.warehouse import RecordingRef

log = logging.getLogger("audiapro.analysis")


class RecordingDownloader(Protocol):
    """What the fetcher needs from a PBX client (`audiapro.ucm.client.UcmClient` has it)."""

    def download_recording(self, recordfile: str, dest_dir: Path | str, *, action_type: str = "") -> Path:
        """Save one recording into ``dest_dir`` and return its path."""
        ...

    def close(self) -> None:
        """Log out and release the connection."""
        ...


class ClientLender(Protocol):
    """Lends PBX clients one call at a time (`audiapro.ucm.pool.ClientPool` does)."""

    def borrow(self) -> AbstractContextManager[RecordingDownloader]:
        """A client for the ``with`` block."""
        ...

    def close(self) -> None:
        """Close every client lent so far."""
        ...


def _encode(samples: Samples, rate: int) -> bytes:
    """16-bit PCM WAV of a (frames, channels) float signal."""
    pcm = np.clip(np.round(samples * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(samples.shape[1])
        writer.setsampwidth(PCM16_BYTES)
        writer.setframerate(rate)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def join_wavs(parts: Sequence[bytes]) -> bytes:
    """Join WAV files end to end into one 16-bit PCM WAV.

    Channel layouts are kept when all parts agree (two-channel parts stay stereo, so speaker roles
    survive); otherwise every part is downmixed to mono. Parts are resampled to the first one's rate.

    Args:
        parts: WAV files in playing order.

    Returns:
        The joined file; a single part is returned as given.

    Raises:
        ValueError: No parts.
        AudioFormatError: A part is not a decodable WAV file.
    """
    if not parts:
        raise ValueError("no recordings to join")
    if len(parts) == 1:
        return parts[0]
    decoded: list[DecodedAudio] = [decode_wav(part) for part in parts]
    rate = decoded[0].sample_rate
    channels = decoded[0].channels if len({a.channels for a in decoded}) == 1 else 1
    tracks: list[Samples] = []
    for audio in decoded:
        samples = audio.samples if channels > 1 else audio.samples.mean(axis=1, keepdims=True)
        columns = [resample(samples[:, i], audio.sample_rate, rate) for i in range(samples.shape[1])]
        tracks.append(np.stack(columns, axis=1).astype(np.float32))
    return _encode(np.concatenate(tracks, axis=0), rate)


class CallAudioFetcher:
    """Downloads a call's recordings through clients borrowed from a pool, and joins them.

    PBX clients are not thread-safe and every client is a PBX session, so worker threads borrow one
    from a small pool (``audiapro.ucm.pool.ClientPool``) for each call instead of each keeping its
    own: the analysis never holds more sessions than the pool's size, whatever its parallelism.

    Args:
        pool: The tenant's client pool; None for a tenant without a PBX (import-only), whose calls
            then have no retrievable audio. `close` closes it.
        keep: Called with the session and the joined audio of each call fetched, for a tenant that
            keeps recordings for a while (``audiapro.retention.recording_keeper``); None: the
            downloads are deleted once read, nothing stays on disk.
    """

    def __init__(self, pool: ClientLender | None, keep: Callable[[str, bytes], None] | None = None) -> None:
        self._pool = pool
        self._keep = keep

    def fetch(self, refs: Sequence[RecordingRef]) -> bytes | None:
        """The call's audio, or None when it has no recording the PBX can still deliver.

        Args:
            refs: The call's recordings in leg order (repeated paths are fetched once).

        Returns:
            WAV bytes, or None (no recordings, no PBX, or a recording the PBX no longer has).

        Raises:
            UcmError: The PBX could not be asked (transport, authentication, throttling) or sent
                something that is not a recording.
        """
        paths = list(dict.fromkeys((ref.path, ref.action_type) for ref in refs))
        if self._pool is None or not paths:
            return None
        parts: list[bytes] = []
        with tempfile.TemporaryDirectory(prefix="audiapro-rec-") as folder, self._pool.borrow() as client:
            for path, action_type in paths:
                try:
                    saved = client.download_recording(path, folder, action_type=action_type)
                except UcmRecordingNotFound:
                    # The message names the file by prefix and epoch only (no phone numbers).
                    log.warning("call %s: a recording is missing on the PBX", call_label(refs[0].session))
                    return None
                parts.append(saved.read_bytes())
                saved.unlink()
        audio = join_wavs(parts)
        if self._keep is not None:
            self._keep(refs[0].session, audio)
        return audio

    def close(self) -> None:
        """Close the pool's PBX clients (logging out, giving their session slots back)."""
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> CallAudioFetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
