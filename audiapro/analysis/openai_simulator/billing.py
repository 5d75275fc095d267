"""Turns successful requests into `BilledRequest` entries with an estimated cost."""

from __future__ import annotations

from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.stats import BilledRequest, StatsRecorder

SECONDS_PER_MINUTE = 60.0
TOKENS_PER_PRICE_UNIT = 1_000_000


class Biller:
    """Prices usage with the configured tables and records it.

    Args:
        config: Simulator configuration (price tables, batch discount).
        recorder: Where billed requests are stored.
    """

    def __init__(self, config: OpenAISimConfig, recorder: StatsRecorder) -> None:
        self._config = config
        self._recorder = recorder

    def audio(
        self,
        *,
        fingerprint: str,
        model: str,
        seconds: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> BilledRequest:
        """Bill a transcription (priced per audio minute, as docs/openai-prices.md lists it)."""
        price = self._config.audio_price_per_minute.get(model, 0.0)
        entry = BilledRequest(
            fingerprint=fingerprint,
            endpoint="/v1/audio/transcriptions",
            model=model,
            batch=False,
            audio_seconds=seconds,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=seconds / SECONDS_PER_MINUTE * price,
        )
        self._recorder.bill(entry)
        return entry

    def text(
        self,
        *,
        fingerprint: str,
        endpoint: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        batch: bool,
    ) -> BilledRequest:
        """Bill a text request; batch requests get the configured discount."""
        price_in, price_out = self._config.text_price_per_million.get(model, (0.0, 0.0))
        cost = (input_tokens * price_in + output_tokens * price_out) / TOKENS_PER_PRICE_UNIT
        if batch:
            cost *= self._config.batch_discount
        entry = BilledRequest(
            fingerprint=fingerprint,
            endpoint=endpoint,
            model=model,
            batch=batch,
            audio_seconds=0.0,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
        )
        self._recorder.bill(entry)
        return entry
