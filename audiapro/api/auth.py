"""Bearer-token check for the admin endpoints (constant-time; the token is never logged)."""

from __future__ import annotations

import hmac

BEARER = "bearer"
#: Refuse to store tokens shorter than this (the CLI generates 43 characters).
MIN_TOKEN_CHARS = 24


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == BEARER and token else None


def token_matches(presented: str | None, expected: str | None) -> bool:
    """Whether ``presented`` equals ``expected``, compared in constant time.

    No token configured (``expected`` empty) never matches: the admin endpoints stay closed.
    """
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
