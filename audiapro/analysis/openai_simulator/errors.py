"""OpenAI-style error envelopes: `{"error": {"message", "type", "param", "code"}}`.

Messages copy the wording of the real API where it is well known, but never contain the API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

INVALID_REQUEST: Final = "invalid_request_error"
SERVER_ERROR: Final = "server_error"
#: Code of a request the real API may accept but the simulator does not implement.
UNSUPPORTED_BY_SIMULATOR: Final = "unsupported_by_simulator"


class SimError(Exception):
    """An API error the simulator answers with instead of a 200.

    Attributes:
        status: HTTP status code.
        message: `error.message`.
        type: `error.type`, e.g. `invalid_request_error`.
        param: `error.param`, the offending request parameter if any.
        code: `error.code`, a machine-readable code if any.
        headers: Extra response headers (e.g. `retry-after`).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error envelope."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(param: str | None, message: str, code: str = "invalid_value", status: int = 400) -> SimError:
    """A 400 (or `status`) for a request the real API rejects too."""
    return SimError(status, message, param=param, code=code)


def missing_param(name: str) -> SimError:
    """400 for a missing required parameter."""
    return invalid(name, f"Missing required parameter: '{name}'.", "missing_required_parameter")


def unsupported(param: str, what: str) -> SimError:
    """400 for something the project's client never sends, so the simulator does not fake it."""
    return invalid(param, f"{what} is not supported by the OpenAI simulator.", UNSUPPORTED_BY_SIMULATOR)


def only_known_fields(body: Mapping[str, Any], known: frozenset[str]) -> None:
    """400 `unsupported_by_simulator` for the first request field outside `known`."""
    for name in body:
        if name not in known:
            raise unsupported(name, f"Parameter '{name}'")


def model_not_found(model: str) -> SimError:
    """404 for an unknown model, worded as the real API does."""
    return invalid(
        "model",
        f"The model `{model}` does not exist or you do not have access to it.",
        "model_not_found",
        404,
    )


def not_found(kind: str, object_id: str, param: str) -> SimError:
    """404 for an unknown file or batch id."""
    return SimError(404, f"No such {kind}: {object_id}", param=param)
