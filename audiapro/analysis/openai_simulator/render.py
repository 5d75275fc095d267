"""Renderers for the whisper-style transcription formats (srt, vtt, verbose_json)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audiapro.analysis.openai_simulator.audio import AudioInfo
from audiapro.analysis.openai_simulator.transcript import PseudoTranscript, TranscriptSegment

LANGUAGE_NAMES = {"en": "english", "es": "spanish", "fr": "french", "de": "german", "pt": "portuguese"}
SECONDS_DECIMALS = 3
# Plausible constants for the verbose_json segment statistics (whisper reports them per segment).
AVG_LOGPROB = -0.25
COMPRESSION_RATIO = 1.4
NO_SPEECH_PROB = 0.01
TOKEN_ID_BASE = 1000
TOKEN_ID_SPAN = 50_000


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def render_srt(segments: Sequence[TranscriptSegment]) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{index}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
        for index, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def render_vtt(segments: Sequence[TranscriptSegment]) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def _words(segment: TranscriptSegment) -> list[dict[str, Any]]:
    words = segment.text.split()
    step = (segment.end - segment.start) / max(1, len(words))
    return [
        {
            "word": word,
            "start": round(segment.start + i * step, SECONDS_DECIMALS),
            "end": round(segment.start + (i + 1) * step, SECONDS_DECIMALS),
        }
        for i, word in enumerate(words)
    ]


def verbose_body(
    info: AudioInfo,
    transcript: PseudoTranscript,
    language: str,
    granularities: Sequence[str],
    usage: dict[str, Any],
    chars_per_token: int,
) -> dict[str, Any]:
    """The `verbose_json` body (TranscriptionVerbose)."""
    segments = [
        {
            "id": index,
            "seek": 0,
            "start": round(s.start, SECONDS_DECIMALS),
            "end": round(s.end, SECONDS_DECIMALS),
            "text": " " + s.text,
            # Stable fake token ids, about one per `chars_per_token` characters.
            "tokens": [
                TOKEN_ID_BASE + sum(map(ord, s.text[i : i + chars_per_token])) % TOKEN_ID_SPAN
                for i in range(0, len(s.text), chars_per_token)
            ],
            "temperature": 0.0,
            "avg_logprob": AVG_LOGPROB,
            "compression_ratio": COMPRESSION_RATIO,
            "no_speech_prob": NO_SPEECH_PROB,
        }
        for index, s in enumerate(transcript.segments)
    ]
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(language, language),
        "duration": round(info.duration_s, SECONDS_DECIMALS),
        "text": transcript.text,
        "usage": usage,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = segments
    if "word" in granularities:
        body["words"] = [w for s in transcript.segments for w in _words(s)]
    return body
