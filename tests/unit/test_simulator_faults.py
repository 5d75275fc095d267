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


def page_items(client: httpx.Client, cookie: str, size: int, offset: int, **params: Any) -> list[Any]:
    reply = post(client, action="cdrapi", cookie=cookie, numRecords=size, offset=offset, **params).json()
    items: list[Any] = reply["cdr_root"]
    return items


def is_junk(item: Any) -> bool:
    """A malformed item: not an object, or a group without a single leg object."""
    if not isinstance(item, dict):
        return True
    subs = [v for k, v in item.items() if k.startswith("sub_cdr_")]
    return "main_cdr" in item and not any(isinstance(v, dict) for v in subs)


def test_malformed_items_injected_deterministically_without_displacing_legs(
    served: tuple[UcmSimulator, httpx.Client, str],
) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(malformed_item_rate=0.2, fault_seed=4)
    seen: list[str] = []
    junk: list[tuple[int, Any]] = []
    offset = 0
    while items := page_items(client, cookie, 25, offset):
        assert page_items(client, cookie, 25, offset) == items  # same junk at the same offsets
        junk += [(offset + i, item) for i, item in enumerate(items) if is_junk(item)]
        seen += item_ids([item for item in items if not is_junk(item)])
        offset += len(items)  # advance by what arrived, junk included
    assert sorted(seen, key=int) == [leg["AcctId"] for leg in sim.ground_truth()]
    assert len(seen) == len(set(seen))
    kinds = {
        "scalar": [v for _, v in junk if not isinstance(v, dict)],
        "bad_sub_cdr": [v for _, v in junk if isinstance(v, dict) and isinstance(v.get("sub_cdr_1"), str)],
        "main_only": [v for _, v in junk if isinstance(v, dict) and "sub_cdr_1" not in v],
    }
    assert all(kinds.values()), {kind: len(found) for kind, found in kinds.items()}
    assert {type(v) for v in kinds["scalar"]} == {str, int}
    assert sim.stats.faults["malformed_item"] == 2 * len(junk)  # every page was fetched twice
    # Another seed puts the junk elsewhere; rate 0 puts none.
    sim.faults = FaultConfig(malformed_item_rate=0.2, fault_seed=5)
    other = [i for i, item in enumerate(page_items(client, cookie, 1000, 0)) if is_junk(item)]
    assert other != [position for position, _ in junk]
    sim.faults = FaultConfig()
    assert not any(is_junk(item) for item in page_items(client, cookie, 1000, 0))


def test_malformed_items_take_one_slot_when_paging_counts_legs() -> None:
    config = SimulatorConfig(
        seed=3, calls_per_day=120, start=date(2026, 3, 2), days=1, password=PASSWORD, page_unit="legs"
    )
    sim = UcmSimulator(config, faults=FaultConfig(malformed_item_rate=0.3, fault_seed=2))
    with sim.serve() as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        cookie = login(client)
        seen: list[str] = []
        offset = junk = 0
        while items := page_items(client, cookie, 10, offset):
            legs = item_ids([item for item in items if not is_junk(item)])
            junk += sum(is_junk(item) for item in items)
            assert len(legs) + sum(is_junk(item) for item in items) <= 10
            seen += legs
            offset += len(legs) + sum(is_junk(item) for item in items)
    assert junk > 0
    assert sorted(seen, key=int) == [leg["AcctId"] for leg in sim.ground_truth()]


def test_csv_pages_carry_no_junk(served: tuple[UcmSimulator, httpx.Client, str]) -> None:
    sim, client, cookie = served
    sim.faults = FaultConfig(malformed_item_rate=1.0)
    reply = post(client, action="cdrapi", cookie=cookie, format="csv", numRecords=1000)
    assert len(reply.text.strip().splitlines()) == len(sim.ground_truth()) + 1
    assert sim.stats.faults["malformed_item"] == 0
