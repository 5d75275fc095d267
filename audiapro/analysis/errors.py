"""Error types of the analysis stage and credential-free error descriptions.

Error strings end up in records, logs and Prefect run states, so they are built from the exception's
class, status, code and message only (never request headers) and scrubbed of anything that looks
like an API key: the real API echoes a masked key in 401 messages.
"""

from __future__ import annotations

import re
from typing import Final

import openai

MAX_ERROR_CHARS: Final = 500
_KEY_LIKE: Final = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-*.]{4,}")
_BEARER: Final = re.compile(r"(?i)bearer\s+\S+")
_MASK: Final = "***"
# Statuses where the request itself was at fault (this call's audio or input), not the service.
_PER_CALL_STATUSES: Final = frozenset({400, 413, 415, 422})
# Codes that arrive with such a status but concern the configuration, so every call would fail.
_SERVICE_CODES: Final = frozenset({"model_not_found", "invalid_api_key", "insufficient_quota"})


class AnalysisServiceError(RuntimeError):
    """The AI service cannot be used right now (auth, quota, model, outage after retries).

    Raised instead of recording per-call failures, because every following call would fail the same
    way; the caller should stop and let the orchestrator retry later. The message is scrubbed.

    Attributes:
        status_code: HTTP status when there was one.
        code: API error code (e.g. `insufficient_quota`), when given.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class MalformedAnswerError(ValueError):
    """The text model kept returning answers that do not fit the schema."""


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove API keys and bearer tokens from `text` and cap its length.

    Args:
        text: Any message.
        secrets: Exact values to remove as well (e.g. the client's key).

    Returns:
        The cleaned text.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    text = _BEARER.sub(f"Bearer {_MASK}", _KEY_LIKE.sub(_MASK, text))
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


def describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A one-line, credential-free description of an exception."""
    if isinstance(exc, openai.APIStatusError):
        code = f" {exc.code}" if exc.code else ""
        # The API's own message, without the SDK's "Error code: NNN - {body}" wrapping.
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") if isinstance(body.get("message"), str) else exc.message
        text = f"{type(exc).__name__}: HTTP {exc.status_code}{code}: {message}"
    elif isinstance(exc, openai.APIConnectionError):
        # The message is generic; the request (and its headers) is deliberately not rendered.
        text = f"{type(exc).__name__}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(" ".join(text.split()), secrets)


def is_per_call(exc: openai.OpenAIError) -> bool:
    """True when the error concerns this request only (so it becomes a failed record)."""
    return (
        isinstance(exc, openai.APIStatusError)
        and exc.status_code in _PER_CALL_STATUSES
        and exc.code not in _SERVICE_CODES
    )


def service_error(exc: openai.OpenAIError, secrets: tuple[str, ...] = ()) -> AnalysisServiceError:
    """Wrap an SDK error as `AnalysisServiceError` (raise it `from None` to drop the request)."""
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    code = getattr(exc, "code", None)
    return AnalysisServiceError(
        describe(exc, secrets), status_code=status, code=code if isinstance(code, str) else None
    )
