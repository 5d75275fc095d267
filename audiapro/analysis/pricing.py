"""Price table for AI analysis: USD per audio minute (transcription) and per 1M tokens (text).

Model names and prices are configuration: the defaults below are the late-2026 list prices in
`docs/openai-prices.md` (check them before quoting to customers) and every value can be replaced by
passing another `PriceTable`. Prices are never looked up anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field

#: Default transcription model (the deprecated whisper/gpt-4o-transcribe family shuts down 2027-02-26).
DEFAULT_TRANSCRIPTION_MODEL: Final = "gpt-transcribe"
#: Default text model for structured analysis (the current cheap tier).
DEFAULT_TEXT_MODEL: Final = "gpt-6-luna"

SECONDS_PER_MINUTE: Final = 60.0
TOKENS_PER_PRICE_UNIT: Final = 1_000_000
#: Batch API requests are billed at 50% of the synchronous price.
DEFAULT_BATCH_PRICE_FACTOR: Final = 0.5


class TokenPrice(BaseModel):
    """USD per 1M tokens for one text model.

    Attributes:
        input: Uncached input tokens.
        output: Output tokens (reasoning tokens bill as output).
        cached_input: Cached input tokens; None when unknown, then billed as `input`.
    """

    model_config = ConfigDict(frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


# USD per audio minute. gpt-4o-* figures are estimates (token-priced models; docs/openai-prices.md).
DEFAULT_AUDIO_PRICE_PER_MINUTE: Final[dict[str, float]] = {
    "gpt-transcribe": 0.0045,
    "gpt-4o-transcribe": 0.006,
    "gpt-4o-transcribe-diarize": 0.006,
    "gpt-4o-mini-transcribe": 0.003,
    "whisper-1": 0.006,
}

DEFAULT_TEXT_PRICE_PER_MILLION: Final[dict[str, TokenPrice]] = {
    "gpt-6-luna": TokenPrice(input=0.10, cached_input=0.01, output=0.50),
    "gpt-5.6-luna": TokenPrice(input=0.20, cached_input=0.02, output=1.20),
    "gpt-5-nano": TokenPrice(input=0.05, output=0.40),
}


PriceT = TypeVar("PriceT")


class UnknownModelPriceError(KeyError):
    """A model has no entry in the price table (a configuration error, never priced as free)."""


class PriceTable(BaseModel):
    """Prices used for cost estimates and for the `cost_usd` of analysis records.

    Attributes:
        audio_per_minute: USD per audio minute by transcription model.
        text_per_million: USD per 1M tokens by text model.
        batch_price_factor: Fraction of the synchronous text price billed through the Batch API.
    """

    model_config = ConfigDict(frozen=True)

    audio_per_minute: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_AUDIO_PRICE_PER_MINUTE))
    text_per_million: dict[str, TokenPrice] = Field(
        default_factory=lambda: dict(DEFAULT_TEXT_PRICE_PER_MILLION)
    )
    batch_price_factor: float = Field(default=DEFAULT_BATCH_PRICE_FACTOR, ge=0, le=1)

    def audio_price(self, model: str) -> float:
        """USD per audio minute of `model`.

        Raises:
            UnknownModelPriceError: The model is not in the table.
        """
        return _price(self.audio_per_minute, model, "no audio price for transcription model")

    def text_price(self, model: str) -> TokenPrice:
        """Token prices of `model`.

        Raises:
            UnknownModelPriceError: The model is not in the table.
        """
        return _price(self.text_per_million, model, "no token price for text model")

    def audio_cost(self, model: str, seconds: float) -> float:
        """USD for transcribing `seconds` of audio with `model`."""
        return max(0.0, seconds) / SECONDS_PER_MINUTE * self.audio_price(model)

    def text_cost(
        self,
        model: str,
        input_tokens: float,
        output_tokens: float,
        *,
        cached_input_tokens: float = 0,
        batch: bool = False,
    ) -> float:
        """USD for one text request (or an estimate of one).

        Args:
            model: Text model.
            input_tokens: All input tokens, cached ones included (as the API reports them).
            output_tokens: Output tokens, reasoning included.
            cached_input_tokens: The part of `input_tokens` served from the prompt cache.
            batch: Billed through the Batch API.

        Returns:
            The cost in USD.
        """
        price = self.text_price(model)
        cached = min(max(0.0, cached_input_tokens), max(0.0, input_tokens))
        cached_rate = price.input if price.cached_input is None else price.cached_input
        cost = (
            (input_tokens - cached) * price.input + cached * cached_rate + output_tokens * price.output
        ) / TOKENS_PER_PRICE_UNIT
        return cost * self.batch_price_factor if batch else cost


def _price(table: Mapping[str, PriceT], model: str, missing: str) -> PriceT:
    """``table[model]``; an unknown model is a configuration error, never priced as free."""
    try:
        return table[model]
    except KeyError:
        raise UnknownModelPriceError(f"{missing} {model!r}") from None
