"""Static configuration of the OpenAI API simulator: key, seed, models, limits and prices.

Prices and models are the late-2026 state described in `docs/openai-prices.md`. They are kept here,
apart from the analyzer's own `PriceTable`, so the simulator's billing log is an independent
record of what a run would have paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

MIB: Final = 1024 * 1024
SECONDS_PER_MINUTE: Final = 60.0
TOKENS_PER_PRICE_UNIT: Final = 1_000_000

# USD per audio minute, by transcription model.
DEFAULT_AUDIO_PRICE_PER_MINUTE: Final[Mapping[str, float]] = {
    "gpt-transcribe": 0.0045,
    "gpt-4o-transcribe": 0.006,
    "gpt-4o-mini-transcribe": 0.003,
    "whisper-1": 0.006,
}
# USD per 1M (input, output) tokens, standard tier, by text model.
DEFAULT_TEXT_PRICE_PER_MILLION: Final[Mapping[str, tuple[float, float]]] = {
    "gpt-6-luna": (0.10, 0.50),
    "gpt-5.6-luna": (0.20, 1.20),
    "gpt-5-nano": (0.05, 0.40),
}
DEFAULT_TRANSCRIPTION_MODELS: Final = tuple(DEFAULT_AUDIO_PRICE_PER_MINUTE)
DEFAULT_TEXT_MODELS: Final = tuple(DEFAULT_TEXT_PRICE_PER_MILLION)
#: Models that take `keywords[]` hints and report detected `languages`.
DEFAULT_HINT_MODELS: Final = frozenset({"gpt-transcribe"})


@dataclass(frozen=True)
class OpenAISimConfig:
    """Static behaviour of the simulator.

    Attributes:
        api_key: The only bearer token accepted. Never logged or echoed.
        seed: Seeds fault draws, ids and every pseudo-random output.
        batch_complete_after_polls: `GET /v1/batches/{id}` calls after which a batch is completed
            (0 = completed on the first retrieval).
        max_audio_bytes: Upload cap of `/v1/audio/transcriptions` (413 above it).
        words_per_second: Speech rate of pseudo-transcripts (150 words a minute = 2.5).
        window_s: Length of the windows in which speech is detected.
        silence_dbfs: RMS level below which a window counts as silence.
        chars_per_token: Token estimate divisor (tokens ≈ characters / 4).
        batch_discount: Share of the standard price billed for Batch API requests.
        hint_models: Transcription models that accept `keywords[]`.
        audio_price_per_minute: USD per audio minute; its keys are the transcription models.
        text_price_per_million: USD per 1M (input, output) tokens; its keys are the text models.
    """

    api_key: str = field(repr=False)
    seed: int = 0
    batch_complete_after_polls: int = 2
    max_audio_bytes: int = 25 * MIB
    words_per_second: float = 2.5
    window_s: float = 2.0
    silence_dbfs: float = -60.0
    chars_per_token: int = 4
    batch_discount: float = 0.5
    hint_models: frozenset[str] = DEFAULT_HINT_MODELS
    audio_price_per_minute: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_AUDIO_PRICE_PER_MINUTE)
    )
    text_price_per_million: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_TEXT_PRICE_PER_MILLION)
    )

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must be a non-empty string")
        if self.batch_complete_after_polls < 0:
            raise ValueError("batch_complete_after_polls must be >= 0")
        if self.words_per_second <= 0 or self.window_s <= 0 or self.chars_per_token <= 0:
            raise ValueError("words_per_second, window_s and chars_per_token must be positive")
        if not 0.0 <= self.batch_discount <= 1.0:
            raise ValueError("batch_discount must be within [0, 1]")

    def audio_cost(self, model: str, seconds: float) -> float:
        """USD for `seconds` of audio transcribed by `model`."""
        return seconds / SECONDS_PER_MINUTE * self.audio_price_per_minute[model]

    def text_cost(self, model: str, input_tokens: int, output_tokens: int, *, batch: bool) -> float:
        """USD for one text request (at the batch discount when `batch`)."""
        price_in, price_out = self.text_price_per_million[model]
        cost = (input_tokens * price_in + output_tokens * price_out) / TOKENS_PER_PRICE_UNIT
        return cost * self.batch_discount if batch else cost
