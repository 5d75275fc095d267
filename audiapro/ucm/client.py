"""Synchronous client for the Grandstream CloudUCM / UCM63xx HTTPS API (the JSON ``/api`` endpoint).

Every call is ``POST {scheme}://host:port/api`` with ``{"request": {"action": ..., ...}}``. A session is
opened with challenge -> login (token = md5(challenge + password)) and the returned cookie string is
sent back as ``cookie`` inside every later request body, not as an HTTP cookie. ``docs/ucm-protocol.md``
says how sure each behaviour is (documented, seen on a real device, or inferred).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import random
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from audiapro.redaction import redact
from audiapro.settings import DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from audiapro.ucm.errors import (
    HTTP_SERVER_ERROR,
    LONG_THROTTLE_STATUSES,
    MAX_CAUSE_DEPTH,
    SESSION_STATUSES,
    SHORT_THROTTLE_STATUSES,
    UcmApiError,
    UcmAuthError,
    UcmConfigError,
    UcmEndpointError,
    UcmError,
    UcmHttpError,
    UcmPageCapExceeded,
    UcmPagingError,
    UcmRecordingError,
    UcmRecordingNotFound,
    UcmResponseError,
    UcmThrottledError,
    UcmTlsError,
    UcmTransientApiError,
    UcmTransportError,
    error_for_status,
    is_tls_failure,
    is_transient_error,
)
from audiapro.ucm.guard import LoginGuard, MemoryLoginGuard, UcmLoginBlocked, blocks_logins
from audiapro.ucm.records import (
    CdrPage,
    RawLeg,
    coerce_value,
    collect_pages,
    extract_cdr_items,
    page_signature,
    parse_cdr_items,
    parse_record_infos,
    recording_basename,
)
from audiapro.ucm.retry import RetryPolicy
from audiapro.ucm.timewindow import (
    LocalWindow,
    is_local_query_time,
    local_window,
    parse_system_time,
    resolve_timezone,
)
from audiapro.ucm.tls import (
    FingerprintMismatch,
    ca_file_context,
    normalize_fingerprint,
    pinned_context,
    system_trust_context,
)

logger = logging.getLogger("audiapro.ucm")

#: CloudUCM serves the web UI and the JSON API on 8443 (on-prem UCMs use the web port, default 8089).
CLOUDUCM_PORT = 8443
#: On-prem UCMs serve the JSON API on their web port; their 8443 is the old Digest ``/cdrapi`` listener.
ONPREM_WEB_PORT = 8089
LOOPBACK_NAMES = frozenset({"localhost"})
DEFAULT_API_PATH = "/api"
DEFAULT_API_VERSION = "1.0"
REQUEST_HEADERS = {"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json"}
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: A 1000-record cdrapi page can take the PBX several seconds to render.
DEFAULT_READ_TIMEOUT_S = 60.0
#: Recordings stream slowly from small appliances; this bounds the wait for each chunk.
DEFAULT_DOWNLOAD_READ_TIMEOUT_S = 300.0
#: Waits the API guide prescribes: -45/-46 "operating too frequently" 15 s, -57 60 s.
DEFAULT_THROTTLE_WAIT_S = 15.0
DEFAULT_THROTTLE_LONG_WAIT_S = 60.0
DEFAULT_MAX_THROTTLE_RETRIES = 3
#: Re-sends of a request answered with a "retry later" status (-7, -8, -9, -51, -251).
DEFAULT_TRANSIENT_API_RETRIES = 2
#: How often a page identical to the previous one is re-requested before giving up.
DEFAULT_REPEATED_PAGE_RETRIES = 5
#: Re-requests that must also come back empty (or as the same short page) before a window ends. A PBX
#: that replays a stale reply (e.g. the previous window's final empty page) would otherwise drop data.
DEFAULT_EMPTY_PAGE_CONFIRMATIONS = 2
DEFAULT_RECORDING_FILEDIRS = ("monitor", "queue")
QUEUE_FILEDIR = "queue"
TIME_FILTERS = ("Start", "End")

#: getRecordInfosByCall answers -15 when the call has no recording.
NO_RECORDING_STATUS = -15
HTTP_NOT_FOUND = 404
MAX_ERROR_BODY_BYTES = 64 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024
WAV_HEADER_BYTES = 12


class UcmConnection(BaseModel):
    """Per-tenant connection and behaviour settings. Uncertain PBX behaviours are settings here.

    Attributes:
        host: PBX host name, e.g. ``071ffb.c.myucm.cloud``.
        port: API port (CloudUCM 8443; on-prem UCM web port, default 8089).
        scheme: ``https``; ``http`` only for loopback hosts (127.0.0.0/8, ::1, localhost: simulators).
        api_path: Path of the JSON endpoint.
        api_user: API user of Integrations -> API Configuration (often ``cdrapi``).
        password: API password.
        timezone: IANA zone of the PBX clock; CDR times and query times are in it.
        ca_file: CA bundle that signs the tenant's PBX certificate (None: the operating system's trust
            store, via ``truststore``).
        insecure: Disable TLS verification (logged as a warning).
        tls_fingerprint: SHA-256 fingerprint of the PBX certificate (hex; colons, spaces and case
            tolerated; stored as 64 lowercase hex digits). When set, chain and host-name verification
            are replaced by comparing it with the certificate presented on every connection, inside the
            TLS handshake, so nothing is sent to a different peer (see :mod:`audiapro.ucm.tls`). For
            self-signed on-prem UCMs. Excludes ``insecure`` and ``ca_file``.
        connect_timeout_s, read_timeout_s: HTTP timeouts for API calls.
        download_read_timeout_s: Per-chunk read timeout while streaming a recording.
        api_version: ``version`` sent with the challenge.
        login_url: Optional ``url`` sent with login (purpose undocumented; omitted when None).
        page_size: cdrapi ``numRecords`` (at most 1000).
        max_pages: Pages per window before :class:`UcmPageCapExceeded`.
        time_filter: Default ``timeFilterType`` (``Start`` or ``End``).
        send_time_filter_type: Send ``timeFilterType`` at all (old firmware ignores unknown params by
            returning nothing).
        numbers_as_strings: Send numRecords/offset as JSON strings rather than numbers.
        page_counting: Whether ``offset`` counts top-level items or legs. ``items`` is the safe
            default: if the PBX actually counts legs, advancing by items only overlaps pages.
        repeated_page_retries: Re-requests of a full page identical to the previous one.
        empty_page_confirmations: Extra requests that must confirm the end of data (an empty page, or
            a short page identical to the previous one) before a window ends.
        recording_filedirs: recapi directories tried in order.
        queue_action_markers: ``action_type`` substrings that put the ``queue`` directory first.
        recapi_error_content_types: Content-Type substrings that mark a recapi error reply.
        throttle_wait_s: Wait after -45/-46.
        throttle_long_wait_s: Wait after -57.
        max_throttle_retries: Throttle waits per request before :class:`UcmThrottledError`.
        transient_api_retries: Re-sends (with ``retry`` backoff) of a request answered with a "retry
            later" status before :class:`UcmTransientApiError`.
        retry: Backoff for HTTP 5xx, timeouts and connection errors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=CLOUDUCM_PORT, ge=1, le=65535)
    scheme: Literal["https", "http"] = "https"
    api_path: str = DEFAULT_API_PATH
    api_user: str = Field(min_length=1)
    password: SecretStr
    timezone: str
    ca_file: Path | None = None
    insecure: bool = False
    tls_fingerprint: str | None = None
    connect_timeout_s: float = Field(default=DEFAULT_CONNECT_TIMEOUT_S, gt=0)
    read_timeout_s: float = Field(default=DEFAULT_READ_TIMEOUT_S, gt=0)
    download_read_timeout_s: float = Field(default=DEFAULT_DOWNLOAD_READ_TIMEOUT_S, gt=0)
    api_version: str = DEFAULT_API_VERSION
    login_url: str | None = None
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1)
    time_filter: Literal["Start", "End"] = "Start"
    send_time_filter_type: bool = True
    numbers_as_strings: bool = True
    page_counting: Literal["items", "legs"] = "items"
    repeated_page_retries: int = Field(default=DEFAULT_REPEATED_PAGE_RETRIES, ge=0)
    empty_page_confirmations: int = Field(default=DEFAULT_EMPTY_PAGE_CONFIRMATIONS, ge=0)
    recording_filedirs: tuple[str, ...] = Field(default=DEFAULT_RECORDING_FILEDIRS, min_length=1)
    queue_action_markers: tuple[str, ...] = ("QUEUE",)
    recapi_error_content_types: tuple[str, ...] = ("json",)
    throttle_wait_s: float = Field(default=DEFAULT_THROTTLE_WAIT_S, ge=0)
    throttle_long_wait_s: float = Field(default=DEFAULT_THROTTLE_LONG_WAIT_S, ge=0)
    max_throttle_retries: int = Field(default=DEFAULT_MAX_THROTTLE_RETRIES, ge=0)
    transient_api_retries: int = Field(default=DEFAULT_TRANSIENT_API_RETRIES, ge=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        resolve_timezone(value)
        return value

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if "/" in value or ":" in value.strip("[]"):
            raise ValueError(
                "host must be a bare host name or IP (put scheme, port and path in their fields)"
            )
        return value

    @field_validator("api_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("api_path must start with '/'")
        return value

    @field_validator("tls_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else normalize_fingerprint(value)

    @model_validator(mode="after")
    def _tls_settings(self) -> UcmConnection:
        if self.scheme == "http" and not is_loopback_host(self.host):
            raise ValueError(
                f"plain http is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost), not "
                f"{self.host!r}: use https (the session cookie would travel in clear)"
            )
        if self.tls_fingerprint is not None and (self.insecure or self.ca_file is not None):
            raise ValueError(
                "tls_fingerprint replaces certificate verification: do not combine it with insecure "
                "or ca_file"
            )
        return self

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> UcmConnection:
        """Build a connection from a base URL such as ``https://127.0.0.1:8089``.

        Args:
            url: ``scheme://host[:port][/api_path]``.
            **settings: The remaining fields (api_user, password, timezone, ...).
        """
        parsed = httpx.URL(url)
        fields: dict[str, Any] = {"scheme": parsed.scheme, "host": parsed.host}
        if parsed.port is not None:
            fields["port"] = parsed.port
        elif parsed.scheme == "https":
            fields["port"] = 443
        if parsed.path not in ("", "/"):
            fields["api_path"] = parsed.path
        return cls(**{**fields, **settings})

    @property
    def api_url(self) -> str:
        """Full URL of the JSON endpoint."""
        return f"{self.scheme}://{self.host}:{self.port}{self.api_path}"

    @property
    def zone(self) -> ZoneInfo:
        """The PBX time zone."""
        return resolve_timezone(self.timezone)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_cdr_query(
    window: LocalWindow,
    *,
    offset: int,
    page_size: int,
    time_filter: str | None,
    numbers_as_strings: bool = True,
) -> dict[str, str | int]:
    """cdrapi parameters, validated here because the PBX answers malformed ones with an empty result.

    Args:
        window: PBX-local window from :func:`audiapro.ucm.timewindow.local_window`.
        offset: Records to skip (>= 0).
        page_size: ``numRecords`` (1..MAX_PAGE_SIZE).
        time_filter: ``Start``, ``End`` or None to omit ``timeFilterType``.
        numbers_as_strings: Send numRecords/offset as strings.

    Raises:
        UcmConfigError: A parameter the PBX would silently ignore or reject.
    """
    if isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise UcmConfigError(f"numRecords must be 1..{MAX_PAGE_SIZE}, got {page_size!r}")
    if isinstance(offset, bool) or offset < 0:
        raise UcmConfigError(f"offset must be >= 0, got {offset!r}")
    if time_filter is not None and time_filter not in TIME_FILTERS:
        raise UcmConfigError(f"timeFilterType must be one of {TIME_FILTERS}, got {time_filter!r}")
    for value in window:
        if not is_local_query_time(value):
            raise UcmConfigError(f"cdrapi time {value!r} is not YYYY-MM-DDTHH:MM:SS")
    if window.start > window.end:  # same fixed-width format, so string order is time order
        raise UcmConfigError(f"cdrapi window start {window.start} is after end {window.end}")
    query: dict[str, str | int] = {
        "format": "json",
        "numRecords": str(page_size) if numbers_as_strings else page_size,
        "offset": str(offset) if numbers_as_strings else offset,
        "startTime": window.start,
        "endTime": window.end,
    }
    if time_filter is not None:
        query["timeFilterType"] = time_filter
    return query


class _RetryableHttpStatus(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.status_code = status_code


class _Throttled(Exception):
    def __init__(self, code: int, payload: dict[str, Any]) -> None:
        super().__init__(code)
        self.code = code
        self.payload = payload


def _response_object(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = payload.get("response")
    return inner if isinstance(inner, Mapping) else {}


def _status_code(payload: Mapping[str, Any]) -> int:
    raw = payload.get("status", 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise UcmResponseError(f"reply status {type(raw).__name__} is not an integer") from None


def _counter(payload: Mapping[str, Any], key: str) -> str | None:
    """remain_num / remain_time: clients have seen them both in ``response`` and at top level."""
    for container in (_response_object(payload), payload):
        if container.get(key) not in (None, ""):
            return coerce_value(container[key])
    return None


def _fingerprint_mismatch(exc: BaseException) -> FingerprintMismatch | None:
    seen: BaseException | None = exc
    for _ in range(MAX_CAUSE_DEPTH):
        if seen is None or isinstance(seen, FingerprintMismatch):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _endpoint_hint(port: int, status: int) -> str:
    """What an HTTP 3xx/4xx on the API URL usually means."""
    if port == CLOUDUCM_PORT:
        return (
            f"On an on-prem UCM, port {CLOUDUCM_PORT} is the old CDR API listener (Digest /cdrapi) and the "
            f"JSON API is on the web port (default {ONPREM_WEB_PORT}); on CloudUCM {CLOUDUCM_PORT} is "
            "right, so check the host and api_path"
        )
    return (
        f"Check host, port (CloudUCM {CLOUDUCM_PORT}; on-prem UCM: its web port, default "
        f"{ONPREM_WEB_PORT}) and api_path, and that the HTTPS API is enabled in Integrations -> API "
        "Configuration" + (" (or a proxy in between refuses access)" if status in (401, 403, 407) else "")
    )


def _recording_label(name: str) -> str:
    """Loggable name of a recording: file names embed phone numbers, so keep only prefix + epoch."""
    match = re.match(r"^([A-Za-z]+-\d{9,11})", name)
    if match:
        return f"{match.group(1)}..."
    return "sha256:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]


class UcmClient:
    """Client for one PBX. Not thread-safe: use one client (one session) per worker.

    Example:
        >>> with UcmClient(conn) as client:  # doctest: +SKIP
        ...     legs = client.fetch_cdrs(start_utc, end_utc)
    """

    def __init__(
        self,
        connection: UcmConnection,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        login_guard: LoginGuard | None = None,
    ) -> None:
        """Create a client; nothing is sent until the first call (login is lazy).

        Args:
            connection: Tenant settings.
            transport: Optional httpx transport (tests inject ``httpx.MockTransport``).
            sleep: Called for every backoff or throttle wait (tests inject a recorder).
            rng: Random source for backoff jitter.
            login_guard: Held around every challenge+login exchange (the first login and every
                re-login); share one per tenant so that clients serialise their handshakes and stop
                logging in after a failed login. Default: a :class:`MemoryLoginGuard` of this client.
        """
        self.connection = connection
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._guard: LoginGuard = login_guard if login_guard is not None else MemoryLoginGuard()
        self._cookie: SecretStr | None = None
        self._auth_failure: UcmAuthError | None = None
        self._closed = False
        # Values that must never reach a message; the password is there from the start.
        self._secrets: set[str] = {connection.password.get_secret_value()}
        self._http = httpx.Client(
            transport=transport,
            verify=self._verify_setting(),
            timeout=httpx.Timeout(connection.read_timeout_s, connect=connection.connect_timeout_s),
            follow_redirects=False,
        )

    def _verify_setting(self) -> ssl.SSLContext | bool:
        """httpx ``verify``: pinned fingerprint, no verification, a CA bundle, or the OS trust store."""
        conn = self.connection
        if conn.tls_fingerprint is not None:
            return pinned_context(conn.tls_fingerprint)
        if conn.insecure:
            logger.warning(
                "UCM %s:%s: TLS certificate verification is OFF (insecure=True)%s",
                conn.host,
                conn.port,
                "; ca_file is ignored" if conn.ca_file else "",
            )
            return False
        if conn.ca_file is None:
            return system_trust_context()
        try:
            return ca_file_context(str(conn.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise UcmConfigError(f"cannot load CA bundle {conn.ca_file}: {type(exc).__name__}") from None

    def __repr__(self) -> str:
        conn = self.connection
        state = "open" if self._cookie is not None else "no session"
        return f"UcmClient({conn.scheme}://{conn.host}:{conn.port}, user={conn.api_user!r}, {state})"

    def __enter__(self) -> UcmClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- transport

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _send(
        self,
        request: Mapping[str, Any],
        consume: Callable[[httpx.Response], Any],
        *,
        retry: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """POST one request and hand the streamed response to ``consume``, retrying transport failures.

        HTTP 5xx, timeouts and connection errors (also those raised while ``consume`` reads the body)
        are retried with backoff; TLS verification failures and other HTTP codes are not (a 3xx/4xx
        raises :class:`UcmEndpointError`: the URL does not serve the JSON API).
        """
        action = str(request.get("action", "?"))
        content = json.dumps({"request": dict(request)}, separators=(",", ":")).encode("utf-8")
        attempts = self.connection.retry.max_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                with self._http.stream(
                    "POST",
                    self.connection.api_url,
                    content=content,
                    headers=REQUEST_HEADERS,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                ) as response:
                    if response.status_code >= HTTP_SERVER_ERROR:
                        raise _RetryableHttpStatus(response.status_code)
                    if not 200 <= response.status_code < 300:
                        raise self._endpoint_error(action, response.status_code)
                    return consume(response)
            except _RetryableHttpStatus as exc:
                failure: UcmTransportError = UcmHttpError(
                    f"UCM {action}: HTTP {exc.status_code} after {attempt} attempt(s)", exc.status_code
                )
            except httpx.TransportError as exc:
                if is_tls_failure(exc):
                    raise self._tls_error(action, exc) from exc
                failure = UcmTransportError(
                    f"UCM {action}: {type(exc).__name__} talking to {self.connection.api_url} "
                    f"after {attempt} attempt(s)"
                )
            if attempt == attempts:
                raise failure
            delay = self.connection.retry.delay(attempt, self._rng)
            logger.warning("UCM %s: %s; retry %d/%d in %.2fs", action, failure, attempt, attempts - 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _endpoint_error(self, action: str, status: int) -> UcmEndpointError:
        conn = self.connection
        return UcmEndpointError(
            f"UCM {action}: HTTP {status} from {conn.api_url}: this URL does not serve the UCM JSON API. "
            f"{_endpoint_hint(conn.port, status)}",
            status,
        )

    def _tls_error(self, action: str, exc: BaseException) -> UcmTlsError:
        conn = self.connection
        mismatch = _fingerprint_mismatch(exc)
        if mismatch is not None:
            return UcmTlsError(
                f"UCM {action}: the certificate of {conn.host}:{conn.port} is not the pinned one (SHA-256 "
                f"expected {mismatch.expected}, seen {mismatch.seen}); nothing was sent. If the PBX "
                "certificate was replaced on purpose, update tls_fingerprint",
                expected_fingerprint=mismatch.expected,
                seen_fingerprint=mismatch.seen,
            )
        return UcmTlsError(
            f"UCM {action}: TLS handshake with {conn.host}:{conn.port} failed ({self._redact(str(exc))}); "
            "set ca_file to the tenant's CA bundle or tls_fingerprint to the PBX certificate's SHA-256 "
            "fingerprint (or check scheme and port)"
        )

    def _read_json(self, response: httpx.Response) -> dict[str, Any]:
        body = response.read()
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise UcmResponseError(
                f"UCM answered HTTP {response.status_code} with a non-JSON body "
                f"(content-type {response.headers.get('content-type', '')!r}, {len(body)} bytes)"
            ) from None
        if not isinstance(payload, dict):
            raise UcmResponseError(f"UCM answered JSON {type(payload).__name__}, expected an object")
        return payload

    # ------------------------------------------------------------------------------------- session

    def _api_error(self, code: int, payload: Mapping[str, Any], action: str) -> UcmApiError:
        inner = _response_object(payload)
        return error_for_status(
            code,
            self._redact(coerce_value(inner.get("error_msg") or payload.get("error_msg") or "")),
            action=action,
            remain_num=_counter(payload, "remain_num"),
            remain_time=_counter(payload, "remain_time"),
        )

    def _throttle_wait(self, code: int) -> float | None:
        if code in SHORT_THROTTLE_STATUSES:
            return self.connection.throttle_wait_s
        if code in LONG_THROTTLE_STATUSES:
            return self.connection.throttle_long_wait_s
        return None

    def _check_handshake_reply(self, payload: dict[str, Any], action: str) -> Mapping[str, Any]:
        code = _status_code(payload)
        if code == 0:
            return _response_object(payload)
        if self._throttle_wait(code) is not None:
            raise _Throttled(code, payload)
        raise self._api_error(code, payload, action)

    def _handshake(self) -> SecretStr:
        """One challenge + login exchange. Each request is sent once: a lost login reply must not be
        re-sent with the same (single-use) token, which the PBX would count as a failed login."""
        conn = self.connection
        reply = self._send(
            {"action": "challenge", "user": conn.api_user, "version": conn.api_version},
            self._read_json,
            retry=False,
        )
        challenge = coerce_value(self._check_handshake_reply(reply, "challenge").get("challenge"))
        if not challenge:
            raise UcmResponseError("UCM challenge reply carries no challenge")
        self._secrets.add(challenge)
        secret = (challenge + conn.password.get_secret_value()).encode("utf-8")
        token = hashlib.md5(secret, usedforsecurity=False).hexdigest()
        self._secrets.add(token)
        request = {"action": "login", "user": conn.api_user, "token": token}
        if conn.login_url:
            request["url"] = conn.login_url
        reply = self._send(request, self._read_json, retry=False)
        cookie = coerce_value(self._check_handshake_reply(reply, "login").get("cookie"))
        if not cookie:
            raise UcmResponseError("UCM login reply carries no cookie")
        self._secrets.add(cookie)
        return SecretStr(cookie)

    def login(self) -> None:
        """Open a new session now (calls log in lazily, so this is optional).

        The challenge+login exchange runs inside the login guard's ``handshake()`` (serialised per
        tenant; refused with :class:`UcmLoginBlocked` while the tenant is paused). Connection errors,
        timeouts and HTTP 5xx restart the whole handshake with backoff, "retry later" statuses too (at
        most ``transient_api_retries`` times); throttling waits as configured. HTTP 3xx/4xx, TLS and
        authentication failures are raised at once. An authentication failure is also remembered: this
        client then refuses to try again, because repeated failed logins get the client's IP banned by
        the PBX; the guard learns of it (:meth:`LoginGuard.failed`) so other clients stop too.

        Raises:
            UcmLoginBlocked: The guard pauses logins of this tenant (nothing was sent).
            UcmAuthError: Wrong password, unknown user, ban, or no permission.
            UcmThrottledError: Still throttled after the configured waits.
            UcmEndpointError: The API URL answered HTTP 3xx/4xx (wrong port or path).
            UcmTransportError: The PBX stayed unreachable.
        """
        if self._closed:
            raise UcmConfigError("UcmClient is closed")
        if self._auth_failure is not None:
            raise self._auth_failure
        conn = self.connection
        failures = throttled = transient = 0
        while True:
            try:
                self._cookie = self._guarded_handshake()
                logger.info("UCM login ok: user %s at %s:%s", conn.api_user, conn.host, conn.port)
                return
            except _Throttled as exc:
                if throttled >= conn.max_throttle_retries:
                    raise self._api_error(exc.code, exc.payload, "login") from None
                throttled += 1
                wait = self._throttle_wait(exc.code) or 0.0
                logger.warning("UCM login throttled (status %d); waiting %.1fs", exc.code, wait)
                self._sleep(wait)
            except UcmLoginBlocked:
                raise  # the guard's pause ends on its own: not remembered by this client
            except UcmAuthError as exc:
                self._auth_failure = exc
                logger.error("UCM login failed: %s", exc)
                raise
            except UcmTransientApiError as exc:
                transient += 1
                if transient > conn.transient_api_retries:
                    raise
                self._backoff("login", exc, transient)
            except UcmError as exc:
                if not isinstance(exc, UcmTransportError) or not is_transient_error(exc):
                    raise
                failures += 1
                if failures >= conn.retry.max_attempts:
                    raise
                self._backoff("login", exc, failures, what="new handshake")

    def _guarded_handshake(self) -> SecretStr:
        with self._guard.handshake():
            try:
                cookie = self._handshake()
            except UcmAuthError as exc:
                if blocks_logins(exc):
                    self._guard.failed(exc)
                raise
            self._guard.succeeded()
        return cookie

    def _backoff(self, action: str, exc: BaseException, retry_number: int, *, what: str = "retry") -> None:
        delay = self.connection.retry.delay(retry_number, self._rng)
        logger.warning("UCM %s: %s; %s in %.2fs", action, exc, what, delay)
        self._sleep(delay)

    def _session_cookie(self) -> str:
        if self._cookie is None:
            self.login()
        assert self._cookie is not None  # login() either sets it or raises
        return self._cookie.get_secret_value()

    def logout(self) -> None:
        """End the session, best effort: never raises."""
        cookie, self._cookie = self._cookie, None
        if cookie is None:
            return
        try:
            self._send(
                {"action": "logout", "cookie": cookie.get_secret_value()}, self._read_json, retry=False
            )
            logger.debug("UCM logout sent")
        except Exception as exc:  # logout is a courtesy; the session expires on its own
            logger.debug("UCM logout failed (ignored): %s", type(exc).__name__)

    def close(self) -> None:
        """Log out (best effort) and release the HTTP connection pool. Safe to call twice."""
        if self._closed:
            return
        try:
            self.logout()
        finally:
            self._closed = True
            self._http.close()

    def call(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        consume: Callable[[httpx.Response], Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """Run one authenticated action with session, throttle and transport handling.

        -5/-6 trigger one re-login and one retry; -45/-46/-57 wait and retry a bounded number of
        times; "retry later" statuses (-7, -8, -9, -51, -251) are re-sent up to
        ``transient_api_retries`` times with backoff, then raise :class:`UcmTransientApiError`; other
        negative statuses raise typed errors.

        Args:
            action: API action, e.g. ``getSystemStatus``.
            params: Further request fields (the cookie is added here).
            consume: Reads the HTTP response; returns the decoded JSON dict (default) or any
                non-dict result, which is passed through without status checks (downloads).
            timeout: Per-request timeout override.

        Returns:
            The decoded reply (status 0 or absent), or what ``consume`` returned.
        """
        reader = consume or self._read_json
        relogged = False
        throttled = transient = 0
        while True:
            request = {"action": action, "cookie": self._session_cookie(), **(params or {})}
            reply = self._send(request, reader, timeout=timeout)
            if not isinstance(reply, dict):
                return reply
            code = _status_code(reply)
            if code == 0:
                return reply
            if code in SESSION_STATUSES and not relogged:
                logger.info("UCM %s: session rejected (status %d); logging in again", action, code)
                self._cookie = None
                relogged = True
                continue
            wait = self._throttle_wait(code)
            if wait is not None and throttled < self.connection.max_throttle_retries:
                throttled += 1
                logger.warning("UCM %s throttled (status %d); waiting %.1fs", action, code, wait)
                self._sleep(wait)
                continue
            error = self._api_error(code, reply, action)
            if isinstance(error, UcmTransientApiError) and transient < self.connection.transient_api_retries:
                transient += 1
                self._backoff(action, error, transient)
                continue
            raise error

    def system_time(self) -> datetime:
        """The PBX clock (``getSystemStatus`` ``system-time``), aware, in the PBX's own UTC offset.

        Raises:
            UcmResponseError: ``system-time`` is missing, unreadable, or carries no UTC offset.
        """
        reply = self.call("getSystemStatus")
        return parse_system_time(_response_object(reply).get("system-time"))

    # ---------------------------------------------------------------------------------------- CDRs

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        """Page through cdrapi for one UTC window.

        The offset advances by what each page actually held (items or legs, per ``page_counting``);
        a short page is not the end. The end is an empty page, or a *short* page identical to the
        previous one (some firmware answers an offset past the end with the last page again; logged
        as a warning); either is re-requested ``empty_page_confirmations`` times first, because a PBX
        may also replay a stale reply. A *full* page identical to the previous one is re-requested up
        to ``repeated_page_retries`` times, then :class:`UcmPagingError` is raised.

        Args:
            start_utc: Window start, timezone-aware.
            end_utc: Window end, timezone-aware (inclusive, as on the PBX).
            time_filter: ``Start`` or ``End``; defaults to the connection's ``time_filter``.

        Yields:
            One :class:`CdrPage` per new non-empty page.

        Raises:
            UcmPagingError: The PBX kept serving the same full page.
            UcmPageCapExceeded: More than ``max_pages`` pages; split the window.
            UcmConfigError: Invalid window or parameters.
        """
        conn = self.connection
        window = local_window(start_utc, end_utc, conn.zone)
        filter_type = self._checked_filter(time_filter)
        offset = pages = legs = 0
        previous: str | None = None
        repeats = confirmations = 0
        while True:
            page = self._cdr_page(window, filter_type, offset)
            signature = page_signature(page) if page.item_count else None
            repeated = signature is not None and signature == previous
            if page.item_count == 0 or (repeated and self._is_short(page)):
                if confirmations < conn.empty_page_confirmations:
                    confirmations += 1
                    logger.debug("UCM cdrapi offset %d: end of data?, confirming (%d)", offset, confirmations)
                    continue
                self._log_window_end(window, filter_type, page, legs, pages)
                return
            if repeated:
                repeats += 1
                if repeats > conn.repeated_page_retries:
                    raise UcmPagingError(
                        f"cdrapi kept returning the same page at offset {offset} "
                        f"({repeats} repeats) for window {window.start}..{window.end}"
                    )
                logger.warning("UCM cdrapi offset %d repeated the previous page; re-requesting", offset)
                self._sleep(conn.retry.delay(repeats, self._rng))
                continue
            if pages >= conn.max_pages:
                raise UcmPageCapExceeded(
                    f"cdrapi window {window.start}..{window.end} needs more than {conn.max_pages} pages "
                    f"of {conn.page_size}; split the window",
                    pages=pages,
                    offset=offset,
                )
            repeats = confirmations = 0
            previous = signature
            self._log_malformed(page)
            pages += 1
            legs += len(page.legs)
            yield page
            offset += self._page_units(page)

    def _checked_filter(self, time_filter: str | None) -> str:
        conn = self.connection
        filter_type = time_filter or conn.time_filter
        if filter_type not in TIME_FILTERS:
            raise UcmConfigError(f"time_filter must be one of {TIME_FILTERS}, got {filter_type!r}")
        if not conn.send_time_filter_type and filter_type != "Start":
            raise UcmConfigError("time_filter 'End' needs send_time_filter_type=True")
        return filter_type

    def _cdr_page(self, window: LocalWindow, filter_type: str, offset: int) -> CdrPage:
        conn = self.connection
        query = build_cdr_query(
            window,
            offset=offset,
            page_size=conn.page_size,
            time_filter=filter_type if conn.send_time_filter_type else None,
            numbers_as_strings=conn.numbers_as_strings,
        )
        items = extract_cdr_items(self.call("cdrapi", query))
        if items is None:
            raise UcmResponseError("cdrapi reply has no cdr_root and no error status")
        return parse_cdr_items(items, offset=offset)

    def _page_units(self, page: CdrPage) -> int:
        """What the page occupied on the PBX side, in the unit ``offset`` counts."""
        return page.item_count if self.connection.page_counting == "items" else page.leg_count

    def _is_short(self, page: CdrPage) -> bool:
        return self._page_units(page) < self.connection.page_size

    def _log_window_end(
        self, window: LocalWindow, filter_type: str, page: CdrPage, legs: int, pages: int
    ) -> None:
        if page.item_count:
            logger.warning(
                "UCM cdrapi offset %d: the PBX answered with the previous short page again (%d %s of "
                "%d); taking it as the end of window %s..%s",
                page.offset,
                self._page_units(page),
                self.connection.page_counting,
                self.connection.page_size,
                *window,
            )
        if legs == 0:
            logger.info("UCM cdrapi window %s..%s (%s): zero rows", window.start, window.end, filter_type)
        else:
            logger.info("UCM cdrapi window %s..%s: %d legs in %d page(s)", *window, legs, pages)

    @staticmethod
    def _log_malformed(page: CdrPage) -> None:
        if page.malformed:
            logger.warning(
                "UCM cdrapi offset %d: %d malformed entr(y/ies) at item positions %s (record numbers %s)",
                page.offset,
                len(page.malformed),
                sorted({item.position for item in page.malformed}),
                sorted({item.record_number for item in page.malformed}),
            )

    def fetch_cdrs(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> list[RawLeg]:
        """All legs of a UTC window, de-duplicated by AcctId (pages may overlap).

        Malformed entries are logged (count and positions); use :meth:`iter_cdr_pages` to get them.
        Arguments and errors as in :meth:`iter_cdr_pages`.
        """
        window = collect_pages(self.iter_cdr_pages(start_utc, end_utc, time_filter=time_filter))
        if window.duplicates:
            logger.info(
                "UCM cdrapi: dropped %d leg(s) seen on an earlier page (same AcctId)", window.duplicates
            )
        if window.malformed:
            logger.warning("UCM cdrapi: %d malformed entr(y/ies) not returned as legs", len(window.malformed))
        return window.legs

    # ---------------------------------------------------------------------------------- recordings

    def record_infos(self, acct_id: str) -> list[str]:
        """Recording paths of one leg (getRecordInfosByCall).

        Args:
            acct_id: The leg's AcctId.

        Returns:
            Paths like ``2025-03/auto-....wav``; ``[]`` when the PBX reports no recording (-15).
        """
        acct_id = acct_id.strip()
        if not acct_id:
            raise UcmConfigError("record_infos needs a non-empty AcctId")
        try:
            reply = self.call("getRecordInfosByCall", {"id": acct_id})
        except UcmApiError as exc:
            if exc.code == NO_RECORDING_STATUS:
                logger.debug("UCM AcctId %s: no recording", acct_id)
                return []
            raise
        files = parse_record_infos(_response_object(reply).get("recordfiles", reply.get("recordfiles")))
        logger.debug("UCM AcctId %s: %d recording(s)", acct_id, len(files))
        return files

    def _filedirs_for(self, action_type: str) -> list[str]:
        dirs = list(self.connection.recording_filedirs)
        wants_queue = any(
            marker.upper() in action_type.upper() for marker in self.connection.queue_action_markers
        )
        if wants_queue and QUEUE_FILEDIR in dirs:
            dirs.remove(QUEUE_FILEDIR)
            dirs.insert(0, QUEUE_FILEDIR)
        return dirs

    def _save_recording(self, response: httpx.Response, target: Path) -> dict[str, Any] | Path:
        """Stream a recapi reply into ``target`` or return the JSON error object it carried."""
        content_type = response.headers.get("content-type", "").lower()
        chunks = response.iter_bytes(DOWNLOAD_CHUNK_BYTES)
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= WAV_HEADER_BYTES:
                break
        if any(marker in content_type for marker in self.connection.recapi_error_content_types) or (
            head.lstrip().startswith(b"{")
        ):
            body = head
            for chunk in chunks:
                body += chunk
                if len(body) > MAX_ERROR_BODY_BYTES:
                    raise UcmRecordingError("recapi error reply is unreasonably large")
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise UcmRecordingError(f"recapi answered {content_type!r} that is not valid JSON") from None
            if not isinstance(payload, dict):
                raise UcmRecordingError("recapi answered JSON that is not an object")
            return payload
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise UcmRecordingError(
                f"recapi reply is not a RIFF/WAVE file (content-type {content_type!r}, {len(head)}+ bytes)"
            )
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head)
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def download_recording(self, recordfile: str, dest_dir: Path | str, *, action_type: str = "") -> Path:
        """Download one recording as WAV via recapi.

        The file is streamed to a temporary file in ``dest_dir`` and renamed when complete, so a
        partial download never appears under the final name.

        Args:
            recordfile: A path from ``recordfiles`` or :meth:`record_infos` (month dir and ``@`` ok).
            dest_dir: Directory to write into (created if missing).
            action_type: The leg's ``action_type``; queue calls try the ``queue`` directory first.

        Returns:
            Path of the saved ``.wav`` file (``dest_dir / basename``).

        Raises:
            UcmRecordingNotFound: No configured directory had the file.
            UcmRecordingError: The PBX sent something that is not a RIFF/WAVE file.
        """
        name = recording_basename(recordfile)
        if not name or name in (".", "..") or ".." in name or "@" in name or name != name.strip():
            raise UcmConfigError("recording file name is empty or unsafe (one file per call, no '..')")
        label = _recording_label(name)
        target_dir = Path(dest_dir)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / name
        conn = self.connection
        timeout = httpx.Timeout(conn.download_read_timeout_s, connect=conn.connect_timeout_s)
        misses: list[str] = []
        for filedir in self._filedirs_for(action_type):
            try:
                result = self.call(
                    "recapi",
                    {"filedir": filedir, "filename": name},
                    consume=lambda response: self._save_recording(response, target),
                    timeout=timeout,
                )
            except UcmHttpError as exc:
                if exc.status_code != HTTP_NOT_FOUND:
                    raise
                misses.append(f"{filedir}: HTTP {exc.status_code}")
                continue
            except (UcmAuthError, UcmThrottledError):
                raise
            except UcmApiError as exc:
                misses.append(f"{filedir}: status {exc.code}")
                continue
            if isinstance(result, Path):
                logger.info(
                    "UCM recording %s saved from %s (%d bytes)", label, filedir, result.stat().st_size
                )
                return result
            misses.append(f"{filedir}: JSON reply without audio")
        raise UcmRecordingNotFound(f"recording {label} not found ({'; '.join(misses)})")
