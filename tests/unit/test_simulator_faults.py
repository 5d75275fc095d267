"""UCM simulator fault knobs: each one fires, is counted, and can be swapped at runtime."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from audiapro.ucm.simulator import FaultConfig, SimulatorConfig, UcmSimulator

PASSWORD = "pw"


def make_sim(faults: FaultConfig | None = None) -> UcmSimulator:
    config = SimulatorConfig(seed=3, calls_per_day=120, start=date(2026, 3, 2), days=1, password=PASSWORD)
    return UcmSimulator(config, faults=faults)


def post(client: httpx.Client, **request: Any) -> httpx.Response:
    return client.post("/api", json={"request": request})


def login(client: httpx.Client) -> str:
    value = post(client, action="challenge", user="cdrapi").json()["response"]["challenge"]
    token = hashlib.md5((value + PASSWORD).encode()).hexdigest()
    cookie: str = post(client, action="login", user="cdrapi", token=token).json()["response"]["cookie"]
    return cookie


@pytest.fixture
def served() -> Iterator[tuple[UcmSimulator, httpx.Client, str]]:
    sim = make_sim()
    with sim.serve() as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        yield sim, client, login(client)


def item_ids(items: list[dict[str, Any]]) -> list[str]:
    ids = []
    for item in items:
        subs = [v for k, v in item.items() if k.startswith("sub_cdr_")]
        ids += [leg["AcctId"] for leg in subs] if subs else [item["AcctId"]]
    return ids


def test_cookie_expire_every(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(cookie_expire_every=3)
    statuses = [post(client, action="getSystemStatus", cookie=cookie).json()["status"] for _ in range(3)]
    assert statuses == [0, 0, -6]
    assert post(client, action="getSystemStatus", cookie=cookie).json()["status"] == -6  # really dropped
    # Requests refused for a dead cookie and auth actions are not counted: the next expiry comes
    # with the third good request after logging in again.
    cookie = login(client)
    statuses = [post(client, action="getSystemStatus", cookie=cookie).json()["status"] for _ in range(3)]
    assert statuses == [0, 0, -6]
    assert sim.stats.faults["cookie_expire"] == 2 and sim.stats.failed_logins == 0


@pytest.mark.parametrize("code", [-45, -46, -57])
def test_throttle_rate(served: tuple[UcmSimulator, httpx.Client, str], code: int) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(throttle_rate=1.0, throttle_code=code)
    assert post(client, action="cdrapi", cookie=cookie).json() == {"status": code}
    sim.faults = FaultConfig()
    assert "cdr_root" in post(client, action="cdrapi", cookie=cookie).json()
    assert sim.stats.faults["throttle"] == 1


def test_throttle_by_request_rate(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(max_requests_per_second=3)
    statuses = [post(client, action="getSystemStatus", cookie=cookie).json()["status"] for _ in range(6)]
    assert statuses[:3] == [0, 0, 0] and -45 in statuses[3:]


def test_http500_rate_and_seeded_pattern(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served

    def pattern() -> list[int]:
        sim.faults = FaultConfig(http500_rate=0.5, fault_seed=42)
        return [post(client, action="getSystemStatus", cookie=cookie).status_code for _ in range(20)]

    first = pattern()
    assert set(first) == {200, 500}
    assert pattern() == first  # reinstalling the same config replays the same faults
    assert sim.stats.faults["http500"] == 2 * first.count(500)


def test_faults_can_spare_login(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, _ = served
    sim.faults = FaultConfig(http500_rate=1.0, apply_to_auth=False)
    assert login(client).startswith("sid")
    sim.faults = FaultConfig(http500_rate=1.0)
    assert post(client, action="challenge", user="cdrapi").status_code == 500


def test_repeat_page(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    first = post(client, action="cdrapi", cookie=cookie, numRecords=5, offset=0).json()
    sim.faults = FaultConfig(repeat_page_rate=1.0)
    again = post(client, action="cdrapi", cookie=cookie, numRecords=5, offset=5).json()
    assert again == first
    sim.faults = FaultConfig()
    assert post(client, action="cdrapi", cookie=cookie, numRecords=5, offset=5).json() != first
    assert sim.stats.faults["repeat_page"] == 1


def test_short_pages_never_skip_records(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(short_page_rate=0.7, fault_seed=1)
    seen: list[str] = []
    offset, short = 0, 0
    while True:
        items = post(client, action="cdrapi", cookie=cookie, numRecords=20, offset=offset).json()["cdr_root"]
        if not items:
            break
        short += len(items) < 20
        seen += item_ids(items)
        offset += len(items)  # advance by what arrived, not by numRecords
    assert short >= 3 and sim.stats.faults["short_page"] >= 3
    assert sorted(seen, key=int) == [leg["AcctId"] for leg in sim.ground_truth()]
    assert len(seen) == len(set(seen))


def test_slow_ms(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(slow_ms=300)
    began = time.monotonic()
    assert post(client, action="getSystemStatus", cookie=cookie).json()["status"] == 0
    assert time.monotonic() - began >= 0.3
    assert sim.stats.faults["slow"] == 1


def test_hang_makes_the_client_time_out(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(hang_rate=1.0, hang_seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api", json={"request": {"action": "cdrapi", "cookie": cookie}}, timeout=0.3)
    assert sim.stats.faults["hang"] == 1
    sim.faults = FaultConfig()
    assert post(client, action="getSystemStatus", cookie=cookie).json()["status"] == 0


def test_control_endpoint_swaps_faults_and_reports_stats(
    served: tuple[UcmSimulator, httpx.Client, str],
) -> None:
    sim, client, cookie = served
    assert (
        client.post("/__sim__/faults", json={"throttle_rate": 1.0, "throttle_code": -57}).status_code == 200
    )
    assert sim.faults.throttle_code == -57
    assert post(client, action="cdrapi", cookie=cookie).json() == {"status": -57}
    assert client.post("/__sim__/faults", json={"throttle_code": -1}).status_code == 400
    stats = client.get("/__sim__/stats").json()
    assert stats["faults"]["throttle"] == 1 and stats["logins"] == 1 and stats["cdrapi_requests"] == 0
