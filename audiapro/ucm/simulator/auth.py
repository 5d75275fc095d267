"""challenge/login/cookie sessions and the login-failure IP ban, on the simulator's clock.

Mirrors the new HTTPS API (docs/ucm-protocol.md, "Session"): a 16-digit challenge,
``token = md5(challenge + password)``, a ``sid<9 digits>-<epoch>`` cookie carried *inside* later
request bodies, an idle timeout, and the web login's lockout (5 failures -> IP banned for 5 minutes)
applied to API logins.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Any

from audiapro.ucm.simulator.config import STATUS_WRONG_PASSWORD, SimulatorConfig

STATUS_OK = 0
STATUS_INVALID = -1
STATUS_NEED_AUTH = -5
STATUS_COOKIE_ERROR = -6
STATUS_NO_PERMISSION = -47
CHALLENGE_DIGITS = 16
#: The observed challenges have ten significant digits, zero-padded to sixteen.
CHALLENGE_RANGE = 10**10
COOKIE_DIGITS = 9


def token_for(challenge: str, password: str) -> str:
    """The login token a client must send: lowercase hex MD5 of challenge + password."""
    return hashlib.md5((challenge + password).encode(), usedforsecurity=False).hexdigest()


@dataclass
class AuthState:
    """Sessions, pending challenges, failure counters and bans of one simulator."""

    config: SimulatorConfig
    sessions: dict[str, float] = field(default_factory=dict)  # cookie -> last use (sim epoch)
    challenges: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # user -> [(value, at)]
    failures: dict[str, list[float]] = field(default_factory=dict)  # ip -> failure times
    banned_until: dict[str, float] = field(default_factory=dict)  # ip -> sim epoch

    def ip_permitted(self, ip: str) -> bool:
        """Whether the API's Permitted IP(s) list lets ``ip`` in (empty list = everyone)."""
        if not self.config.permitted_ips:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.config.permitted_ips)

    def ban_remaining(self, ip: str, now: float) -> float:
        """Seconds left on ``ip``'s ban (0 = not banned)."""
        until = self.banned_until.get(ip, 0.0)
        if until <= now:
            self.banned_until.pop(ip, None)
            return 0.0
        return until - now

    def banned_reply(self, ip: str, now: float) -> dict[str, Any] | None:
        """The reply for a banned client, or ``None`` when ``ip`` is not banned."""
        remaining = self.ban_remaining(ip, now)
        if remaining <= 0:
            return None
        return {"response": {"remain_time": int(remaining) or 1}, "status": self.config.ban_status}

    def challenge(self, user: str, now: float) -> dict[str, Any]:
        """Issue a challenge for ``user`` (caller has checked ban and ACL)."""
        if user != self.config.api_user:
            return {"status": self.config.unknown_user_status}
        value = f"{secrets.randbelow(CHALLENGE_RANGE):0{CHALLENGE_DIGITS}d}"
        pending = [c for c in self.challenges.get(user, []) if now - c[1] <= self.config.challenge_ttl]
        pending.append((value, now))
        self.challenges[user] = pending[-self.config.pending_challenges_per_user :]
        return {"response": {"challenge": value}, "status": STATUS_OK}

    def login(self, user: str, token: str, ip: str, now: float) -> tuple[dict[str, Any], bool]:
        """Check a login; returns the reply and whether it succeeded.

        A challenge is single-use: success consumes it, a failure discards all of the user's pending
        challenges (the client must ask for a new one).
        """
        if user == self.config.api_user:
            pending = [c for c in self.challenges.pop(user, []) if now - c[1] <= self.config.challenge_ttl]
            for i, (value, _) in enumerate(pending):
                if secrets.compare_digest(token_for(value, self.config.password), token.lower()):
                    del pending[i]
                    self.challenges[user] = pending
                    self.failures.pop(ip, None)
                    cookie = f"sid{secrets.randbelow(10**COOKIE_DIGITS):0{COOKIE_DIGITS}d}-{int(now)}"
                    self.sessions[cookie] = now
                    return {"response": {"cookie": cookie}, "status": STATUS_OK}, True
        return self._failed(ip, now, known_user=user == self.config.api_user), False

    def _failed(self, ip: str, now: float, *, known_user: bool) -> dict[str, Any]:
        window = self.config.login_failure_window
        recent = [t for t in self.failures.get(ip, []) if now - t < window] + [now]
        self.failures[ip] = recent
        remain = max(0, self.config.max_login_failures - len(recent))
        remain_time = 0
        if remain == 0:
            self.banned_until[ip] = now + self.config.ban_seconds
            self.failures.pop(ip, None)
            remain_time = int(self.config.ban_seconds)
        status = STATUS_WRONG_PASSWORD if known_user else self.config.unknown_user_status
        counters = {"remain_num": remain, "remain_time": remain_time}
        if self.config.remain_placement == "top":
            return {"status": status, **counters}
        return {"response": counters, "status": status}

    def check(self, cookie: Any, now: float) -> int:
        """Validate a request's ``cookie`` and refresh it: 0, -5 (missing) or -6 (unknown/expired)."""
        if not isinstance(cookie, str) or cookie == "":
            return STATUS_NEED_AUTH
        last = self.sessions.get(cookie)
        if last is None:
            return STATUS_COOKIE_ERROR
        if now - last > self.config.session_idle_timeout:
            del self.sessions[cookie]
            return STATUS_COOKIE_ERROR
        self.sessions[cookie] = max(last, now)
        return STATUS_OK

    def live_sessions(self, now: float) -> int:
        """Sessions logged in and not idle past the timeout."""
        return sum(1 for last in self.sessions.values() if now - last <= self.config.session_idle_timeout)

    def drop(self, cookie: str) -> None:
        """Forget a session (logout or injected expiry)."""
        self.sessions.pop(cookie, None)

    def reset_bans(self) -> None:
        """Lift every ban and forget failure counters."""
        self.banned_until.clear()
        self.failures.clear()
