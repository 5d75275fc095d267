"""`POST /v1/audio/transcriptions`: WAV uploads, `json` answers with deterministic pseudo-transcripts.

The audio hash picks a call scenario (refund, cancellation, appointment ...) whose cue words come
right after the greeting, so downstream analysis sees varied but reproducible outcomes. The text
length follows the voiced duration; silent windows produce no words.

About a third of the channels (drawn from the audio hash with a separate generator, so the other
words stay as they were) also read out personal data right after the cue: one of `PII_SCRIPTS`, kept
whole (never cut by the end of a voiced run), with card numbers spoken and written, phone numbers,
e-mail addresses, an SSN and a Luhn-invalid order number, so tests can prove what redaction removes
and what it keeps.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.multipart import MultipartForm
from audiapro.analysis.openai_simulator.stats import BilledRequest, StatsRecorder, fingerprint
from audiapro.analysis.wav import AudioFormatError, decode_wav

TRANSCRIPTIONS_PATH: Final = "/v1/audio/transcriptions"
#: Form fields the project's client sends (`keywords[]` only to hint models).
KNOWN_FIELDS: Final = frozenset({"model", "response_format", "language", "prompt", "keywords[]"})
MIN_AUDIO_SECONDS: Final = 0.1
DEFAULT_LANGUAGE: Final = "en"
SECONDS_DECIMALS: Final = 3
#: Share of phrases drawn from the scenario bank rather than the generic one.
SCENARIO_PHRASE_SHARE: Final = 0.45

GREETINGS: Final = (
    "Thank you for calling customer service, this is Alex speaking.",
    "Good morning, you're through to the support team, how can I help?",
)
SCENARIOS: Final[dict[str, tuple[str, ...]]] = {
    "refund": (
        "I was charged twice and I would like a refund please.",
        "The product arrived broken so I want my money back as a refund.",
    ),
    "cancel": (
        "I want to cancel my subscription effective today.",
        "Is there a fee if I cancel before the end of the term?",
    ),
    "appointment": (
        "I'd like to book an appointment for next Tuesday morning.",
        "Great, the appointment is confirmed for ten thirty.",
    ),
    "complaint": (
        "I want to make a formal complaint about the service.",
        "I'd like to speak to a manager about this complaint.",
    ),
    "billing": (
        "I have a question about the invoice I received this month.",
        "Why is my bill higher than usual?",
    ),
    "sales": ("I'm interested in upgrading to the business plan.", "Can you send me a quote by email?"),
    "support": (
        "My phone keeps dropping calls after a few minutes.",
        "I can't log in to the customer portal.",
    ),
}
#: Personal data read out in some calls (test card numbers pass the Luhn check; the order number fails it).
PII_SCRIPTS: Final = (
    "Sure, my card number is four one one one, one one one one, one one one one, one one one one, "
    "you can call me back on 415 555 2671 or email jane.doe@example.com.",
    "The card is 5555 5555 5555 4444 and my order number is 1234 5678 9012 3456, "
    "my phone is four one five, five five five, two six seven one.",
    "My card is double five double five, five five five five, five five five five, double four double "
    "four, my social security number is 536-22-1987 and my email is j.smith@example.org.",
)
#: Share of channels that read out one of `PII_SCRIPTS`.
PII_SHARE: Final = 0.35
GENERIC_PHRASES: Final = (
    "Let me pull up your account.",
    "One moment please while I check.",
    "Sure, no problem.",
    "I understand, let me look into that for you.",
    "Is there anything else I can help you with?",
    "Thank you, have a great day.",
)


def _corrupted() -> errors.SimError:
    # Wording of the real API for undecodable uploads.
    return errors.invalid("file", "Audio file might be corrupted or unsupported")


def _voiced_runs(data: bytes, config: OpenAISimConfig) -> tuple[float, list[float]]:
    """Duration and the lengths (seconds) of the runs of voiced windows of a WAV upload."""
    try:
        audio = decode_wav(data)
    except AudioFormatError:
        raise _corrupted() from None
    size = max(1, round(audio.sample_rate * config.window_s))
    threshold = 10.0 ** (config.silence_dbfs / 20.0)
    windows: list[tuple[bool, float]] = []
    for first in range(0, audio.samples.shape[0], size):
        block = audio.samples[first : first + size].astype(np.float64)
        rms = np.sqrt(np.mean(block * block, axis=0))
        windows.append((bool(np.max(rms) > threshold), block.shape[0] / audio.sample_rate))
    runs = [
        sum(s for _, s in group) for voiced, group in itertools.groupby(windows, key=lambda w: w[0]) if voiced
    ]
    return audio.seconds, runs


def _words(seed: int, digest: str) -> Iterator[str]:
    rng = random.Random(f"words:{seed}:{digest}")
    bank = SCENARIOS[rng.choice(sorted(SCENARIOS))]
    # The first scenario phrase comes right after the greeting so even short calls carry the cue.
    yield from rng.choice(GREETINGS).split()
    yield from rng.choice(bank).split()
    personal = random.Random(f"pii:{seed}:{digest}")
    if personal.random() < PII_SHARE:
        yield personal.choice(PII_SCRIPTS)  # one item: a number is never cut in half
    while True:
        yield from rng.choice(bank if rng.random() < SCENARIO_PHRASE_SHARE else GENERIC_PHRASES).split()


def _check(form: MultipartForm, config: OpenAISimConfig) -> tuple[str, bytes]:
    """The model and audio bytes of a valid request (400/404/413 otherwise)."""
    model = form.get("model")
    if not model:
        raise errors.missing_param("model")
    if model not in config.audio_price_per_minute:
        raise errors.invalid("model", f"Invalid model '{model}' for audio transcriptions.", "model_not_found")
    errors.only_known_fields(form.fields, KNOWN_FIELDS)
    if (form.get("response_format") or "json") != "json":
        raise errors.unsupported("response_format", f"response_format '{form.get('response_format')}'")
    if form.get_list("keywords") and model not in config.hint_models:
        raise errors.invalid(
            "keywords", f"keywords is not supported with model '{model}'.", "unsupported_parameter"
        )
    upload = form.files.get("file")
    if upload is None:
        raise errors.missing_param("file")
    if not upload.filename.lower().endswith(".wav"):
        raise errors.unsupported("file", "Audio other than WAV")
    if len(upload.data) > config.max_audio_bytes:
        # Wording of the real API's upload limit; it is not tied to a parameter.
        raise errors.SimError(
            413,
            f"Maximum content size limit ({config.max_audio_bytes}) exceeded ({len(upload.data)} bytes read)",
        )
    return model, upload.data


def transcribe(form: MultipartForm, config: OpenAISimConfig, recorder: StatsRecorder) -> dict[str, Any]:
    """Answer one transcription request and bill its audio duration.

    Raises:
        SimError: For a request the real API rejects, or one the simulator does not implement.
    """
    model, data = _check(form, config)
    seconds, runs = _voiced_runs(data, config)
    if seconds < MIN_AUDIO_SECONDS:
        raise errors.invalid(
            "file",
            f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds.",
            "audio_too_short",
        )
    digest = hashlib.sha256(data).hexdigest()
    words = _words(config.seed, digest)
    text = " ".join(
        " ".join(next(words) for _ in range(max(1, round(run * config.words_per_second)))) for run in runs
    )
    fields = {name: form.fields[name] for name in sorted(form.fields)}
    key = fingerprint(TRANSCRIPTIONS_PATH, fields, digest)
    cost = config.audio_cost(model, seconds)
    recorder.bill(BilledRequest(key, TRANSCRIPTIONS_PATH, model, False, seconds, 0, 0, cost))
    body: dict[str, Any] = {
        "text": text,
        "usage": {"type": "duration", "seconds": round(seconds, SECONDS_DECIMALS)},
    }
    if model in config.hint_models:
        # gpt-transcribe reports the languages it heard; none when nothing was said.
        body["languages"] = [{"code": form.get("language") or DEFAULT_LANGUAGE}] if text else []
    return body
