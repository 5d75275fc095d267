"""UCM simulator: envelope, challenge/login, cookie-in-body sessions, idle timeout, IP ban, ACL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

PASSWORD = "s3cret-pw"
INVALID = {"response": {"error_msg": "Invalid parameters!"}, "status": -1}


def make_sim(**overrides: Any) -> UcmSimulator:
    """A small one-day tenant."""
    settings: dict[str, Any] = {"seed": 7, "calls_per_day": 50, "start": date(2026, 3, 2), "days": 1}
    settings.update(overrides)
    return UcmSimulator(SimulatorConfig(password=PASSWORD, **settings))


def api(client: httpx.Client, **request: Any) -> dict[str, Any]:
    """POST one action to /api and return the JSON body (HTTP status must be 200)."""
    reply = client.post("/api", json={"request": request})
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def login(client: httpx.Client, password: str = PASSWORD, user: str = "cdrapi") -> dict[str, Any]:
    """challenge + login; returns the login reply."""
    challenge = api(client, action="challenge", user=user, version="1.0")
    value = challenge["response"]["challenge"]
    token = hashlib.md5((value + password).encode()).hexdigest()
    return api(client, action="login", user=user, token=token)


@pytest.fixture
def sim() -> UcmSimulator:
    return make_sim()


@pytest.fixture
def client(sim: UcmSimulator) -> Iterator[httpx.Client]:
    with sim.serve() as base_url, httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


def test_challenge_login_and_cookie_in_body(sim: UcmSimulator, client: httpx.Client) -> None:
    challenge = api(client, action="challenge", user="cdrapi", version="1.0")
    assert challenge["status"] == 0
    value = challenge["response"]["challenge"]
    assert len(value) == 16 and value.isdigit()

    token = hashlib.md5((value + PASSWORD).encode()).hexdigest()
    reply = api(client, action="login", user="cdrapi", token=token, url="https://client.example/cb")
    assert reply["status"] == 0
    cookie = reply["response"]["cookie"]
    prefix, epoch = cookie.split("-")
    assert prefix.startswith("sid") and len(prefix) == 3 + 9 and prefix[3:].isdigit()
    assert int(epoch) == int(sim.clock.now().timestamp())

    # The cookie travels inside the request object; an HTTP Cookie header alone is not enough.
    assert api(client, action="getSystemStatus")["status"] == -5
    client.cookies.set("cookie", cookie)
    assert api(client, action="getSystemStatus")["status"] == -5
    status = api(client, action="getSystemStatus", cookie=cookie)
    assert status["status"] == 0
    assert set(status["response"]) == {
        "part-number", "serial-number", "up-time", "idle-time", "system-time", "bindcode", "mac",
    }  # fmt: skip
    general = api(client, action="getSystemGeneralStatus", cookie=cookie)
    assert set(general["response"]) == {
        "product-model", "base-version", "prog-version", "boot-version", "core-version", "rcvr-version",
        "lang-version", "gswave-version",
    }  # fmt: skip

    assert api(client, action="logout", cookie=cookie) == {"status": 0}
    assert api(client, action="cdrapi", cookie=cookie, format="json")["status"] == -6
    assert sim.stats.logins == 1 and sim.stats.logouts == 1 and sim.stats.failed_logins == 0


def test_challenge_is_single_use(client: httpx.Client) -> None:
    value = api(client, action="challenge", user="cdrapi")["response"]["challenge"]
    token = hashlib.md5((value + PASSWORD).encode()).hexdigest()
    assert api(client, action="login", user="cdrapi", token=token)["status"] == 0
    assert api(client, action="login", user="cdrapi", token=token)["status"] == -37


def test_unknown_cookie_and_idle_timeout(sim: UcmSimulator, client: httpx.Client) -> None:
    assert api(client, action="cdrapi", cookie="sid123456789-1700000000")["status"] == -6
    cookie = login(client)["response"]["cookie"]
    sim.clock.advance(590)
    assert api(client, action="getSystemStatus", cookie=cookie)["status"] == 0  # use refreshes it
    sim.clock.advance(590)
    assert api(client, action="getSystemStatus", cookie=cookie)["status"] == 0
    sim.clock.advance(601)
    assert api(client, action="getSystemStatus", cookie=cookie)["status"] == -6
    assert api(client, action="getSystemStatus", cookie=cookie)["status"] == -6  # stays dead
    assert login(client)["status"] == 0


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("GET", "/api", None),
        ("POST", "/api/challenge", b'{"request": {"action": "challenge", "user": "cdrapi"}}'),
        ("POST", "/api", b"action=challenge&user=cdrapi"),
        ("POST", "/api", b'{"action": "challenge", "user": "cdrapi"}'),
        ("POST", "/api", b'{"request": {"action": "noSuchAction"}}'),
        ("POST", "/", b"{}"),
    ],
)
def test_wrong_shapes_get_invalid_parameters(
    sim: UcmSimulator, client: httpx.Client, method: str, path: str, content: bytes | None
) -> None:
    reply = client.request(method, path, content=content)
    assert reply.status_code == 200
    assert reply.json() == INVALID
    assert sim.stats.invalid_requests == 1 and sim.stats.requests == 1


def test_five_bad_logins_ban_the_ip(sim: UcmSimulator, client: httpx.Client) -> None:
    for attempt in range(1, 5):
        reply = login(client, password="wrong")
        assert reply["status"] == -37
        assert reply["response"]["remain_num"] == 5 - attempt
    fifth = login(client, password="wrong")
    assert fifth["status"] == -37 and fifth["response"]["remain_num"] == 0
    assert fifth["response"]["remain_time"] == 300
    assert sim.stats.failed_logins == 5 and sim.stats.bans == 1

    # Banned: even the right password and a fresh challenge are refused.
    assert api(client, action="challenge", user="cdrapi")["status"] == -68
    assert api(client, action="login", user="cdrapi", token="0" * 32)["status"] == -68
    sim.clock.advance(299)
    assert api(client, action="challenge", user="cdrapi")["status"] == -68
    sim.clock.advance(2)
    assert login(client)["status"] == 0
    assert sim.stats.banned_requests == 3


def test_failures_outside_the_window_do_not_add_up(sim: UcmSimulator, client: httpx.Client) -> None:
    for _ in range(4):
        assert login(client, password="wrong")["status"] == -37
    sim.clock.advance(301)
    assert login(client, password="wrong")["response"]["remain_num"] == 4
    assert sim.stats.bans == 0


def test_success_resets_the_failure_count(client: httpx.Client) -> None:
    for _ in range(4):
        login(client, password="wrong")
    assert login(client)["status"] == 0
    assert login(client, password="wrong")["response"]["remain_num"] == 4


def test_configurable_codes_and_counter_placement() -> None:
    sim = make_sim(
        unknown_user_status=-71, remain_placement="top", ban_status=-70, max_login_failures=2, ban_seconds=60
    )
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        assert api(client, action="challenge", user="admin")["status"] == -71
        first = login(client, password="wrong")
        assert first["status"] == -37 and first["remain_num"] == 1 and "response" not in first
        login(client, password="wrong")
        assert api(client, action="challenge", user="cdrapi")["status"] == -70
        sim.reset_bans()
        assert login(client)["status"] == 0


def test_unknown_user_defaults_to_wrong_password(client: httpx.Client) -> None:
    assert api(client, action="challenge", user="admin")["status"] == -37
    assert api(client, action="login", user="admin", token="0" * 32)["status"] == -37


def test_permitted_ips() -> None:
    blocked = make_sim(permitted_ips=("10.0.0.0/8",))
    with blocked.serve() as base_url, httpx.Client(base_url=base_url) as client:
        assert api(client, action="challenge", user="cdrapi")["status"] == -47
    allowed = make_sim(permitted_ips=("127.0.0.1/255.255.255.255",))
    with allowed.serve() as base_url, httpx.Client(base_url=base_url) as client:
        assert login(client)["status"] == 0


def challenge_token(client: httpx.Client, password: str = PASSWORD) -> str:
    """Ask for a challenge; the token a client holding ``password`` would log in with."""
    value = api(client, action="challenge", user="cdrapi")["response"]["challenge"]
    return hashlib.md5((value + password).encode()).hexdigest()


@pytest.mark.parametrize("pending", [1, None])
def test_interleaved_handshakes(pending: int | None) -> None:
    # None: the default, which keeps many challenges per user pending.
    sim = make_sim() if pending is None else make_sim(pending_challenges_per_user=pending)
    with (
        sim.serve() as base_url,
        httpx.Client(base_url=base_url) as first,
        httpx.Client(base_url=base_url) as second,
    ):
        token_a = challenge_token(first)
        token_b = challenge_token(second)  # with one pending challenge per user, this drops A's
        reply_a = api(first, action="login", user="cdrapi", token=token_a)
        reply_b = api(second, action="login", user="cdrapi", token=token_b)
    if pending == 1:
        # A's challenge was replaced, and a failed login drops the pending ones: both fail.
        assert (reply_a["status"], reply_b["status"]) == (-37, -37)
        assert reply_a["response"]["remain_num"] == 4 and reply_b["response"]["remain_num"] == 3
        assert sim.stats.failed_logins == 2 and sim.stats.logins == 0
    else:
        assert (reply_a["status"], reply_b["status"]) == (0, 0)
        assert sim.stats.failed_logins == 0 and sim.stats.logins == 2


def test_stale_challenges_count_towards_the_ban() -> None:
    sim = make_sim(pending_challenges_per_user=1)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        for _ in range(5):
            stale = challenge_token(client)
            challenge_token(client)
            assert api(client, action="login", user="cdrapi", token=stale)["status"] == -37
        assert api(client, action="challenge", user="cdrapi")["status"] == -68
    assert sim.stats.failed_logins == 5 and sim.stats.bans == 1


def test_ban_is_per_client_ip_across_connections_and_users() -> None:
    sim = make_sim(unknown_user_status=-71)
    with sim.serve() as base_url:
        for attempt in range(5):
            # A fresh connection each time, alternating the right user with an unknown one.
            with httpx.Client(base_url=base_url) as client:
                if attempt % 2:
                    assert api(client, action="login", user="admin", token="0" * 32)["status"] == -71
                else:
                    assert login(client, password="wrong")["status"] == -37
        with httpx.Client(base_url=base_url) as client:
            assert api(client, action="challenge", user="cdrapi")["status"] == -68
    assert sim.stats.failed_logins == 5 and sim.stats.bans == 1 and sim.stats.banned_requests == 1
    assert sim.stats.as_dict()["failed_logins"] == 5
