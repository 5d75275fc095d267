"""UcmClient transport, authentication and status handling against a MockTransport fake PBX."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import truststore
from pydantic import SecretStr, ValidationError

from audiapro.ucm.client import UcmClient, UcmConnection, build_cdr_query
from audiapro.ucm.errors import (
    UcmApiError,
    UcmAuthError,
    UcmConfigError,
    UcmEndpointError,
    UcmHttpError,
    UcmLoginBannedError,
    UcmPagingError,
    UcmPermissionError,
    UcmResponseError,
    UcmSessionError,
    UcmThrottledError,
    UcmTlsError,
    UcmTransientApiError,
    UcmTransportError,
    UcmUnknownUserError,
    UcmWrongPasswordError,
    is_transient_error,
)
from audiapro.ucm.guard import MemoryLoginGuard, UcmLoginBlocked
from audiapro.ucm.retry import RetryPolicy
from audiapro.ucm.timewindow import LocalWindow
from tests.unit.fakepbx_support import CHALLENGE, PASSWORD, FakePbx, flat_leg, make_client

START = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def status_reply(code: int, **response: str) -> dict[str, object]:
    return {"status": code, "response": dict(response)}


# ------------------------------------------------------------------------------------ handshake


def test_handshake_envelope_token_and_cookie_in_body() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx)
    client.call("getSystemStatus")
    challenge, login, status = pbx.requests
    assert challenge == {"action": "challenge", "user": "cdrapi", "version": "1.0"}
    assert login["token"] == hashlib.md5((CHALLENGE + PASSWORD).encode()).hexdigest()
    assert login["user"] == "cdrapi" and "url" not in login
    assert status["cookie"] == next(iter(pbx.valid_cookies))
    for request in pbx.http_requests:
        assert request.method == "POST"
        assert str(request.url) == "https://pbx.example:8443/api"
        assert request.headers["content-type"] == "application/json;charset=UTF-8"
        assert "cookie" not in request.headers  # the session travels in the JSON body only


def test_login_is_lazy_and_reused() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx)
    assert pbx.requests == []
    client.call("getSystemStatus")
    client.call("getSystemStatus")
    assert pbx.count("login") == 1


def test_wrong_password_exactly_one_login_attempt() -> None:
    pbx = FakePbx(password="something-else")
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmWrongPasswordError) as info:
        client.fetch_cdrs(START, END)
    assert pbx.count("login") == 1
    assert info.value.code == -37
    assert "API password" in str(info.value) and "remain_num=4" in str(info.value)
    # A second use of the same client must not hit the PBX's login counter again.
    with pytest.raises(UcmWrongPasswordError):
        client.fetch_cdrs(START, END)
    assert pbx.count("login") == 1 and pbx.count("challenge") == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "error", "needle"),
    [
        (-37, UcmWrongPasswordError, "API password"),
        (-68, UcmLoginBannedError, "Login Security"),
        (-70, UcmLoginBannedError, "remain_time"),
        (-71, UcmUnknownUserError, "API user name"),
        (-47, UcmPermissionError, "permitted IPs"),
    ],
)
def test_login_errors_are_typed_and_not_retried(code: int, error: type[Exception], needle: str) -> None:
    pbx = FakePbx()
    pbx.script("login", {"status": code, "response": {"remain_time": "300"}, "remain_num": "0"})
    client, sleeps = make_client(pbx)
    with pytest.raises(error) as info:
        client.call("getSystemStatus")
    assert needle in str(info.value)
    assert "remain_time=300s" in str(info.value) and "remain_num=0" in str(info.value)
    assert pbx.count("login") == 1 and sleeps == []


def test_counters_at_top_level() -> None:
    pbx = FakePbx()
    pbx.script("login", {"status": -37, "remain_num": 2, "remain_time": 0})
    client, _ = make_client(pbx)
    with pytest.raises(UcmWrongPasswordError) as info:
        client.login()
    assert info.value.remain_num == "2" and info.value.remain_time == "0"


def test_unknown_user_on_challenge() -> None:
    pbx = FakePbx(user="other")
    client, _ = make_client(pbx)
    with pytest.raises(UcmUnknownUserError):
        client.login()
    assert pbx.count("login") == 0


def test_permission_error_on_action() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", status_reply(-47))
    client, _ = make_client(pbx)
    with pytest.raises(UcmPermissionError):
        client.call("getSystemStatus")


def test_login_transport_failure_restarts_with_fresh_challenge() -> None:
    pbx = FakePbx()
    pbx.script("login", httpx.ReadTimeout("lost reply"))
    client, sleeps = make_client(pbx)
    client.call("getSystemStatus")
    # The single-use token is never re-sent: a new challenge precedes the second login.
    assert pbx.actions() == ["challenge", "login", "challenge", "login", "getSystemStatus"]
    assert len(sleeps) == 1


def test_login_throttled_waits_then_succeeds() -> None:
    pbx = FakePbx()
    pbx.script("challenge", status_reply(-45))
    client, sleeps = make_client(pbx)
    client.login()
    assert sleeps == [15.0]


def test_challenge_without_value_is_response_error() -> None:
    pbx = FakePbx()
    pbx.script("challenge", {"status": 0, "response": {}})
    client, _ = make_client(pbx)
    with pytest.raises(UcmResponseError):
        client.login()


# -------------------------------------------------------------------------------- session expiry


@pytest.mark.parametrize("code", [-6, -5])
def test_session_error_relogs_once(code: int) -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(1)]
    client, _ = make_client(pbx)
    client.login()
    pbx.script("cdrapi", status_reply(code))
    legs = client.fetch_cdrs(START, END)
    assert [leg["AcctId"] for leg in legs] == ["1"]
    assert pbx.count("login") == 2
    assert pbx.cdr_offsets() == [0, 0, 1, 1, 1]  # the failed page is re-requested, not skipped


def test_expired_cookie_relogs_transparently() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(1), flat_leg(2)]
    client, _ = make_client(pbx)
    client.login()
    pbx.expire_sessions()
    assert len(client.fetch_cdrs(START, END)) == 2
    assert pbx.count("login") == 2


def test_second_session_error_is_an_error() -> None:
    pbx = FakePbx()
    pbx.script("cdrapi", status_reply(-6), status_reply(-6))
    client, _ = make_client(pbx)
    with pytest.raises(UcmSessionError) as info:
        client.fetch_cdrs(START, END)
    assert info.value.code == -6
    assert pbx.count("login") == 2


# ------------------------------------------------------------------------------------ throttling


@pytest.mark.parametrize(("code", "wait"), [(-45, 15.0), (-46, 15.0), (-57, 60.0)])
def test_throttle_default_waits(code: int, wait: float) -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", status_reply(code))
    client, sleeps = make_client(pbx)
    client.call("getSystemStatus")
    assert sleeps == [wait]
    assert pbx.count("getSystemStatus") == 2


def test_throttle_waits_configurable_and_bounded() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", *[status_reply(-57)] * 10)
    client, sleeps = make_client(pbx, throttle_long_wait_s=0.01, max_throttle_retries=2)
    with pytest.raises(UcmThrottledError) as info:
        client.call("getSystemStatus")
    assert sleeps == [0.01, 0.01]
    assert info.value.code == -57
    assert pbx.count("getSystemStatus") == 3


# ----------------------------------------------------------------------------- transport retries


def test_http_500_retried_with_backoff_then_ok() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", httpx.Response(500), httpx.Response(503))
    client, sleeps = make_client(pbx)
    client.call("getSystemStatus")
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.75 and 0.5 <= sleeps[1] <= 1.5  # base 0.5 doubled, +-50% jitter


def test_http_500_bounded() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", *[httpx.Response(500)] * 10)
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmHttpError) as info:
        client.call("getSystemStatus")
    assert info.value.status_code == 500
    assert pbx.count("getSystemStatus") == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("eof")]
)
def test_timeouts_and_connection_errors_bounded(exc: Exception) -> None:
    pbx = FakePbx()
    client, sleeps = make_client(pbx)
    client.login()
    pbx.script("getSystemStatus", *[exc] * 10)
    with pytest.raises(UcmTransportError):
        client.call("getSystemStatus")
    assert pbx.count("getSystemStatus") == 3 and len(sleeps) == 2


def test_backoff_is_capped_and_deterministic() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=5.0, jitter=0.5)
    delays = [policy.delay(n, random.Random(3)) for n in range(1, 10)]
    assert all(0 <= d <= 5.0 for d in delays)
    assert delays == [policy.delay(n, random.Random(3)) for n in range(1, 10)]
    assert RetryPolicy(jitter=0).delay(3, random.Random()) == 4.0


def test_http_404_not_retried() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", httpx.Response(404))
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmHttpError) as info:
        client.call("getSystemStatus")
    assert info.value.status_code == 404 and sleeps == []


def test_tls_verification_failure_not_retried() -> None:
    pbx = FakePbx()
    pbx.script("challenge", lambda _: tls_failure())
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmTlsError) as info:
        client.login()
    assert "ca_file" in str(info.value)
    assert pbx.count("challenge") == 1 and sleeps == []


# --------------------------------------------------------------------------------- reply parsing


def test_non_json_200_is_typed() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", httpx.Response(200, text="<html>portal</html>"))
    client, _ = make_client(pbx)
    with pytest.raises(UcmResponseError, match="non-JSON"):
        client.call("getSystemStatus")


def test_json_array_reply_is_typed() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", httpx.Response(200, json=[1, 2]))
    client, _ = make_client(pbx)
    with pytest.raises(UcmResponseError):
        client.call("getSystemStatus")


@pytest.mark.parametrize("code", [-1, -15, -16, -25, -50])
def test_other_negative_status_is_api_error(code: int) -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", status_reply(code, error_msg="Invalid parameters!"))
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmApiError) as info:
        client.call("getSystemStatus")
    assert type(info.value) is UcmApiError
    assert info.value.code == code and info.value.error_msg == "Invalid parameters!"
    assert sleeps == [] and pbx.count("getSystemStatus") == 1


def test_cdrapi_reply_without_items_or_status() -> None:
    pbx = FakePbx()
    pbx.script("cdrapi", {"something": []})
    client, _ = make_client(pbx)
    with pytest.raises(UcmResponseError):
        client.fetch_cdrs(START, END)


# -------------------------------------------------------------------------------------- secrets


def test_no_secret_in_logs_errors_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pbx = FakePbx()
    pbx.items = [flat_leg(1, src="07700900123")]
    client, _ = make_client(pbx, insecure=True)
    client.login()
    cookie = next(iter(pbx.valid_cookies))
    pbx.script("cdrapi", httpx.Response(500), status_reply(-6))
    client.fetch_cdrs(START, END)
    live_cookie = next(iter(pbx.valid_cookies))
    pbx.script("getSystemStatus", status_reply(-16, error_msg=f"bad cookie {live_cookie} / {PASSWORD}"))
    with pytest.raises(UcmApiError) as info:
        client.call("getSystemStatus")
    client.close()
    token = hashlib.md5((CHALLENGE + PASSWORD).encode()).hexdigest()
    texts = [caplog.text, str(info.value), repr(info.value), repr(client), repr(client.connection)]
    texts.append(str(client.connection.model_dump()))
    for text in texts:
        for secret in (PASSWORD, token, CHALLENGE, cookie, live_cookie, "07700900123"):
            assert secret not in text
    assert "***" in str(info.value)


def test_wrong_password_error_has_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pbx = FakePbx(password="other")
    client, _ = make_client(pbx)
    with pytest.raises(UcmWrongPasswordError) as info:
        client.login()
    token = hashlib.md5((CHALLENGE + PASSWORD).encode()).hexdigest()
    for text in (caplog.text, str(info.value)):
        assert PASSWORD not in text and token not in text and CHALLENGE not in text


# ------------------------------------------------------------------------------ lifecycle/config


def test_close_logs_out_and_never_raises() -> None:
    pbx = FakePbx()
    with make_client(pbx)[0] as client:
        client.login()
        cookie = next(iter(pbx.valid_cookies))
    assert pbx.requests[-1] == {"action": "logout", "cookie": cookie}
    pbx2 = FakePbx()
    client2, _ = make_client(pbx2)
    client2.login()
    pbx2.script("logout", httpx.ConnectError("gone"))
    client2.close()
    client2.close()
    assert pbx2.count("logout") == 1


def test_close_without_session_sends_nothing() -> None:
    pbx = FakePbx()
    make_client(pbx)[0].close()
    assert pbx.requests == []


def test_insecure_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="audiapro.ucm")
    make_client(FakePbx(), insecure=True)
    assert "verification is OFF" in caplog.text


def test_missing_ca_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(UcmConfigError):
        make_client(FakePbx(), ca_file=tmp_path / "missing.pem")


def test_connection_defaults_and_validation() -> None:
    conn = UcmConnection(
        host="071ffb.c.myucm.cloud", api_user="cdrapi", password=SecretStr("x"), timezone="UTC"
    )
    assert conn.api_url == "https://071ffb.c.myucm.cloud:8443/api"
    assert (conn.page_size, conn.time_filter, conn.page_counting, conn.insecure) == (
        1000,
        "Start",
        "items",
        False,
    )
    assert (conn.throttle_wait_s, conn.throttle_long_wait_s) == (15.0, 60.0)
    bad: list[dict[str, Any]] = [
        {"page_size": 1001},
        {"timezone": "Mars/Olympus"},
        {"host": "https://x"},
        {"time_filter": "Middle"},
        {"page_counting": "groups"},
    ]
    for override in bad:
        fields: dict[str, Any] = {
            "host": "h",
            "api_user": "u",
            "password": SecretStr("p"),
            "timezone": "UTC",
            **override,
        }
        with pytest.raises(ValidationError):
            UcmConnection(**fields)


def test_from_url() -> None:
    conn = UcmConnection.from_url(
        "http://127.0.0.1:8089", api_user="cdrapi", password=SecretStr("p"), timezone="UTC"
    )
    assert conn.api_url == "http://127.0.0.1:8089/api"


def test_build_cdr_query_validates() -> None:
    window = LocalWindow("2026-03-01T09:00:00", "2026-03-01T10:00:00")
    query = build_cdr_query(window, offset=0, page_size=1000, time_filter="End")
    assert query == {
        "format": "json",
        "numRecords": "1000",
        "offset": "0",
        "startTime": "2026-03-01T09:00:00",
        "endTime": "2026-03-01T10:00:00",
        "timeFilterType": "End",
    }
    assert (
        build_cdr_query(window, offset=5, page_size=10, time_filter=None, numbers_as_strings=False)["offset"]
        == 5
    )
    bad_calls = [
        {"window": window, "offset": 0, "page_size": 1001, "time_filter": None},
        {"window": window, "offset": -1, "page_size": 10, "time_filter": None},
        {"window": window, "offset": 0, "page_size": 10, "time_filter": "start"},
        {
            "window": LocalWindow("2026-03-01 09:00:00", "2026-03-01T10:00:00"),
            "offset": 0,
            "page_size": 10,
            "time_filter": None,
        },
        {
            "window": LocalWindow("2026-03-01T11:00:00", "2026-03-01T10:00:00"),
            "offset": 0,
            "page_size": 10,
            "time_filter": None,
        },
    ]
    for kwargs in bad_calls:
        with pytest.raises(UcmConfigError):
            build_cdr_query(**kwargs)  # type: ignore[arg-type]


def test_closed_client_refuses() -> None:
    client, _ = make_client(FakePbx())
    client.close()
    with pytest.raises(UcmConfigError):
        client.login()


def test_client_usable_as_context_manager_with_real_default_transport() -> None:
    conn = UcmConnection(host="127.0.0.1", port=9, api_user="u", password=SecretStr("p"), timezone="UTC")
    with UcmClient(conn) as client:
        assert "127.0.0.1:9" in repr(client)


# ------------------------------------------------------------------------- transient API statuses


@pytest.mark.parametrize("code", [-7, -8, -9, -51, -251])
def test_transient_status_retried_with_backoff(code: int) -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", status_reply(code))
    client, sleeps = make_client(pbx)
    assert client.call("getSystemStatus")["status"] == 0
    assert pbx.count("getSystemStatus") == 2
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.75  # the connection's retry backoff


def test_transient_status_bounded_then_typed() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", *[status_reply(-9)] * 10)
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmTransientApiError) as info:
        client.call("getSystemStatus")
    assert isinstance(info.value, UcmApiError) and info.value.code == -9
    assert "retry later" in str(info.value)
    assert pbx.count("getSystemStatus") == 3 and len(sleeps) == 2  # default: 2 retries
    assert is_transient_error(info.value)
    pbx2 = FakePbx()
    pbx2.script("getSystemStatus", status_reply(-51))
    client2, sleeps2 = make_client(pbx2, transient_api_retries=0)
    with pytest.raises(UcmTransientApiError):
        client2.call("getSystemStatus")
    assert pbx2.count("getSystemStatus") == 1 and sleeps2 == []


def test_transient_status_during_cdr_paging_does_not_skip_a_page() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(3)]
    client, _ = make_client(pbx, page_size=2)
    client.login()
    pbx.script("cdrapi", pbx.on_cdrapi, status_reply(-8))
    assert [leg["AcctId"] for leg in client.fetch_cdrs(START, END)] == ["0", "1", "2"]
    assert pbx.cdr_offsets()[:3] == [0, 2, 2]


def tls_failure() -> httpx.ConnectError:
    try:
        raise ssl.SSLCertVerificationError("certificate verify failed")
    except ssl.SSLError as cause:
        try:
            raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from cause
        except httpx.ConnectError as exc:
            return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (UcmTransportError("UCM cdrapi: ConnectError"), True),
        (UcmHttpError("HTTP 503", 503), True),
        (UcmThrottledError(-45), True),
        (UcmPagingError("same page"), True),
        (UcmTransientApiError(-51), True),
        (httpx.ConnectTimeout("slow"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.ConnectError("refused"), True),
        (ConnectionResetError(), True),
        (UcmWrongPasswordError(-37), False),
        (UcmLoginBannedError(-68), False),
        (UcmSessionError(-6), False),
        (UcmConfigError("bad"), False),
        (UcmEndpointError("HTTP 404", 404), False),
        (UcmHttpError("HTTP 404", 404), False),
        (UcmHttpError("HTTP 401", 401), False),
        (UcmTlsError("bad certificate"), False),
        (tls_failure(), False),
        (UcmApiError(-16), False),
        (UcmResponseError("not JSON"), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient_error(exc: BaseException, expected: bool) -> None:
    assert is_transient_error(exc) is expected


# ------------------------------------------------------------------------------ handshake retries


@pytest.mark.parametrize(
    ("status", "port"), [(404, 8443), (405, 8443), (401, 8443), (404, 8089), (403, 8089), (302, 8089)]
)
def test_handshake_4xx_is_a_config_error_never_retried(status: int, port: int) -> None:
    pbx = FakePbx()
    pbx.script("challenge", *[httpx.Response(status)] * 5)
    client, sleeps = make_client(pbx, port=port)
    with pytest.raises(UcmConfigError) as info:
        client.login()
    assert isinstance(info.value, UcmEndpointError) and info.value.status_code == status
    message = str(info.value)
    assert f"https://pbx.example:{port}/api" in message and f"HTTP {status}" in message
    assert "8089" in message and "\n" not in message
    if port == 8443:
        assert "old CDR API listener" in message
    assert pbx.count("challenge") == 1 and sleeps == []
    assert not is_transient_error(info.value)


def test_4xx_on_login_not_retried_either() -> None:
    pbx = FakePbx()
    pbx.script("login", *[httpx.Response(404)] * 5)
    client, sleeps = make_client(pbx)
    with pytest.raises(UcmEndpointError):
        client.login()
    assert pbx.actions() == ["challenge", "login"] and sleeps == []


@pytest.mark.parametrize(
    "failure", [httpx.Response(503), httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")]
)
def test_handshake_retried_on_5xx_connect_errors_and_timeouts(failure: Any) -> None:
    pbx = FakePbx()
    pbx.script("challenge", failure)
    client, sleeps = make_client(pbx)
    client.login()
    assert pbx.actions() == ["challenge", "challenge", "login"] and len(sleeps) == 1


def test_transient_status_on_challenge_restarts_handshake() -> None:
    pbx = FakePbx()
    pbx.script("challenge", status_reply(-9))
    client, sleeps = make_client(pbx)
    client.login()
    assert pbx.actions() == ["challenge", "challenge", "login"] and len(sleeps) == 1


# ------------------------------------------------------------------------------------ login guard


def test_shared_guard_stops_relogin_after_another_client_failed() -> None:
    clock = {"now": datetime(2026, 3, 2, 10, 0, tzinfo=UTC)}
    guard = MemoryLoginGuard(now=lambda: clock["now"])
    pbx = FakePbx()
    pbx.items = [flat_leg(1)]
    good, _ = make_client(pbx, login_guard=guard)
    good.login()
    bad, _ = make_client(FakePbx(password="changed-on-the-pbx"), login_guard=guard)
    with pytest.raises(UcmWrongPasswordError):
        bad.login()
    pbx.expire_sessions()  # the good client's session ends: its re-login must respect the pause
    with pytest.raises(UcmLoginBlocked) as info:
        good.fetch_cdrs(START, END)
    assert info.value.until == datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert pbx.count("login") == 1 and pbx.count("challenge") == 1
    clock["now"] += timedelta(minutes=15)
    assert len(good.fetch_cdrs(START, END)) == 1  # the block was not remembered by the client
    assert pbx.count("login") == 2


def test_guard_is_told_of_blocking_failures_only() -> None:
    events: list[str] = []

    class Recorder:
        @contextlib.contextmanager
        def handshake(self) -> Iterator[None]:
            events.append("enter")
            yield
            events.append("exit")

        def failed(self, exc: UcmAuthError) -> None:
            events.append(f"failed {exc.code}")

        def succeeded(self) -> None:
            events.append("succeeded")

    pbx = FakePbx()
    pbx.script("challenge", httpx.ConnectError("refused"))
    client, _ = make_client(pbx, login_guard=Recorder())
    client.login()
    assert events == ["enter", "enter", "succeeded", "exit"]
    events.clear()
    pbx.script("getSystemStatus", status_reply(-6))  # session gone: the re-login goes through the guard
    pbx.script("challenge", status_reply(-47))
    with pytest.raises(UcmPermissionError):
        client.call("getSystemStatus")
    assert events == ["enter", "failed -47"]
    events.clear()
    pbx2 = FakePbx()
    pbx2.script("getSystemStatus", status_reply(-6), status_reply(-6))
    client2, _ = make_client(pbx2, login_guard=Recorder())
    with pytest.raises(UcmSessionError):
        client2.call("getSystemStatus")  # a session error is no reason to pause logins
    assert "failed" not in " ".join(events)


# --------------------------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST"])
def test_plain_http_allowed_for_loopback(host: str) -> None:
    conn = UcmConnection(host=host, scheme="http", api_user="u", password=SecretStr("p"), timezone="UTC")
    assert conn.api_url.startswith("http://")


@pytest.mark.parametrize(
    "host", ["pbx.example", "10.0.0.5", "071ffb.c.myucm.cloud", "localhost.evil.example"]
)
def test_plain_http_refused_for_other_hosts(host: str) -> None:
    with pytest.raises(ValidationError) as info:
        UcmConnection(host=host, scheme="http", api_user="u", password=SecretStr("p"), timezone="UTC")
    (error,) = info.value.errors()
    assert "only allowed for loopback hosts" in error["msg"] and "\n" not in error["msg"]
    with pytest.raises(ValidationError):
        UcmConnection.from_url(f"http://{host}:8089", api_user="u", password=SecretStr("p"), timezone="UTC")


FINGERPRINT = "5a" * 32


@pytest.mark.parametrize(
    "spelling",
    [
        FINGERPRINT,
        FINGERPRINT.upper(),
        ":".join(["5A"] * 32),
        " ".join(["5a"] * 32),
        "SHA256 Fingerprint=" + ":".join(["5A"] * 32),
        "sha256:" + FINGERPRINT,
    ],
)
def test_tls_fingerprint_spellings(spelling: str) -> None:
    conn = UcmConnection(
        host="h", api_user="u", password=SecretStr("p"), timezone="UTC", tls_fingerprint=spelling
    )
    assert conn.tls_fingerprint == FINGERPRINT


@pytest.mark.parametrize(
    "settings",
    [
        {"tls_fingerprint": "5a" * 31},
        {"tls_fingerprint": "5g" * 32},
        {"tls_fingerprint": FINGERPRINT + "00"},
        {"tls_fingerprint": FINGERPRINT, "insecure": True},
        {"tls_fingerprint": FINGERPRINT, "ca_file": Path("ca.pem")},
    ],
)
def test_tls_fingerprint_validation(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UcmConnection(host="h", api_user="u", password=SecretStr("p"), timezone="UTC", **settings)


def test_default_verification_uses_the_os_trust_store() -> None:
    client, _ = make_client(FakePbx())
    context = client._verify_setting()
    assert isinstance(context, truststore.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_fingerprint_context_replaces_chain_and_name_checks() -> None:
    client, _ = make_client(FakePbx(), tls_fingerprint=FINGERPRINT)
    context = client._verify_setting()
    assert isinstance(context, ssl.SSLContext) and not context.check_hostname
    assert getattr(context, "pinned_fingerprint", None) == FINGERPRINT


def test_clouducm_block_wires_the_fingerprint() -> None:
    from blocks.clouducm import CloudUCM

    block = CloudUCM(host="pbx.example", port=8089, tls_fingerprint=":".join(["5A"] * 32))
    assert block.connection().tls_fingerprint == FINGERPRINT
    assert CloudUCM(host="pbx.example").connection().tls_fingerprint is None
    with pytest.raises(ValidationError):
        CloudUCM(host="pbx.example", tls_fingerprint=FINGERPRINT, insecure=True)
    with pytest.raises(ValidationError):
        CloudUCM(host="pbx.example", tls_fingerprint="not-a-fingerprint")


# ------------------------------------------------------------------------------------- PBX clock


def test_system_time_in_the_pbx_offset() -> None:
    pbx = FakePbx()
    pbx.script("getSystemStatus", status_reply(0, **{"system-time": "23-11-2022 14:37:26 UTC+05:30"}))
    client, _ = make_client(pbx)
    value = client.system_time()
    assert value == datetime(2022, 11, 23, 9, 7, 26, tzinfo=UTC)
    assert value.utcoffset() == timedelta(hours=5, minutes=30) and value.hour == 14
    pbx.script("getSystemStatus", status_reply(0, **{"system-time": "23-11-2022 14:37:26"}))
    with pytest.raises(UcmResponseError, match="offset is unknown"):
        client.system_time()
