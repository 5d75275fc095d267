"""Configuration and fault knobs for the OpenAI API simulator.

Prices, limits and model lists are the late-2026 state described in `docs/openai-prices.md`; every one
is a field so a test or a CLI run can override it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MIB = 1024 * 1024

# Transcription models the 3.57 client knows (`types/audio_model.py`).
DEFAULT_TRANSCRIPTION_MODELS: tuple[str, ...] = (
    "gpt-transcribe",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "whisper-1",
    "gpt-4o-transcribe-diarize",
)

# Text models used for structured analysis; `gpt-6-luna` is the current cheap tier.
DEFAULT_TEXT_MODELS: tuple[str, ...] = (
    "gpt-6-luna",
    "gpt-5.6-luna",
    "gpt-5-nano",
    "gpt-4o-mini",
    "gpt-4.1-mini",
)

# Announced shutdown dates (docs/openai-prices.md); surfaced as `shutdown_date` by `GET /v1/models`.
DEFAULT_SHUTDOWN_DATES: Mapping[str, str] = {
    "whisper-1": "2027-02-26",
    "gpt-4o-transcribe": "2027-02-26",
    "gpt-4o-mini-transcribe": "2027-02-26",
    "gpt-4o-mini-transcribe-2025-12-15": "2027-02-26",
    "gpt-4o-transcribe-diarize": "2027-02-26",
    "gpt-5-nano": "2026-12-11",
    "gpt-4o-mini": "2027-01-14",
    "gpt-4.1-mini": "2027-01-14",
}

# USD per audio minute (docs/openai-prices.md; the gpt-4o-* figures are estimates).
DEFAULT_AUDIO_PRICE_PER_MINUTE: Mapping[str, float] = {
    "gpt-transcribe": 0.0045,
    "gpt-4o-transcribe": 0.006,
    "gpt-4o-mini-transcribe": 0.003,
    "gpt-4o-mini-transcribe-2025-12-15": 0.003,
    "gpt-4o-transcribe-diarize": 0.006,
    "whisper-1": 0.006,
}

# USD per 1M (input, output) tokens, standard tier.
DEFAULT_TEXT_PRICE_PER_MILLION: Mapping[str, tuple[float, float]] = {
    "gpt-6-luna": (0.10, 0.50),
    "gpt-5.6-luna": (0.20, 1.20),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-mini": (0.40, 1.60),
}

# Upload formats accepted by `/v1/audio/transcriptions` (create-params docstring plus `oga`).
DEFAULT_AUDIO_EXTENSIONS: tuple[str, ...] = (
    "flac",
    "m4a",
    "mp3",
    "mp4",
    "mpeg",
    "mpga",
    "oga",
    "ogg",
    "wav",
    "webm",
)

# The gpt-4o transcribe family caps output at ~2,000 tokens (docs/openai-prices.md); longer speech is cut.
DEFAULT_TRANSCRIPT_TOKEN_CAPS: Mapping[str, int] = {
    "gpt-4o-transcribe": 2000,
    "gpt-4o-mini-transcribe": 2000,
    "gpt-4o-mini-transcribe-2025-12-15": 2000,
}

# Maximum audio duration per model. Not in docs/openai-prices.md: remembered from real 400 errors of the
# gpt-4o transcribe family ("... longer than 1400 seconds ..."); unverified, hence configurable.
DEFAULT_MAX_AUDIO_SECONDS: Mapping[str, float] = {
    "gpt-4o-transcribe": 1400.0,
    "gpt-4o-mini-transcribe": 1400.0,
    "gpt-4o-mini-transcribe-2025-12-15": 1400.0,
    "gpt-4o-transcribe-diarize": 1400.0,
}


class FaultKind(StrEnum):
    """Kinds of injected faults, as counted in `OpenAIStats.faults`."""

    RATE_LIMIT = "rate_limit"
    INSUFFICIENT_QUOTA = "insufficient_quota"
    SERVER_ERROR = "server_error"
    HANG = "hang"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    BATCH_LINE_ERROR = "batch_line_error"


# Faults decided before the request is processed (the HTTP exchange fails).
TRANSPORT_FAULTS: tuple[FaultKind, ...] = (
    FaultKind.RATE_LIMIT,
    FaultKind.INSUFFICIENT_QUOTA,
    FaultKind.SERVER_ERROR,
    FaultKind.HANG,
)
# Faults that corrupt a 200 structured-output answer (sync and batch).
CONTENT_FAULTS: tuple[FaultKind, ...] = (FaultKind.INVALID_JSON, FaultKind.SCHEMA_VIOLATION)

# Endpoint names used by `OpenAIFaults.endpoints`.
EP_TRANSCRIPTIONS = "audio.transcriptions"
EP_RESPONSES = "responses"
EP_CHAT = "chat.completions"
EP_FILES = "files"
EP_BATCHES = "batches"
EP_MODELS = "models"
INFERENCE_ENDPOINTS: frozenset[str] = frozenset({EP_TRANSCRIPTIONS, EP_RESPONSES, EP_CHAT})


@dataclass(frozen=True)
class OpenAISimConfig:
    """Static behaviour of the simulator.

    Attributes:
        api_key: The only bearer token accepted. Never logged or echoed.
        seed: Seeds fault draws, ids and every pseudo-random output.
        batch_complete_after_polls: `GET /v1/batches/{id}` calls after which a batch is completed
            (0 = completed on the first retrieval).
        transcription_models: Allow-list for `/v1/audio/transcriptions`.
        text_models: Allow-list for `/v1/responses` and `/v1/chat/completions`.
        max_audio_bytes: Upload cap for audio files (413 above it).
        max_batch_file_bytes: Upload cap for `purpose=batch` files.
        max_batch_requests: Maximum lines in a batch input file.
        audio_extensions: Accepted audio file extensions.
        words_per_second: Speech rate of pseudo-transcripts (150 wpm = 2.5).
        window_s: Length of the analysis window used for voice detection and segments.
        silence_dbfs: RMS level below which a WAV window counts as silence.
        assumed_compressed_kbps: Bit rate used to estimate the duration of non-WAV uploads.
        audio_tokens_per_second: Audio tokens reported by token-billed transcription models.
        chars_per_token: Token estimate divisor (tokens ≈ characters / 4).
        batch_discount: Fraction of the standard price billed for batch requests.
        batch_shuffle_output: Shuffle batch output lines, as the real API does not keep input order.
        shutdown_dates: `shutdown_date` reported by `GET /v1/models`.
        audio_price_per_minute: USD per audio minute, by transcription model.
        text_price_per_million: USD per 1M (input, output) tokens, by text model.
        transcript_token_caps: Output-token cap per transcription model (text is cut there).
        max_audio_seconds: Maximum audio duration per transcription model (400 above it).
        diarize_chunking_threshold_s: Audio longer than this needs `chunking_strategy` on the
            diarize model.
    """

    api_key: str = field(repr=False)
    seed: int = 0
    batch_complete_after_polls: int = 2
    transcription_models: tuple[str, ...] = DEFAULT_TRANSCRIPTION_MODELS
    text_models: tuple[str, ...] = DEFAULT_TEXT_MODELS
    max_audio_bytes: int = 25 * MIB
    max_batch_file_bytes: int = 200 * MIB
    max_batch_requests: int = 50_000
    audio_extensions: tuple[str, ...] = DEFAULT_AUDIO_EXTENSIONS
    words_per_second: float = 2.5
    window_s: float = 2.0
    silence_dbfs: float = -60.0
    assumed_compressed_kbps: float = 32.0
    audio_tokens_per_second: float = 10.0
    chars_per_token: int = 4
    batch_discount: float = 0.5
    batch_shuffle_output: bool = True
    shutdown_dates: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SHUTDOWN_DATES))
    audio_price_per_minute: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_AUDIO_PRICE_PER_MINUTE)
    )
    text_price_per_million: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_TEXT_PRICE_PER_MILLION)
    )
    transcript_token_caps: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_TRANSCRIPT_TOKEN_CAPS)
    )
    max_audio_seconds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_AUDIO_SECONDS))
    diarize_chunking_threshold_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        if self.batch_complete_after_polls < 0:
            raise ValueError("batch_complete_after_polls must be >= 0")
        if self.words_per_second <= 0 or self.window_s <= 0 or self.chars_per_token <= 0:
            raise ValueError("words_per_second, window_s and chars_per_token must be positive")
        if not 0.0 <= self.batch_discount <= 1.0:
            raise ValueError("batch_discount must be within [0, 1]")


@dataclass(frozen=True)
class OpenAIFaults:
    """Fault-injection knobs; swap `OpenAISimulator.faults` at runtime to change them.

    Transport faults (`rate_limit_rate`, `insufficient_quota_rate`, `server_error_rate`,
    `hang_rate`) are drawn once per request to an endpoint in `endpoints`, so their rates must sum
    to at most 1. Content faults (`invalid_json_rate`, `schema_violation_rate`) are drawn for each
    200 structured-output answer, sync or batch line. `script` forces the next requests' faults
    deterministically (one entry per eligible request, `None` = no fault) before random draws resume.

    Attributes:
        rate_limit_rate: 429 `rate_limit_exceeded` with `retry-after` / `retry-after-ms` headers.
        retry_after_s: Delay advertised in those headers (the 3.57 client honours 0 < delay <= 120 s
            and refuses to retry above 120 s).
        insufficient_quota_rate: 429 `insufficient_quota` (not transient; no retry-after header).
        server_error_rate: 5xx `server_error`.
        server_error_status: Status code used for `server_error_rate` (500, 502, 503 ...).
        hang_rate: The server sleeps `hang_s` before answering (use a client timeout below it).
        hang_s: Length of a hang in seconds.
        hang_bills: After a hang, answer normally and bill (True) or drop the connection (False).
        invalid_json_rate: 200 whose output text is truncated, invalid JSON.
        schema_violation_rate: 200 whose JSON lacks a required field.
        batch_line_error_rate: A batch line fails with a 500 (goes to the error file).
        script: Faults forced on the next eligible requests, in order.
        endpoints: Endpoint names transport faults apply to (see `INFERENCE_ENDPOINTS`).
    """

    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    insufficient_quota_rate: float = 0.0
    server_error_rate: float = 0.0
    server_error_status: int = 500
    hang_rate: float = 0.0
    hang_s: float = 30.0
    hang_bills: bool = False
    invalid_json_rate: float = 0.0
    schema_violation_rate: float = 0.0
    batch_line_error_rate: float = 0.0
    script: tuple[FaultKind | None, ...] = ()
    endpoints: frozenset[str] = INFERENCE_ENDPOINTS

    def __post_init__(self) -> None:
        rates = {
            "rate_limit_rate": self.rate_limit_rate,
            "insufficient_quota_rate": self.insufficient_quota_rate,
            "server_error_rate": self.server_error_rate,
            "hang_rate": self.hang_rate,
            "invalid_json_rate": self.invalid_json_rate,
            "schema_violation_rate": self.schema_violation_rate,
            "batch_line_error_rate": self.batch_line_error_rate,
        }
        for name, rate in rates.items():
            if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
                raise ValueError(f"{name} must be within [0, 1], got {rate!r}")
        if sum(self.transport_rates().values()) > 1.0 + 1e-9:
            raise ValueError("transport fault rates must sum to at most 1")
        if self.invalid_json_rate + self.schema_violation_rate > 1.0 + 1e-9:
            raise ValueError("content fault rates must sum to at most 1")
        if self.retry_after_s < 0 or self.hang_s < 0:
            raise ValueError("retry_after_s and hang_s must be >= 0")
        if not 500 <= self.server_error_status <= 599:
            raise ValueError("server_error_status must be a 5xx code")

    def transport_rates(self) -> dict[FaultKind, float]:
        """Rates of the faults drawn before processing, in draw order."""
        return {
            FaultKind.RATE_LIMIT: self.rate_limit_rate,
            FaultKind.INSUFFICIENT_QUOTA: self.insufficient_quota_rate,
            FaultKind.SERVER_ERROR: self.server_error_rate,
            FaultKind.HANG: self.hang_rate,
        }

    def content_rates(self) -> dict[FaultKind, float]:
        """Rates of the faults that corrupt a structured 200 answer, in draw order."""
        return {
            FaultKind.INVALID_JSON: self.invalid_json_rate,
            FaultKind.SCHEMA_VIOLATION: self.schema_violation_rate,
        }
