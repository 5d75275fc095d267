"""Error descriptions and classification: one redaction rule that removes values and keeps words,
one ``is_transient`` behind every task's retry condition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.analysis.errors import AnalysisServiceError
from audiapro.errors import MAX_MESSAGE_CHARS, describe_error, is_transient
from audiapro.redaction import MASK, redact
from audiapro.ucm.errors import UcmHttpError, UcmTransportError, UcmWrongPasswordError, error_for_status
from audiapro.ucm.guard import UcmLoginBlocked
from audiapro.warehouse import TenantBusyError
from audiapro.warehouse.runs import MAX_ERROR_CHARS, redact_error
from tasks.pbx import PbxSessionsBusy
from tasks.support import retry_if_transient

#: Messages the pipeline really produces or stores, none holding a secret: they must stay as they are.
ORDINARY = [
    str(error_for_status(-37, "Wrong account or password!", action="login")),
    "wrong password: check the API password",
    "secret: check the api_key setting of the tenant",
    "the request had no bearer token",
    "the session cookie expired; logging in again",
    "no password supplied: put it in the URL or in ~/.pgpass",
    "token: expired.",
    "UCM action 'cdrapi' failed with status -6 (Cookie error)",
]

#: (text with a secret, the secret): each secret must be gone from the redacted text.
SECRETS = [
    ("could not connect to postgresql://ops:S3cret-pw@db.example:5432/calls", "S3cret-pw"),
    ("login failed: password=hunter2 user=cdrapi", "hunter2"),
    ("login failed: password = hunter", "hunter"),
    ('request {"action": "login", "token": "32abc5e6069bad8fd5f18079d769376e"}', "32abc5e6069bad8fd"),
    ('reply {"response": {"cookie": "sid743052864-1771597757"}}', "sid743052864"),
    ("token: abc123 cookie=sid-42", "abc123"),
    ("token: abc123 cookie=sid-42", "sid-42"),
    ("headers: Authorization: Bearer eyJhbGciOi.J9.abc", "eyJhbGciOi"),
    ("headers: authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Incorrect API key provided: sk-proj-abcd****wxyz", "sk-proj-abcd"),
    ("X-Api-Key: 0f3c9a7e11", "0f3c9a7e11"),
    ("db_password='plain words'", "plain"),
]


@pytest.mark.parametrize("message", ORDINARY)
def test_ordinary_messages_stay_readable(message: str) -> None:
    assert redact(message) == message
    assert redact_error(message) == message  # what sync_state and ingest_runs store


def test_the_wrong_password_advice_is_not_garbled() -> None:
    message = str(error_for_status(-37, action="login"))
    assert "check the API password of this user" in redact_error(message)


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secret_values_are_removed(text: str, secret: str) -> None:
    for redacted in (redact(text), redact_error(text)):
        assert secret not in redacted, redacted
        assert MASK in redacted


def test_the_words_around_a_secret_are_kept() -> None:
    assert redact("login failed: password=hunter2 user=cdrapi") == "login failed: password=*** user=cdrapi"
    assert redact("postgresql://ops:pw@db/calls") == "postgresql://ops:***@db/calls"
    assert redact("Authorization: Bearer abc.def1") == "Authorization: Bearer ***"


def test_exact_secrets_are_removed_wherever_they_appear() -> None:
    assert redact("the key plainwords leaked", ["plainwords", ""]) == "the key *** leaked"


def test_length_is_capped_after_redaction() -> None:
    text = redact("password=" + "x" * 50 + " " + "y" * 100, max_chars=40)
    assert len(text) == 40 and text.endswith("…") and "xxx" not in text
    assert len(redact_error("token: abc123 " + "x" * (2 * MAX_ERROR_CHARS))) == MAX_ERROR_CHARS


def test_describe_error_is_one_redacted_capped_line() -> None:
    exc = RuntimeError("connect to postgresql://u:pw1@h/db failed\nTraceback follows")
    assert describe_error(exc) == "RuntimeError: connect to postgresql://u:***@h/db failed"
    long = describe_error(ValueError("v" * 1000))
    assert long.startswith("ValueError: ") and len(long) == len("ValueError: ") + MAX_MESSAGE_CHARS
    assert describe_error(KeyError()) == "KeyError: "
    assert describe_error(OSError("key k-plain"), ["k-plain"]) == "OSError: key ***"


def _operational_error() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (UcmTransportError("connection reset"), True),
        (UcmHttpError("busy", 503), True),
        (UcmHttpError("no such path", 404), False),
        (UcmWrongPasswordError(-37), False),
        (UcmLoginBlocked(datetime(2026, 3, 2, tzinfo=UTC), "status -37 wrong password"), False),
        (_operational_error(), True),
        (TenantBusyError("tenant acme: lock taken"), True),
        (PbxSessionsBusy("every slot taken"), True),
        (AnalysisServiceError("outage", status_code=None), True),
        (AnalysisServiceError("rate limited", status_code=429), True),
        (AnalysisServiceError("server error", status_code=502), True),
        (AnalysisServiceError("quota", status_code=429, code="insufficient_quota"), False),
        (AnalysisServiceError("bad key", status_code=401, code="invalid_api_key"), False),
        (AnalysisServiceError("forbidden", status_code=403), False),
        (ValueError("bad data"), False),
    ],
)
def test_is_transient(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


class _FailedState:
    def __init__(self, exc: BaseException) -> None:
        self._exc = exc

    def result(self) -> Any:
        raise self._exc


def test_the_tasks_retry_condition_follows_is_transient() -> None:
    assert retry_if_transient(None, None, _FailedState(TenantBusyError("busy")))
    assert not retry_if_transient(None, None, _FailedState(UcmWrongPasswordError(-37)))
