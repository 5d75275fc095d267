"""The one redaction rule: secret VALUES out of any text that may be stored, logged or shown.

Error texts end up in ``sync_state.last_error``, ``ingest_runs.error``, run states, artifacts and the
health report, and other libraries put credentials into theirs (a database URL with its password, a
request header, an echoed API key). :func:`redact` removes the values and keeps the words, so
"wrong password: check the API password" stays readable while ``password=hunter2`` does not. A value
is removed when it is unmistakably one:

* a secret the caller knows exactly (``secrets``: the PBX password, a session cookie, an API key);
* the password of a URL (``postgresql://user:***@host/db``);
* what is assigned to a secret name (``password=...``, ``token = ...``, ``"cookie": "..."``, a
  quoted value after ``password:``);
* the credentials of an ``Authorization`` header (``Authorization: Basic dXNlcjpw``);
* what follows a secret name and a colon when it is shaped like a credential rather than a word
  (it holds a digit or a symbol: ``token: abc123``, not ``password: check``);
* the credentials after ``Bearer``/``Basic``/``Digest`` elsewhere when they are shaped like one;
* anything shaped like an API key (``sk-...``, ``rk-...``, ``pk-...``).

A plain word after a secret name and a colon is read as prose and kept: that is the price of
readable messages, and no code here writes credentials in that form.

This module imports nothing of the project, so every layer (the UCM client included) can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

#: What a removed value is replaced with.
MASK: Final = "***"
#: Appended to a text cut at its maximum length.
ELLIPSIS: Final = "…"

#: Names whose value is a secret (``db_password``, ``api-key`` and ``X-Api-Key`` included).
_SECRET_NAME: Final = r"[\w-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|cookie|authorization)"
#: Characters that end a value: whitespace, quotes and the separators of headers, queries and JSON.
_VALUE: Final = r"[^\s\"',;&}]+"
_URL_PASSWORD: Final = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s]+@", re.IGNORECASE)
# `name=value`, `name = "value"`, `"name": "value"`, `name: 'value'`: a value by its syntax.
_ASSIGNED: Final = re.compile(
    rf"(?P<head>\b{_SECRET_NAME}[\"']?\s*(?:=\s*[\"']?|:\s*[\"']))(?P<value>{_VALUE})", re.IGNORECASE
)
# An Authorization header, with or without its scheme: the credentials by their syntax.
_AUTH_HEADER: Final = re.compile(
    rf"(?P<head>\bauthorization\s*[:=]\s*(?:(?:bearer|basic|digest)\s+)?)(?P<value>{_VALUE})", re.IGNORECASE
)
# `name: value` unquoted: a value only when shaped like a credential (see _is_credential).
_LABELLED: Final = re.compile(rf"(?P<head>\b{_SECRET_NAME}\s*:\s*)(?P<value>{_VALUE})", re.IGNORECASE)
_AUTH_SCHEME: Final = re.compile(rf"(?P<head>\b(?:bearer|basic|digest)\s+)(?P<value>{_VALUE})", re.IGNORECASE)
_KEY_LIKE: Final = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{4,}")
#: Sentence punctuation that may follow a word without making it a credential.
_TRAILING_PUNCTUATION: Final = ".!?)"
_CREDENTIAL_CHAR: Final = re.compile(r"[0-9_\-/+=~*%$#@.:]")


def redact(text: str, secrets: Iterable[str] = (), *, max_chars: int | None = None) -> str:
    """Remove secret values from ``text`` (see the module docstring) and cap its length.

    Args:
        text: Any message.
        secrets: Exact values to remove wherever they appear (empty ones are ignored).
        max_chars: Longest result; a longer text is cut and ends with ``…``. ``None``: no cap.

    Returns:
        The text with every secret value replaced by ``***``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    text = _AUTH_HEADER.sub(rf"\g<head>{MASK}", text)
    text = _ASSIGNED.sub(rf"\g<head>{MASK}", text)
    text = _LABELLED.sub(_mask_credential, text)
    text = _AUTH_SCHEME.sub(_mask_credential, text)
    text = _KEY_LIKE.sub(MASK, text)
    return text if max_chars is None else clip(text, max_chars)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ending with ``…`` when cut."""
    return text if len(text) <= max_chars else text[: max_chars - len(ELLIPSIS)] + ELLIPSIS


def _mask_credential(match: re.Match[str]) -> str:
    value = match["value"]
    return match["head"] + (MASK if _is_credential(value) else value)


def _is_credential(value: str) -> bool:
    """Whether a value reads as a credential rather than a word: it holds a digit or a symbol."""
    return value != MASK and bool(_CREDENTIAL_CHAR.search(value.rstrip(_TRAILING_PUNCTUATION)))
