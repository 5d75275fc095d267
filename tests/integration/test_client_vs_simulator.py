"""UcmClient against the UCM simulator over real HTTP(S): completeness under faults, TLS, recordings."""

from __future__ import annotations

import logging
import random
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.errors import (
    UcmPageCapExceeded,
    UcmRecordingNotFound,
    UcmTlsError,
    UcmWrongPasswordError,
)
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
    base_url: str, tz: str = NEW_YORK, *, sleep: Callable[[float], None] = time.sleep, **settings: Any
) -> UcmClient:
    fields = {**FAST, **settings}
    conn = UcmConnection.from_url(
        base_url, api_user="cdrapi", password=SecretStr(PASSWORD), timezone=tz, **fields
    )
    return UcmClient(conn, rng=random.Random(5), sleep=sleep)


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
