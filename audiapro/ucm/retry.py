"""Retry policy for transport-level failures (HTTP 5xx, timeouts, connection errors)."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

#: Total attempts per request, the first included.
DEFAULT_MAX_ATTEMPTS = 4
#: Delay before the first retry; doubled for every further retry.
DEFAULT_BASE_DELAY_S = 1.0
#: Upper bound of any single backoff delay.
DEFAULT_MAX_DELAY_S = 30.0
#: Relative jitter: a delay d becomes uniform in [d * (1 - jitter), d * (1 + jitter)], capped.
DEFAULT_JITTER = 0.5


class RetryPolicy(BaseModel):
    """Bounded exponential backoff with jitter.

    Jitter spreads retries of several workers hitting the same PBX, which serializes requests
    internally and throttles bursts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=20)
    base_delay_s: float = Field(default=DEFAULT_BASE_DELAY_S, ge=0)
    max_delay_s: float = Field(default=DEFAULT_MAX_DELAY_S, ge=0)
    jitter: float = Field(default=DEFAULT_JITTER, ge=0, le=1)

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before a retry.

        Args:
            retry_number: 1 for the first retry, 2 for the second, ...
            rng: Random source (injected so tests are deterministic).

        Returns:
            The delay in seconds, never above ``max_delay_s``.
        """
        raw = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, retry_number - 1))
        spread = raw * self.jitter * (2 * rng.random() - 1)
        return max(0.0, min(self.max_delay_s, raw + spread))
