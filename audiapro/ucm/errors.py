"""Typed errors raised by the UCM API client.

Messages name what an operator should check. They never carry the API password, the login token, the
challenge or the session cookie: the client redacts those before building any message.
"""

from __future__ import annotations

import ssl

import httpx

#: HTTP status codes at and above this are server-side failures a retry may cure.
HTTP_SERVER_ERROR = 500
#: How deep :func:`is_tls_failure` follows an exception's cause chain (it is short; guards cycles).
MAX_CAUSE_DEPTH = 10


class UcmError(Exception):
    """Base class of every error raised by :mod:`audiapro.ucm`."""


class UcmConfigError(UcmError, ValueError):
    """A connection setting or query parameter is invalid (detected before anything is sent)."""


class UcmTransportError(UcmError):
    """The PBX could not be reached or kept failing at the HTTP level after the bounded retries."""


class UcmTlsError(UcmTransportError):
    """TLS verification of the PBX certificate failed (never retried).

    Attributes:
        expected_fingerprint: The pinned SHA-256 fingerprint when pinning failed, else None.
        seen_fingerprint: The fingerprint the PBX presented when pinning failed, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        expected_fingerprint: str | None = None,
        seen_fingerprint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.expected_fingerprint = expected_fingerprint
        self.seen_fingerprint = seen_fingerprint


class UcmHttpError(UcmTransportError):
    """The PBX answered with an unexpected HTTP status code.

    Attributes:
        status_code: The HTTP status code of the last reply.
    """

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class UcmEndpointError(UcmHttpError, UcmConfigError):
    """The API URL answered HTTP 4xx (or 3xx): it does not serve the JSON API (wrong port or path).

    Both a :class:`UcmHttpError` (``status_code`` is set) and a :class:`UcmConfigError`: a retry cannot
    help until someone fixes the tenant's host, port or path.
    """


class UcmResponseError(UcmError):
    """The PBX answered HTTP 200 with a body that is not the expected JSON shape."""


class UcmApiError(UcmError):
    """The PBX answered with a negative ``status``.

    Attributes:
        code: The UCM status code (negative integer).
        error_msg: The PBX's own error text (``response.error_msg``), possibly empty.
        action: The API action that failed.
        remain_num: Login attempts left before a ban, when the PBX reported it.
        remain_time: Seconds until a ban is lifted, when the PBX reported it.
    """

    def __init__(
        self,
        code: int,
        error_msg: str = "",
        *,
        action: str = "",
        hint: str = "",
        remain_num: str | None = None,
        remain_time: str | None = None,
    ) -> None:
        self.code = code
        self.error_msg = error_msg
        self.action = action
        self.remain_num = remain_num
        self.remain_time = remain_time
        parts = [f"UCM action {action or '?'!r} failed with status {code}"]
        if error_msg:
            parts.append(f"({error_msg})")
        message = " ".join(parts)
        if hint:
            message += f". {hint}"
        counters = []
        if remain_num is not None:
            counters.append(f"remain_num={remain_num}")
        if remain_time is not None:
            counters.append(f"remain_time={remain_time}s")
        if counters:
            message += f" [{', '.join(counters)}]"
        super().__init__(message)


class UcmThrottledError(UcmApiError):
    """The PBX kept answering "operating too frequently" (-45, -46, -57) after the bounded waits."""


class UcmTransientApiError(UcmApiError):
    """A "retry later" status (-7, -8, -9, -51, -251) that persisted through the bounded retries."""


class UcmAuthError(UcmApiError):
    """Authentication or authorization failed. Never retried automatically."""


class UcmWrongPasswordError(UcmAuthError):
    """-37: wrong API user or password. Retrying would count towards the PBX's login ban."""


class UcmLoginBannedError(UcmAuthError):
    """-68 / -70: the PBX refuses logins from this client (login security ban or restriction)."""


class UcmUnknownUserError(UcmAuthError):
    """-71: the API user name does not exist on the PBX."""


class UcmPermissionError(UcmAuthError):
    """-47: no permission, typically the client IP is not in the API's permitted IP list."""


class UcmSessionError(UcmAuthError):
    """-5 / -6 persisted right after a fresh login (the new session was rejected too)."""


class UcmPagingError(UcmError):
    """cdrapi paging did not make progress (the same page kept coming back)."""


class UcmPageCapExceeded(UcmError):
    """A window needed more than ``max_pages`` pages; the caller should split the window.

    Attributes:
        pages: Pages already fetched.
        offset: Offset of the page that would have exceeded the cap.
    """

    def __init__(self, message: str, *, pages: int, offset: int) -> None:
        super().__init__(message)
        self.pages = pages
        self.offset = offset


class UcmRecordingError(UcmError):
    """A recording could not be downloaded or the download was not a valid WAV file."""


class UcmRecordingNotFound(UcmRecordingError):
    """No recording directory on the PBX had the requested file."""


#: -5 "need authentication" / -6 "cookie error": the session is gone; log in again once.
SESSION_STATUSES = frozenset({-5, -6})
#: "Operating too frequently": the API guide says retry after 15 s (-45, -46) or 60 s (-57).
SHORT_THROTTLE_STATUSES = frozenset({-45, -46})
LONG_THROTTLE_STATUSES = frozenset({-57})
#: Statuses that describe a passing PBX condition: -7 connection closed, -8 system timeout, -9 abnormal
#: system error, -51 / -251 (firmware-dependent) "another task is running now".
TRANSIENT_STATUSES = frozenset({-7, -8, -9, -51, -251})
_RETRY_LATER_HINT = "A passing PBX condition; retry later"

#: Status -> (error class, what an operator should check).
STATUS_ERRORS: dict[int, tuple[type[UcmApiError], str]] = {
    -37: (
        UcmWrongPasswordError,
        "Wrong API user or password: check the API password of this user in Integrations -> API "
        "Configuration (HTTPS API Settings). Not retried: every failed login counts towards the PBX's "
        "login ban",
    ),
    -68: (
        UcmLoginBannedError,
        "Login restricted: the PBX bans this client after repeated failed logins. Wait remain_time "
        "seconds (default ban 5 min) and check Maintenance -> Login Security (ban list, whitelist)",
    ),
    -70: (
        UcmLoginBannedError,
        "Login forbidden: the PBX bans this client. Wait remain_time seconds and check Maintenance -> "
        "Login Security (ban list, whitelist)",
    ),
    -71: (
        UcmUnknownUserError,
        "API user name does not exist: check the user name in Integrations -> API Configuration",
    ),
    -47: (
        UcmPermissionError,
        "No permission: check the permitted IPs (API whitelist) in Integrations -> API Configuration "
        "and System Settings -> HTTP Server -> Permitted IP(s)",
    ),
    -5: (
        UcmSessionError,
        "The PBX rejected a freshly issued session; check that no other client logs it out",
    ),
    -6: (
        UcmSessionError,
        "The PBX rejected a freshly issued session; check that no other client logs it out",
    ),
    -45: (UcmThrottledError, "Still throttled after the configured waits; retry later"),
    -46: (UcmThrottledError, "Still throttled after the configured waits; retry later"),
    -57: (UcmThrottledError, "Still throttled after the configured waits; retry later"),
    -1: (UcmApiError, "The PBX rejected the request shape or a parameter value"),
    -7: (UcmTransientApiError, f"{_RETRY_LATER_HINT} (the PBX closed an internal connection)"),
    -8: (UcmTransientApiError, f"{_RETRY_LATER_HINT} (the PBX timed out internally)"),
    -9: (UcmTransientApiError, f"{_RETRY_LATER_HINT} (abnormal system error on the PBX)"),
    -51: (UcmTransientApiError, f"{_RETRY_LATER_HINT} (another task is running on the PBX)"),
    -251: (UcmTransientApiError, f"{_RETRY_LATER_HINT} (another task is running on the PBX)"),
}


def error_for_status(
    code: int,
    error_msg: str = "",
    *,
    action: str = "",
    remain_num: str | None = None,
    remain_time: str | None = None,
) -> UcmApiError:
    """The typed error for a negative status that the client does not (or no longer) retry.

    Args:
        code: UCM status code.
        error_msg: The PBX's error text, already redacted by the caller.
        action: The failed action.
        remain_num: Login attempts left, if reported.
        remain_time: Seconds of ban left, if reported.
    """
    cls, hint = STATUS_ERRORS.get(code, (UcmApiError, ""))
    return cls(code, error_msg, action=action, hint=hint, remain_num=remain_num, remain_time=remain_time)


def is_tls_failure(exc: BaseException) -> bool:
    """True for certificate or TLS-setup failures anywhere in ``exc``'s cause chain (retries cannot help)."""
    seen: BaseException | None = exc
    for _ in range(MAX_CAUSE_DEPTH):
        if seen is None:
            break
        if isinstance(seen, UcmTlsError | ssl.SSLCertVerificationError):
            return True
        if isinstance(seen, ssl.SSLError) and not isinstance(seen, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def is_transient_error(exc: BaseException) -> bool:
    """Whether trying the same work again later can succeed without anyone changing anything.

    True: connection errors and timeouts, HTTP 5xx, throttling (-45/-46/-57), paging hiccups (the PBX
    kept serving the same page) and "retry later" statuses (:data:`TRANSIENT_STATUSES`); raw httpx or
    socket connection errors and timeouts count too. False: authentication (including a paused login,
    :class:`UcmLoginBlocked <audiapro.ucm.guard.UcmLoginBlocked>`), configuration, TLS, HTTP 4xx, replies
    of the wrong shape, the page cap, and anything that is not a UCM or network error.

    Args:
        exc: The exception a UCM operation raised.
    """
    if isinstance(exc, UcmAuthError | UcmConfigError) or is_tls_failure(exc):
        return False
    if isinstance(exc, UcmHttpError):
        return exc.status_code >= HTTP_SERVER_ERROR
    if isinstance(exc, UcmTransportError | UcmThrottledError | UcmPagingError | UcmTransientApiError):
        return True
    network = httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    return isinstance(exc, network | ConnectionError | TimeoutError)
