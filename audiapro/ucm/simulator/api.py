"""The ``POST /api`` protocol: envelope, authentication, cdrapi, recordings and fault injection.

Transport-independent: :meth:`UcmApi.handle` takes the raw request body and the client address and
returns an :class:`HttpReply`, which the HTTP server writes out. One lock guards all state; sleeps
for the ``slow``/``hang`` faults happen outside it so other clients keep being served.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audiapro.ucm.simulator.auth import (
    STATUS_COOKIE_ERROR,
    STATUS_INVALID,
    STATUS_NO_PERMISSION,
    STATUS_OK,
    AuthState,
)
from audiapro.ucm.simulator.clock import SimClock
from audiapro.ucm.simulator.config import FaultConfig, SimulatorConfig
from audiapro.ucm.simulator.faults import FaultInjector, SimulatorStats
from audiapro.ucm.simulator.generator import DataStore
from audiapro.ucm.simulator.junk import Entry, JunkItem, junk_count, with_junk
from audiapro.ucm.simulator.legs import FIELDS_32, FIELDS_43, Leg, main_cdr, render_leg, wall_seconds
from audiapro.ucm.simulator.query import (
    CdrQuery,
    InvalidQuery,
    group_items,
    last_page_start,
    page,
    parse_query,
    size_of,
)
from audiapro.ucm.simulator.wav import synth_wav

API_PATH = "/api"
JSON_TYPE = "application/json;charset=UTF-8"
INVALID_BODY = {"response": {"error_msg": "Invalid parameters!"}, "status": STATUS_INVALID}
STATUS_NO_RECORDING = -15
AUTH_ACTIONS = frozenset({"challenge", "login"})
SESSION_ACTIONS = frozenset(
    {"logout", "getSystemStatus", "getSystemGeneralStatus", "cdrapi", "getRecordInfosByCall", "recapi"}
)
MAX_BODY_BYTES = 1 << 20
WAV_CACHE_SIZE = 32
QUERY_CACHE_SIZE = 8
#: Request keys that do not change which items a query matches.
_PAGING_PARAMS = frozenset({"action", "cookie", "offset", "numRecords", "format"})
_WALL_ORIGIN = date(1970, 1, 1)
_HTML_500 = b"<html><head><title>500 Internal Server Error</title></head><body>500</body></html>"


@dataclass(frozen=True)
class HttpReply:
    """What to send back: HTTP status, body, content type and extra headers."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(payload: Mapping[str, Any], status: int = 200) -> HttpReply:
    """A JSON reply (compact, like the PBX)."""
    return HttpReply(status, json.dumps(payload, separators=(",", ":")).encode())


def parse_envelope(body: bytes) -> dict[str, Any] | None:
    """The ``request`` object of ``{"request": {"action": ...}}``, or ``None`` if malformed."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    request = payload.get("request") if isinstance(payload, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("action"), str):
        return None
    return request


class UcmApi:
    """State and request handling of one simulated PBX."""

    def __init__(
        self,
        config: SimulatorConfig,
        zone: ZoneInfo,
        store: DataStore,
        clock: SimClock,
        injector: FaultInjector,
    ) -> None:
        """Wire the API to its data, clock and fault injector."""
        self.config = config
        self.zone = zone
        self.store = store
        self.clock = clock
        self.injector = injector
        self.auth = AuthState(config)
        self.stats = SimulatorStats()
        self.lock = threading.RLock()
        self.fields = FIELDS_43 if config.schema_fields == 43 else FIELDS_32
        self._last_cdr_reply: HttpReply | None = None
        self._wavs: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._items_cache: OrderedDict[tuple[Any, ...], list[list[Leg]]] = OrderedDict()
        # (items, fault config, entries with junk) of the last query: paging re-runs the same query.
        self._junk_cache: tuple[list[list[Leg]], FaultConfig, list[Entry]] | None = None
        self._booted = clock.timestamp()
        digest = hashlib.sha256(f"ucm:{config.seed}".encode()).hexdigest().upper()
        self._mac = "00:0B:82:" + ":".join(digest[i : i + 2] for i in range(0, 6, 2))
        self._serial = digest[6:20]

    # --- entry point ------------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        body: bytes,
        client_ip: str,
        cancel: threading.Event | None = None,
    ) -> HttpReply:
        """Process one HTTP request from ``client_ip``.

        Only ``POST /api`` with a JSON ``{"request": {"action": ...}}`` body is the API; anything else
        (other methods or paths, non-JSON, no ``request``) gets ``status -1`` with HTTP 200, as the real
        CloudUCM answers.

        Args:
            method: HTTP method.
            path: URL path without query.
            body: Raw request body.
            client_ip: Peer address (bans and the IP ACL key on it).
            cancel: Set when the server stops; cuts ``hang`` faults short.
        """
        request = parse_envelope(body) if method == "POST" and path == API_PATH else None
        with self.lock:
            self.stats.requests += 1
            if request is None or request["action"] not in AUTH_ACTIONS | SESSION_ACTIONS:
                self.stats.invalid_requests += 1
                return json_reply(INVALID_BODY)
            if not self.auth.ip_permitted(client_ip):
                return json_reply({"status": STATUS_NO_PERMISSION})
            faults = self.injector.before_request(request["action"] in AUTH_ACTIONS, self.stats)
        waiter = cancel or threading.Event()
        if faults.delay:
            waiter.wait(faults.delay)
        if faults.hang:
            waiter.wait(faults.hang)
        if faults.http500:
            return HttpReply(500, _HTML_500, "text/html")
        if faults.throttle is not None:
            return json_reply({"status": faults.throttle})
        with self.lock:
            return self._dispatch(request, client_ip, self.clock.timestamp())

    def _dispatch(self, request: dict[str, Any], ip: str, now: float) -> HttpReply:
        action = request["action"]
        if action in AUTH_ACTIONS:
            return json_reply(self._authenticate(action, request, ip, now))
        cookie = request.get("cookie")
        status = self.auth.check(cookie, now)
        if status == STATUS_OK and self.injector.expire_cookie(self.stats):
            self.auth.drop(str(cookie))
            status = STATUS_COOKIE_ERROR
        if status != STATUS_OK:
            self.stats.auth_errors += 1
            return json_reply({"status": status})
        if action == "logout":
            self.auth.drop(str(cookie))
            self.stats.logouts += 1
            return json_reply({"status": STATUS_OK})
        if action == "getSystemStatus":
            return json_reply({"response": self._system_status(now), "status": STATUS_OK})
        if action == "getSystemGeneralStatus":
            return json_reply({"response": self._general_status(), "status": STATUS_OK})
        if action == "cdrapi":
            return self._cdrapi(request, now)
        if action == "getRecordInfosByCall":
            return self._record_infos(request, now)
        return self._recapi(request, now)

    # --- authentication ---------------------------------------------------------------------------
    def _authenticate(self, action: str, request: dict[str, Any], ip: str, now: float) -> dict[str, Any]:
        user = request.get("user")
        if not isinstance(user, str):
            self.stats.invalid_requests += 1
            return INVALID_BODY
        if action == "challenge":
            self.stats.challenges += 1
        banned = self.auth.banned_reply(ip, now)
        if banned is not None:
            self.stats.banned_requests += 1
            return banned
        if action == "challenge":
            return self.auth.challenge(user, now)
        token = request.get("token")
        reply, ok = self.auth.login(user, token if isinstance(token, str) else "", ip, now)
        if ok:
            self.stats.logins += 1
            self.stats.peak_sessions = max(self.stats.peak_sessions, self.auth.live_sessions(now))
        else:
            self.stats.failed_logins += 1
            if self.auth.ban_remaining(ip, now) > 0:
                self.stats.bans += 1
        return reply

    def _system_status(self, now: float) -> dict[str, str]:
        local = datetime.fromtimestamp(now, self.zone)
        offset = local.strftime("%z")
        up = max(0, int(now - self._booted))
        return {
            "part-number": "9660004310A",
            "serial-number": self._serial,
            "up-time": f"{up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}",
            "idle-time": f"{up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}",
            "system-time": local.strftime("%d-%m-%Y %H:%M:%S") + f" UTC{offset[:3]}:{offset[3:]}",
            "bindcode": "",
            "mac": self._mac,
        }

    def _general_status(self) -> dict[str, str]:
        version = self.config.firmware
        return {
            "product-model": self.config.product_model,
            "base-version": version,
            "prog-version": version,
            "boot-version": version.rsplit(".", 1)[0] + ".1",
            "core-version": version.rsplit(".", 1)[0] + ".2",
            "rcvr-version": version.rsplit(".", 1)[0] + ".1",
            "lang-version": version,
            "gswave-version": "1.0.15.6",
        }

    # --- cdrapi -----------------------------------------------------------------------------------
    def _cdrapi(self, request: dict[str, Any], now: float) -> HttpReply:
        self.stats.cdrapi_requests += 1
        if self._last_cdr_reply is not None and self.injector.repeat_page(self.stats):
            return self._last_cdr_reply
        try:
            query = parse_query(request, self.zone, now, clamp=self.config.clamp_num_records)
        except InvalidQuery:
            reply = json_reply({"cdr_root": []})
        else:
            entries = self._entries(self._items(query, request, now), query.fmt)
            chunk = self._page(entries, query)
            self.stats.faults["malformed_item"] += junk_count(chunk)
            reply = self._render_page(chunk, query.fmt)
        self._last_cdr_reply = reply
        return reply

    def _entries(self, items: list[list[Leg]], fmt: str) -> list[Entry]:
        """The query's items with injected malformed items (JSON only; CSV rows have no shape to break)."""
        faults = self.injector.config
        if fmt != "json" or faults.malformed_item_rate <= 0:
            return list(items)
        cached = self._junk_cache
        if cached is not None and cached[0] is items and cached[1] is faults:
            return cached[2]
        entries = with_junk(items, faults.malformed_item_rate, faults.fault_seed)
        self._junk_cache = (items, faults, entries)
        return entries

    def _page(self, entries: list[Entry], query: CdrQuery) -> list[Entry]:
        unit = self.config.page_unit
        offset = query.offset
        total = size_of(entries, unit)
        if self.config.past_end_repeats_last_page and total and query.num_records and offset >= total:
            offset = last_page_start(total, query.num_records)
        chunk = page(entries, offset, query.num_records, unit)
        size = size_of(chunk, unit)
        keep = self.injector.short_page(size, self.stats)
        return page(entries, offset, keep, unit) if keep < size else chunk

    def _items(self, query: CdrQuery, request: dict[str, Any], now: float) -> list[list[Leg]]:
        """All matching items of a query, cached while the visible legs stay the same.

        Paging through a large window re-runs the same query with growing offsets; the cache makes
        that cost one filtering pass instead of one per page.
        """
        low, high = query.window
        first = _wall_date(low) if low is not None else self.store.first_day
        last = _wall_date(high) if high is not None else self.store.local_date(now)
        if not query.by_end:
            last += timedelta(days=1)  # a leg starting on `high`'s day may end the next day
        params = tuple(sorted((k, str(v)) for k, v in request.items() if k not in _PAGING_PARAMS))
        uses_now = any(str(v).strip().lower() == "now" for _, v in params)
        key = (params, int(now) if uses_now else 0, self.store.visible_signature(first, last, now))
        cached = self._items_cache.get(key)
        if cached is not None:
            self._items_cache.move_to_end(key)
            return cached
        legs = self.store.visible(first, last, now)
        if query.by_end:
            legs = [leg for leg in legs if query.matches(leg, wall_seconds(leg.end, self.zone))]
        else:
            legs = [leg for leg in legs if query.matches(leg, 0)]
        items = group_items(legs, self.config.order_by)
        self._items_cache[key] = items
        if len(self._items_cache) > QUERY_CACHE_SIZE:
            self._items_cache.popitem(last=False)
        return items

    def _render_page(self, chunk: list[Entry], fmt: str) -> HttpReply:
        if fmt == "csv":
            # The API's own CSV does not quote values (docs/ucm-protocol.md, "Other formats"): as is.
            rows = [",".join(self.fields)]
            rows += [
                ",".join(render_leg(leg, self.zone, self.fields).values())
                for item in chunk
                if not isinstance(item, JunkItem)
                for leg in item
            ]
            return HttpReply(200, ("\n".join(rows) + "\n").encode(), "text/csv;charset=UTF-8")
        rendered = [item.render() if isinstance(item, JunkItem) else self.render_item(item) for item in chunk]
        return json_reply({"cdr_root": rendered})

    def render_item(self, item: list[Leg]) -> dict[str, Any]:
        """One cdr_root entry: a flat leg, or ``main_cdr`` plus ``sub_cdr_N`` for several legs."""
        if len(item) == 1:
            return {"cdr": "", **render_leg(item[0], self.zone, self.fields)}
        entry: dict[str, Any] = {"cdr": "", "main_cdr": main_cdr(item, self.zone, self.fields)}
        for n, leg in enumerate(item, start=1):
            entry[f"sub_cdr_{n}"] = render_leg(leg, self.zone, self.fields)
        return entry

    # --- recordings -------------------------------------------------------------------------------
    def _record_infos(self, request: dict[str, Any], now: float) -> HttpReply:
        self.stats.record_info_requests += 1
        raw = request.get("id")
        acct = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
        leg = self.store.by_acct(int(acct), now) if acct.isdigit() else None
        if leg is None or not leg.recordings:
            return json_reply({"status": STATUS_NO_RECORDING})
        return json_reply({"response": {"recordfiles": ",".join(leg.recordings)}, "status": STATUS_OK})

    def _recapi(self, request: dict[str, Any], now: float) -> HttpReply:
        self.stats.recapi_requests += 1
        missing = json_reply({"status": self.config.recording_missing_status})
        filedir = request.get("filedir", "monitor")
        filename = request.get("filename")
        if not isinstance(filedir, str) or not isinstance(filename, str):
            return missing
        names = [n for n in filename.split("@") if n]  # a trailing "@" is tolerated
        if len(names) != 1 or "/" in names[0] or ".." in names[0] or " " in names[0]:
            return missing  # basename only; multi-file tar downloads are not simulated
        name = names[0]
        leg = self.store.by_recording(name, now)
        if leg is None or leg.rec_dir != filedir:
            return missing
        index = [path.rsplit("/", 1)[-1] for path in leg.recordings].index(name)
        first, last = leg.rec_spans[index]
        seconds = int(min(last - first, self.config.recording_max_seconds))
        audio = self._wav(name, seconds)
        self.stats.recordings_served += 1
        return HttpReply(
            200,
            audio,
            self.config.recording_content_type,
            (("Content-Disposition", f'attachment; filename="{name}"'),),
        )

    def _wav(self, name: str, seconds: int) -> bytes:
        key = (name, seconds)
        if key in self._wavs:
            self._wavs.move_to_end(key)
            return self._wavs[key]
        audio = synth_wav(name, seconds, stereo=self.config.stereo_recordings)
        self._wavs[key] = audio
        if len(self._wavs) > WAV_CACHE_SIZE:
            self._wavs.popitem(last=False)
        return audio


def _wall_date(wall: float) -> date:
    """Calendar date of wall-clock seconds, clamped to what ``date`` can represent."""
    try:
        return _WALL_ORIGIN + timedelta(seconds=wall)
    except OverflowError:
        return date.max - timedelta(days=2) if wall > 0 else date.min + timedelta(days=2)
