"""UcmClient against the UCM simulator over real HTTP(S): completeness under faults, TLS, recordings."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import ssl
import threading
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.errors import (
    UcmAuthError,
    UcmPageCapExceeded,
    UcmPagingError,
    UcmRecordingNotFound,
    UcmTlsError,
    UcmWrongPasswordError,
    is_transient_error,
)
from audiapro.ucm.guard import LoginGuard, MemoryLoginGuard, UcmLoginBlocked
from audiapro.ucm.records import parse_recordfiles
from audiapro.ucm.retry import RetryPolicy

simulator = pytest.importorskip("audiapro.ucm.simulator", reason="UCM simulator not available")
FaultConfig = simulator.FaultConfig
SimulatorConfig = simulator.SimulatorConfig
UcmSimulator = simulator.UcmSimulator

PASSWORD = "sim-Pa55word!"
NEW_YORK = "America/New_York"
DAY = date(2026, 3, 3)  # a Tuesday: full weekday traffic

#: Waits shrunk so fault-heavy runs take seconds; attempts raised so bounded retries never run out.
FAST: dict[str, Any] = {
    "throttle_wait_s": 0.001,
    "throttle_long_wait_s": 0.002,
    "max_throttle_retries": 6,
    "retry": RetryPolicy(max_attempts=8, base_delay_s=0.001, max_delay_s=0.01),
    "read_timeout_s": 5.0,
    # The simulator replays its previous cdrapi reply at 15-20 % in the fault tests below.
    "repeated_page_retries": 8,
    "empty_page_confirmations": 3,
}


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants of one local day, end inclusive to the second (PBX windows are inclusive)."""
    zone = ZoneInfo(tz)
    nxt = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    return start, end


def make_sim(tz: str = NEW_YORK, day: date = DAY, **config: Any) -> Any:
    return UcmSimulator(
        SimulatorConfig(
            **{
                "seed": 7,
                "calls_per_day": 300,
                "start": day,
                "days": 1,
                "tz": tz,
                "password": PASSWORD,
                **config,
            }
        )
    )


def connect(
    base_url: str,
    tz: str = NEW_YORK,
    *,
    login_guard: LoginGuard | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **settings: Any,
) -> UcmClient:
    fields = {"password": SecretStr(PASSWORD), **FAST, **settings}
    conn = UcmConnection.from_url(base_url, api_user="cdrapi", timezone=tz, **fields)
    return UcmClient(conn, rng=random.Random(5), login_guard=login_guard, sleep=sleep)


def by_acct(legs: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {leg["AcctId"]: leg for leg in legs}


def assert_complete(fetched: list[dict[str, str]], truth: list[dict[str, str]]) -> None:
    counts = Counter(leg["AcctId"] for leg in fetched)
    duplicated = [acct for acct, n in counts.items() if n > 1]
    lost = set(by_acct(truth)) - set(counts)
    extra = set(counts) - set(by_acct(truth))
    assert (lost, duplicated, extra) == (set(), [], set())
    assert by_acct(fetched) == by_acct(truth)  # every field, as strings


@pytest.fixture
def sim() -> Any:
    return make_sim()


@pytest.fixture
def base_url(sim: Any) -> Iterator[str]:
    with sim.serve() as url:
        yield url


def test_fetch_day_matches_ground_truth(sim: Any, base_url: str) -> None:
    truth = sim.ground_truth()
    assert len(truth) > 300
    with connect(base_url, page_size=100) as client:
        pages = list(client.iter_cdr_pages(*day_window(DAY, NEW_YORK)))
        legs = [leg for page in pages for leg in page.legs]
    assert len(pages) > 2 and all(not page.malformed for page in pages)
    assert_complete(legs, truth)
    assert sim.stats.logins == 1 and sim.stats.logouts == 1


@pytest.mark.parametrize(
    ("page_unit", "page_counting"),
    [("items", "items"), ("legs", "legs"), ("legs", "items")],
)
def test_fetch_day_under_faults(page_unit: str, page_counting: str) -> None:
    sim = make_sim(page_unit=page_unit)
    truth = sim.ground_truth()
    sim.faults = FaultConfig(
        fault_seed=11,
        cookie_expire_every=5,
        throttle_rate=0.1,
        http500_rate=0.1,
        repeat_page_rate=0.15,
        short_page_rate=0.3,
    )
    with sim.serve() as url, connect(url, page_size=50, page_counting=page_counting) as client:
        # Fetch twice: the second window starts right after the first one's final empty reply, which
        # the simulator may replay (a stale empty page must not end the window).
        first = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
        second = client.fetch_cdrs(*day_window(DAY, NEW_YORK), time_filter="Start")
    assert_complete(first, truth)
    assert_complete(second, truth)
    fired = sim.stats.faults
    for kind in ("cookie_expire", "throttle", "http500", "repeat_page", "short_page"):
        assert fired[kind] > 0, kind
    assert sim.stats.failed_logins == 0


def test_long_throttle_and_hanging_requests() -> None:
    sim = make_sim(calls_per_day=80)
    truth = sim.ground_truth()
    sim.faults = FaultConfig(
        fault_seed=3, throttle_rate=0.2, throttle_code=-57, hang_rate=0.1, hang_seconds=3
    )
    with sim.serve() as url, connect(url, page_size=20, read_timeout_s=0.3) as client:
        legs = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
    assert_complete(legs, truth)
    assert sim.stats.faults["hang"] > 0 and sim.stats.faults["throttle"] > 0


@pytest.mark.parametrize(
    ("tz", "day"), [(NEW_YORK, date(2026, 11, 1)), ("Europe/London", date(2026, 10, 25))]
)
def test_dst_fall_back_day_in_hourly_windows(tz: str, day: date) -> None:
    sim = make_sim(tz=tz, day=day)
    truth = sim.ground_truth()
    start, end = day_window(day, tz)
    assert end - start > timedelta(hours=24)  # the 25-hour day
    sim.faults = FaultConfig(fault_seed=5, repeat_page_rate=0.2, short_page_rate=0.2)
    fetched: dict[str, dict[str, str]] = {}
    with sim.serve() as url, connect(url, tz=tz, page_size=25) as client:
        cursor = start
        while cursor <= end:
            window_end = min(cursor + timedelta(hours=1) - timedelta(seconds=1), end)
            for leg in client.fetch_cdrs(cursor, window_end):
                fetched.setdefault(leg["AcctId"], leg)  # windows overlap around the repeated hour
            cursor += timedelta(hours=1)
    assert fetched == by_acct(truth)
    repeated_hour = [leg for leg in truth if leg["start"][11:13] == "01"]
    assert repeated_hour and all(leg["AcctId"] in fetched for leg in repeated_hour)


def test_session_idle_expiry_relogs(sim: Any, base_url: str) -> None:
    with connect(base_url) as client:
        client.call("getSystemStatus")
        sim.clock.advance(3600)  # beyond the 600 s idle timeout
        legs = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
    assert_complete(legs, sim.ground_truth())
    assert sim.stats.logins == 2 and sim.stats.auth_errors >= 1


def test_wrong_password_exactly_one_failed_login(sim: Any, base_url: str) -> None:
    conn = UcmConnection.from_url(base_url, api_user="cdrapi", password=SecretStr("wrong"), timezone=NEW_YORK)
    with UcmClient(conn) as client:
        for _ in range(3):
            with pytest.raises(UcmWrongPasswordError) as info:
                client.fetch_cdrs(*day_window(DAY, NEW_YORK))
    assert sim.stats.failed_logins == 1 and sim.stats.bans == 0
    assert info.value.remain_num == "4"
    assert "wrong" not in str(info.value).replace("Wrong", "")


def test_page_cap(base_url: str) -> None:
    with connect(base_url, page_size=10, max_pages=3) as client, pytest.raises(UcmPageCapExceeded):
        client.fetch_cdrs(*day_window(DAY, NEW_YORK))


def test_empty_window_logged(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="audiapro.ucm")
    with connect(base_url) as client:
        assert client.fetch_cdrs(*day_window(date(2026, 1, 1), NEW_YORK)) == []
    assert "zero rows" in caplog.text


# ------------------------------------------------------------------------------------------ TLS


def test_tls_with_simulator_ca() -> None:
    sim = make_sim(tls=True, calls_per_day=40)
    assert sim.ca_file is not None
    with sim.serve() as url:
        assert url.startswith("https://")
        with connect(url, ca_file=sim.ca_file) as client:
            legs = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
        assert_complete(legs, sim.ground_truth())
        waits: list[float] = []
        with connect(url, sleep=waits.append) as client, pytest.raises(UcmTlsError, match="ca_file"):
            client.login()
        assert waits == []  # not retried: every retry of the client waits its backoff first
        with connect(url, insecure=True) as client:
            client.login()


# ----------------------------------------------------------------------------------- recordings


def test_recordings_download_as_wav(sim: Any, base_url: str, tmp_path: Path) -> None:
    truth = sim.ground_truth()
    recorded = [leg for leg in truth if leg["recordfiles"]]
    queued = [leg for leg in recorded if "QUEUE" in leg["action_type"]]
    assert recorded and queued
    sample = recorded[:4] + queued[:2]
    with connect(base_url) as client:
        for leg in sample:
            files = client.record_infos(leg["AcctId"])
            assert files == parse_recordfiles(leg["recordfiles"])
            for recordfile in files:
                path = client.download_recording(recordfile, tmp_path, action_type=leg["action_type"])
                assert path.read_bytes()[:4] == b"RIFF"
                with wave.open(str(path)) as audio:
                    assert audio.getnframes() > 0
        unrecorded = next(leg for leg in truth if not leg["recordfiles"])
        assert client.record_infos(unrecorded["AcctId"]) == []
        with pytest.raises(UcmRecordingNotFound):
            client.download_recording("2026-03/auto-1772540522-1-2.wav@", tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".wav"] * len(list(tmp_path.iterdir()))


# ------------------------------------------------------------------------------- paging quirks


def item_count(sim: Any) -> int:
    """cdr_root items of the whole day: one per call session."""
    return len({leg["session"] for leg in sim.ground_truth()})


def test_past_end_repeated_short_page_ends_the_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="audiapro.ucm")
    sim = make_sim(past_end_repeats_last_page=True)
    truth = sim.ground_truth()
    size = next(n for n in range(40, 80) if item_count(sim) % n)  # the last page is short
    with sim.serve() as url, connect(url, page_size=size) as client:
        legs = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
    assert_complete(legs, truth)
    assert "previous short page again" in caplog.text


def test_past_end_repeated_full_page_still_raises() -> None:
    sim = make_sim(calls_per_day=60, past_end_repeats_last_page=True)
    with (
        sim.serve() as url,
        connect(url, page_size=item_count(sim)) as client,
        pytest.raises(UcmPagingError, match="same page"),
    ):
        client.fetch_cdrs(*day_window(DAY, NEW_YORK))
    assert sim.stats.cdrapi_requests == 1 + 1 + FAST["repeated_page_retries"]


@pytest.mark.parametrize(("page_unit", "page_counting"), [("items", "items"), ("legs", "legs")])
def test_malformed_items_reported_and_real_legs_complete(page_unit: str, page_counting: str) -> None:
    sim = make_sim(page_unit=page_unit)
    truth = sim.ground_truth()
    sim.faults = FaultConfig(malformed_item_rate=0.1, fault_seed=8)
    with sim.serve() as url, connect(url, page_size=40, page_counting=page_counting) as client:
        pages = list(client.iter_cdr_pages(*day_window(DAY, NEW_YORK)))
    assert_complete([leg for page in pages for leg in page.legs], truth)
    bad = [item for page in pages for item in page.malformed]
    assert len(bad) == sim.stats.faults["malformed_item"] > 0
    assert {item.reason for item in bad} == {
        "item is not an object",
        "sub_cdr entry is not an object",
        "grouped call without sub_cdr legs",
    }
    assert all(item.record_number == item.offset + item.position + 1 for item in bad)
    assert len({item.record_number for item in bad}) == len(bad)
    assert all(json.loads(json.dumps(item.as_dict())) == item.as_dict() for item in bad)


# ------------------------------------------------------------------------------ TLS pinning


def served_fingerprint(url: str) -> str:
    """SHA-256 of the DER certificate the server at ``url`` presents (fetched without our client)."""
    address = httpx.URL(url)
    pem = ssl.get_server_certificate((address.host, address.port or 443))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_tls_fingerprint_pin() -> None:
    sim = make_sim(tls=True, calls_per_day=40)
    with sim.serve() as url:
        pin = served_fingerprint(url)
        spaced = ":".join(pin[i : i + 2] for i in range(0, 64, 2)).upper()
        # No CA given: the pin alone establishes trust.
        with connect(url, tls_fingerprint=spaced) as client:
            legs = client.fetch_cdrs(*day_window(DAY, NEW_YORK))
        assert_complete(legs, sim.ground_truth())
        logins = sim.stats.logins
        requests = sim.stats.requests
        wrong = "00" * 32
        with connect(url, tls_fingerprint=wrong) as client, pytest.raises(UcmTlsError) as info:
            client.login()
        assert sim.stats.requests == requests and sim.stats.logins == logins  # nothing reached the PBX
        assert info.value.expected_fingerprint == ":".join(["00"] * 32)
        assert info.value.seen_fingerprint == spaced
        assert spaced in str(info.value) and PASSWORD not in str(info.value)
        assert not is_transient_error(info.value)


def test_tls_fingerprint_pin_accepts_a_certificate_for_another_name() -> None:
    # The simulator's certificate names localhost/127.0.0.1/::1 only; 127.0.0.2 is loopback but unnamed.
    sim = make_sim(tls=True, calls_per_day=20)
    try:
        handle = sim.start(host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not a usable loopback address here")
    try:
        pin = served_fingerprint(handle.base_url)
        with connect(handle.base_url, ca_file=sim.ca_file) as client, pytest.raises(UcmTlsError):
            client.login()  # the CA is right, the name is not
        with connect(handle.base_url, tls_fingerprint=pin) as client:
            client.login()
        assert sim.stats.logins == 1
    finally:
        handle.stop()


# ---------------------------------------------------------------------------------- login guard


def test_shared_guard_one_failed_login_for_ten_clients() -> None:
    sim = make_sim(calls_per_day=20)
    clock = {"now": datetime(2026, 3, 4, 12, 0, tzinfo=UTC)}
    guard = MemoryLoginGuard(now=lambda: clock["now"], tenant="acme")
    with sim.serve() as url:
        clients = [connect(url, password=SecretStr("wrong"), login_guard=guard) for _ in range(10)]
        errors = []
        for client in clients:
            with pytest.raises(UcmAuthError) as info:
                client.fetch_cdrs(*day_window(DAY, NEW_YORK))
            errors.append(info.value)
        assert isinstance(errors[0], UcmWrongPasswordError)
        assert all(isinstance(error, UcmLoginBlocked) for error in errors[1:])
        assert "until 2026-03-04 12:15 UTC" in str(errors[1]) and "tenant test acme" in str(errors[1])
        assert sim.stats.failed_logins == 1 and sim.stats.challenges == 1
        clock["now"] += timedelta(minutes=14)
        with pytest.raises(UcmLoginBlocked):
            clients[1].login()
        clock["now"] += timedelta(minutes=1)
        with pytest.raises(UcmWrongPasswordError):
            clients[1].login()  # the block ended: one more real try
        assert sim.stats.failed_logins == 2 and sim.stats.bans == 0
        for client in clients:
            client.close()


class HandshakeHook(httpx.BaseTransport):
    """A real HTTP transport that calls ``after(action)`` once the reply to a challenge/login arrived."""

    def __init__(self, after: Any) -> None:
        self.inner = httpx.HTTPTransport()
        self.after = after

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.after(json.loads(request.content)["request"]["action"])
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("shared_guard", [True, False])
def test_guard_serialises_handshakes_on_a_one_challenge_pbx(shared_guard: bool) -> None:
    sim = make_sim(calls_per_day=20, pending_challenges_per_user=1)
    guards = [MemoryLoginGuard()] * 2 if shared_guard else [MemoryLoginGuard(), MemoryLoginGuard()]
    second_challenged, first_logged_in = threading.Event(), threading.Event()
    outcome: dict[str, BaseException | None] = {}

    def run_second() -> None:
        try:
            second.login()
            outcome["second"] = None
        except BaseException as exc:
            outcome["second"] = exc

    def first_step(action: str) -> None:
        if action == "challenge":
            # Between its challenge and its login, the first client lets the second one start and
            # waits for its challenge: it comes at once unless the shared guard holds it back.
            thread.start()
            second_challenged.wait(timeout=1.0)
        elif action == "login":
            first_logged_in.set()

    def second_step(action: str) -> None:
        if action == "challenge":
            second_challenged.set()
            first_logged_in.wait(timeout=10)  # a fixed order: the first client's login goes first

    def conn(url: str) -> UcmConnection:
        return UcmConnection.from_url(
            url, api_user="cdrapi", password=SecretStr(PASSWORD), timezone=NEW_YORK, **FAST
        )

    with sim.serve() as url:
        first = UcmClient(conn(url), transport=HandshakeHook(first_step), login_guard=guards[0])
        second = UcmClient(conn(url), transport=HandshakeHook(second_step), login_guard=guards[1])
        thread = threading.Thread(target=run_second)
        try:
            if shared_guard:
                first.login()
            else:
                with pytest.raises(UcmWrongPasswordError):
                    first.login()  # its challenge was replaced by the second client's
            thread.join(timeout=10)
        finally:
            first.close()
            second.close()
    if shared_guard:
        assert outcome == {"second": None}
        assert sim.stats.failed_logins == 0 and sim.stats.logins == 2
    else:
        assert isinstance(outcome["second"], UcmWrongPasswordError)  # the failure dropped its challenge
        assert sim.stats.failed_logins == 2 and sim.stats.logins == 0


# ------------------------------------------------------------------------------------ PBX clock


def test_system_time_in_the_pbx_offset() -> None:
    now = datetime(2026, 1, 15, 18, 30, 5, tzinfo=UTC)  # winter: Chicago is UTC-06:00
    sim = make_sim(tz="America/Chicago", calls_per_day=10, now=now)
    with sim.serve() as url, connect(url, tz="America/Chicago") as client:
        value = client.system_time()
    assert value == now
    assert value.utcoffset() == timedelta(hours=-6) and (value.hour, value.minute) == (12, 30)
