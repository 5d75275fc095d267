"""Error types of the analysis stage and credential-free error descriptions.

Error strings end up in records, logs and Prefect run states, so they are built from the exception's
class, status, code and message only (never request headers) and redacted by the project's one rule
(``audiapro.redaction``), which also removes anything shaped like an API key: the real API echoes a
masked key in 401 messages.
"""

from __future__ import annotations

from typing import Final

import openai

from audiapro.errors import describe_error
from audiapro.redaction import redact

MAX_ERROR_CHARS: Final = 500
# Statuses where the request itself was at fault (this call's audio or input), not the service.
_PER_CALL_STATUSES: Final = frozenset({400, 413, 415, 422})
# Codes that arrive with such a status but concern the configuration, so every call would fail.
_SERVICE_CODES: Final = frozenset({"model_not_found", "invalid_api_key", "insufficient_quota"})
# Statuses of a service error that a later retry can overcome (timeout, conflict, rate limit).
_TRANSIENT_STATUSES: Final = frozenset({408, 409, 429})
_SERVER_ERROR: Final = 500


class AnalysisServiceError(RuntimeError):
    """The AI service cannot be used right now (auth, quota, model, outage after retries).

    Raised instead of recording per-call failures, because every following call would fail the same
    way; the caller should stop and let the orchestrator retry later. The message is redacted.

    Attributes:
        status_code: HTTP status when there was one.
        code: API error code (e.g. `insufficient_quota`), when given.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code

    @property
    def transient(self) -> bool:
        """Whether retrying later can help (read by ``audiapro.errors.is_transient``): an outage or a
        rate limit can pass, a wrong key, an exhausted quota or an unknown model cannot."""
        if self.code in _SERVICE_CODES:
            return False
        return (
            self.status_code is None
            or self.status_code in _TRANSIENT_STATUSES
            or self.status_code >= _SERVER_ERROR
        )


class MalformedAnswerError(ValueError):
    """The text model kept returning answers that do not fit the schema."""


def describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """A one-line, credential-free description of an exception; SDK errors name status and code.

    Anything that is not an SDK status or connection error is described by
    :func:`audiapro.errors.describe_error`.
    """
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
        return describe_error(exc, secrets, max_chars=MAX_ERROR_CHARS)
    return redact(" ".join(text.split()), secrets, max_chars=MAX_ERROR_CHARS)


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
