"""OpenAI-style error envelopes: `{"error": {"message", "type", "param", "code"}}`.

Messages copy the wording of the real API where it is well known, but never contain the API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"

# Code used when a request is valid for OpenAI but outside what the simulator implements.
UNSUPPORTED_BY_SIMULATOR = "unsupported_by_simulator"


class SimError(Exception):
    """An API error the simulator answers with instead of a 200.

    Attributes:
        status: HTTP status code.
        message: Human-readable message (`error.message`).
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


def missing_param(name: str) -> SimError:
    """400 for a missing required parameter."""
    return SimError(
        400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def invalid_value(param: str, message: str) -> SimError:
    """400 for a parameter with an unacceptable value."""
    return SimError(400, message, param=param, code="invalid_value")


def invalid_type(param: str, expected: str) -> SimError:
    """400 for a parameter of the wrong JSON type."""
    return SimError(
        400, f"Invalid type for '{param}': expected {expected}.", param=param, code="invalid_type"
    )


def unsupported_value(param: str, value: object, supported: Sequence[str]) -> SimError:
    """400 for a value outside a fixed set."""
    allowed = ", ".join(f"'{s}'" for s in supported)
    return SimError(
        400,
        f"Invalid value: '{value}'. Supported values are: {allowed}.",
        param=param,
        code="unsupported_value",
    )


def unsupported_by_simulator(param: str, what: str) -> SimError:
    """400 for features the real API has but the simulator does not implement."""
    return SimError(
        400, f"{what} is not supported by the OpenAI simulator.", param=param, code=UNSUPPORTED_BY_SIMULATOR
    )


def model_not_found(model: str) -> SimError:
    """404 for an unknown model, worded as the real API does."""
    return SimError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def not_found(kind: str, object_id: str, param: str) -> SimError:
    """404 for an unknown file or batch id."""
    return SimError(404, f"No such {kind}: {object_id}", param=param)


def invalid_url(method: str, path: str) -> SimError:
    """404 for an unknown route, worded as the real API does."""
    return SimError(404, f"Invalid URL ({method} {path})")


def invalid_api_key() -> SimError:
    """401 for a wrong bearer token. Unlike the real API it does not echo a masked key."""
    return SimError(
        401,
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def missing_api_key() -> SimError:
    """401 when no bearer token is sent."""
    return SimError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def invalid_json_body() -> SimError:
    """400 for a body that is not JSON."""
    return SimError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
        "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
        "JSON.)",
    )
