"""Configuration of the UCM simulator: what data it serves and how its API behaves.

Every knob that reproduces a behaviour we only inferred about the real PBX (tagged *inferred* in
``docs/ucm-protocol.md``) is switchable here, with the most likely real behaviour as the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: cdrapi never returns more than this many records per request (UCM CDR API guide).
MAX_NUM_RECORDS = 1000
#: Longest call the generator may produce; day bookkeeping assumes a leg ends at most one day later.
MAX_CALL_SECONDS_LIMIT = 12 * 3600
#: Default length of a forced long call (``long_call_seconds``): longer than the poll's 2-hour lookback.
LONG_CALL_SECONDS = 3 * 3600
#: Default share of answered Dial legs that get a ForkCDR bookkeeping copy.
FORK_SHARE = 0.03
#: The real PBX's status codes used by the knobs below.
STATUS_WRONG_PASSWORD = -37
STATUS_LOGIN_RESTRICTED = -68
STATUS_LOGIN_FORBIDDEN = -70
STATUS_NO_SUCH_USER = -71
STATUS_NO_SUCH_ITEM = -16
THROTTLE_STATUSES = (-45, -46, -57)
#: Outstanding challenges kept per user by default (several workers may log in at once).
MAX_PENDING_CHALLENGES = 32

ClockMode = Literal["manual", "real"]
FraudKind = Literal["premium_night", "pumping_burst"]
OrderBy = Literal["start", "acctid"]
PageUnit = Literal["items", "legs"]
RemainPlacement = Literal["response", "top"]
SchemaFields = Literal[32, 43]


@dataclass(frozen=True)
class FraudScenario:
    """One burst of fraudulent calls.

    Attributes:
        kind: ``premium_night`` or ``pumping_burst``.
        day: Local day of the burst.
        hour: Local hour of its first call.
        calls: How many calls.
        spacing_s: Seconds between call starts.
        extension: The compromised extension (default: the plan's first).
    """

    kind: FraudKind
    day: date
    hour: int = 2
    calls: int = 30
    spacing_s: int = 90
    extension: str | None = None


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """Everything that defines one simulated tenant (one PBX).

    Attributes:
        seed: Seed of all generated data; the same config always yields the same CDRs.
        calls_per_day: Mean calls per weekday (weekends get ``weekend_factor`` of it).
        start: First local day with generated history; ``None`` = today minus ``days - 1`` (PBX zone),
            so the range ends with today and calls keep appearing as real time passes.
        days: Number of local days of history starting at ``start``.
        tz: IANA time zone of the PBX; CDR times are rendered in it (with DST).
        api_user: User name of the HTTPS API account.
        password: Password of the HTTPS API account (never printed).
        tls: Serve HTTPS with a self-signed CA (see ``UcmSimulator.ca_file``).
        cert_dir: Where to write CA and server certificates; ``None`` = a fresh temporary directory.
        clock: ``"manual"`` (tests: only moves when told) or ``"real"`` (wall clock plus any offset).
        now: Initial manual clock (UTC); ``None`` = when every call of the history range has ended.
        live_rate: Extra calls per minute arriving after ``live_start`` (0 = off).
        live_start: Start of the live stream; ``None`` = end of the history range.
        max_call_seconds: Upper bound of a call's whole span (all legs); a few calls get close to it.
        weekend_factor: Share of ``calls_per_day`` on Saturdays and Sundays.
        extensions: Number of user extensions on the PBX.
        country: Numbering plan of external numbers, ``"US"`` or ``"GB"``; ``None`` = from ``tz``.
        schema_fields: 43 fields (UCM63xx firmware 1.0.17) or 32 fields (older firmware).
        order_by: cdrapi item order: by local start (then AcctId) or by AcctId.
        page_unit: Whether ``offset``/``numRecords`` count top-level items or legs.
        clamp_num_records: ``numRecords`` above 1000 is clamped (True) or yields an empty result.
        past_end_repeats_last_page: Firmware quirk: an ``offset`` at or past the end of the result
            (when there is one) is answered with the last non-empty page (the one a client stepping by
            ``numRecords`` from 0 gets last, same items) instead of an empty page.
        session_idle_timeout: Seconds (sim clock) a cookie survives without use.
        challenge_ttl: Seconds (sim clock) a login challenge stays valid.
        pending_challenges_per_user: Challenges of one user that stay valid at once; the oldest is
            dropped when a new one is issued. 1 reproduces a PBX keeping a single pending challenge per
            user: a login with an older challenge's token then fails like a wrong password (and counts
            towards the ban), so interleaved handshakes of two clients fail each other.
        max_login_failures: Failed logins within ``login_failure_window`` that get the client IP banned
            (counted per client IP, whatever user or connection they came from).
        login_failure_window: Seconds over which failed logins are counted.
        ban_seconds: How long a banned IP stays banned (sim clock).
        ban_status: Status answered while banned (-68 "login restriction" or -70 "login forbidden").
        unknown_user_status: Status for an unknown API user (-37 or -71).
        remain_placement: Where ``remain_num``/``remain_time`` go in a -37 reply.
        permitted_ips: Allowed client addresses/networks; empty = allow all (UCM63xx default).
        recording_share: Share of answered legs with an auto-recording.
        recording_content_type: Content-Type of recapi audio replies.
        recording_missing_status: Status of recapi's JSON error for a missing file.
        recording_max_seconds: Cap on the synthetic audio length (the real talk time can be longer).
        stereo_recordings: Two-channel recordings: caller left, agent right.
        product_model: Reported by getSystemGeneralStatus.
        firmware: Reported by getSystemGeneralStatus.
        day_cache_size: Generated days kept in memory (about 1 MB per 1000 legs; an evicted day is
            regenerated identically when needed again).
        control_endpoints: Serve the ``/__sim__/`` endpoints (truth, clock, stats, faults).
        long_call_share: Share of conversations (answered talk periods) forced to last
            ``long_call_seconds``, cut at the call's ``max_call_seconds`` deadline; 0 = off.
        long_call_seconds: Length of those conversations; must fit ``max_call_seconds`` when used.
        parallel_trunk_share: Share of outbound calls dialled on both trunks at once
            (``Dial(PJSIP/trunk_1/N&PJSIP/trunk_2/N)``): two legs sharing uniqueid, channel, session
            and start, with different ``dstchannel``/``dst_trunk_name``. The first trunk to answer
            wins; the other leg is NO ANSWER and ends when the winner answers (when nobody answers,
            when the dial ends).
        twin_leg_share: Share of outbound calls placed through a Local channel: the caller's leg
            (to ``Local/N@route;1``) and the Local channel's leg (``;2``, its own uniqueid, to the
            trunk) in one session, same disposition; answered, both are ANSWERED over the same
            conversation (the trunk side up to a second earlier), so summing billsec doubles talk.
            Drawn after ``parallel_trunk_share``; the two shares together are at most 1.
        fork_share: Share of answered Dial legs that get a ForkCDR bookkeeping copy.
        fork_recordings: ForkCDR copies list the recording files of the leg they copy.
        fraud: Toll-fraud scenarios added to their days (:class:`FraudScenario`, built by
            ``simulator.fraud``); ordinary days are unchanged.
    """

    seed: int = 0
    calls_per_day: int = 300
    start: date | None = None
    days: int = 1
    tz: str = "America/New_York"
    api_user: str = "cdrapi"
    password: str = "cdrapi-simulator"
    tls: bool = False
    cert_dir: Path | None = None
    clock: ClockMode = "manual"
    now: datetime | None = None
    live_rate: float = 0.0
    live_start: datetime | None = None
    max_call_seconds: int = 90 * 60
    weekend_factor: float = 0.35
    extensions: int = 40
    country: str | None = None
    schema_fields: SchemaFields = 43
    order_by: OrderBy = "start"
    page_unit: PageUnit = "items"
    clamp_num_records: bool = True
    past_end_repeats_last_page: bool = False
    session_idle_timeout: float = 600.0
    challenge_ttl: float = 60.0
    pending_challenges_per_user: int = MAX_PENDING_CHALLENGES
    max_login_failures: int = 5
    login_failure_window: float = 300.0
    ban_seconds: float = 300.0
    ban_status: int = STATUS_LOGIN_RESTRICTED
    unknown_user_status: int = STATUS_WRONG_PASSWORD
    remain_placement: RemainPlacement = "response"
    permitted_ips: tuple[str, ...] = ()
    recording_share: float = 0.6
    recording_content_type: str = "audio/x-wav"
    recording_missing_status: int = STATUS_NO_SUCH_ITEM
    recording_max_seconds: float = 20.0
    stereo_recordings: bool = False
    product_model: str = "UCM6302"
    firmware: str = "1.0.17.11"
    day_cache_size: int = 120
    control_endpoints: bool = True
    long_call_share: float = 0.0
    long_call_seconds: int = LONG_CALL_SECONDS
    parallel_trunk_share: float = 0.0
    twin_leg_share: float = 0.0
    fork_share: float = FORK_SHARE
    fork_recordings: bool = False
    fraud: tuple[FraudScenario, ...] = ()

    def __post_init__(self) -> None:
        """Reject values that would make the simulator misbehave silently."""
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {self.tz!r}") from exc
        if self.calls_per_day < 0 or self.days < 0:
            raise ValueError("calls_per_day and days must be >= 0")
        if not 60 <= self.max_call_seconds <= MAX_CALL_SECONDS_LIMIT:
            raise ValueError(f"max_call_seconds must be within 60..{MAX_CALL_SECONDS_LIMIT}")
        if self.live_rate < 0:
            raise ValueError("live_rate must be >= 0")
        if self.clock not in ("manual", "real"):
            raise ValueError("clock must be 'manual' or 'real'")
        if self.schema_fields not in (32, 43):
            raise ValueError("schema_fields must be 32 or 43")
        if self.order_by not in ("start", "acctid"):
            raise ValueError("order_by must be 'start' or 'acctid'")
        if self.page_unit not in ("items", "legs"):
            raise ValueError("page_unit must be 'items' or 'legs'")
        if self.remain_placement not in ("response", "top"):
            raise ValueError("remain_placement must be 'response' or 'top'")
        if self.country not in (None, "US", "GB"):
            raise ValueError("country must be 'US', 'GB' or None")
        if self.extensions < 8:
            raise ValueError("extensions must be >= 8 (ring groups and queues need members)")
        if self.max_login_failures < 1:
            raise ValueError("max_login_failures must be >= 1")
        if self.pending_challenges_per_user < 1:
            raise ValueError("pending_challenges_per_user must be >= 1")
        for aware in (self.now, self.live_start):
            if aware is not None and aware.tzinfo is None:
                raise ValueError("now and live_start must be timezone-aware datetimes")
        self._check_call_shapes()

    def _check_call_shapes(self) -> None:
        for name in ("long_call_share", "parallel_trunk_share", "twin_leg_share", "fork_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.parallel_trunk_share + self.twin_leg_share > 1.0:
            raise ValueError("parallel_trunk_share + twin_leg_share must be at most 1")
        if self.long_call_seconds < 1:
            raise ValueError("long_call_seconds must be >= 1")
        if self.long_call_share > 0 and self.long_call_seconds > self.max_call_seconds:
            raise ValueError(
                f"long_call_seconds ({self.long_call_seconds}) exceeds max_call_seconds "
                f"({self.max_call_seconds}); raise max_call_seconds (at most {MAX_CALL_SECONDS_LIMIT})"
            )


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    """Injected misbehaviour, drawn from a RNG seeded with ``fault_seed`` (all off by default).

    Faults never make a correct login fail, so a well-behaved client can never trip the IP ban.

    Attributes:
        fault_seed: Seed of the fault RNG (reset whenever a new FaultConfig is installed).
        cookie_expire_every: Every K-th authenticated request finds its session dropped (-6); 0 = off.
        throttle_rate: Probability of answering with ``throttle_code`` instead of serving.
        throttle_code: -45 / -46 (retry after 15 s) or -57 (retry after 60 s).
        max_requests_per_second: Answer ``throttle_code`` when more requests than this arrive within
            one second (real time); 0 = off.
        http500_rate: Probability of an HTTP 500 with an HTML body.
        repeat_page_rate: Probability that a cdrapi request gets the previous cdrapi reply again.
        short_page_rate: Probability that a cdrapi page holds only a prefix of the requested items; the
            rest stay at their offsets (a client advancing by the items received misses nothing).
        malformed_item_rate: Share of real cdrapi items (JSON format) preceded by an injected malformed
            item: a non-object item, a grouped item whose ``sub_cdr_1`` is a string, or a grouped item
            with ``main_cdr`` only. Decided per item by a hash of ``fault_seed`` and its AcctId, not by
            the request RNG, so junk sits at the same offsets on every request; each junk item takes
            one slot (item or leg) and holds no leg, so the ground truth is unchanged and a client
            advancing by what it received gets every real leg (see ``simulator/junk.py``).
        slow_ms: Delay added to every API request.
        hang_rate: Probability that a request stalls for ``hang_seconds`` before being answered.
        hang_seconds: Length of a stall; longer than any sane client timeout.
        apply_to_auth: Whether throttle/500/hang also hit challenge and login.
    """

    fault_seed: int = 0
    cookie_expire_every: int = 0
    throttle_rate: float = 0.0
    throttle_code: int = -45
    max_requests_per_second: float = 0.0
    http500_rate: float = 0.0
    repeat_page_rate: float = 0.0
    short_page_rate: float = 0.0
    malformed_item_rate: float = 0.0
    slow_ms: int = 0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    apply_to_auth: bool = True

    def __post_init__(self) -> None:
        """Validate probabilities and codes."""
        rates = ("throttle_rate", "http500_rate", "repeat_page_rate", "short_page_rate", "hang_rate")
        for name in (*rates, "malformed_item_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.throttle_code not in THROTTLE_STATUSES:
            raise ValueError(f"throttle_code must be one of {THROTTLE_STATUSES}")
        if self.cookie_expire_every < 0 or self.slow_ms < 0 or self.hang_seconds < 0:
            raise ValueError("cookie_expire_every, slow_ms and hang_seconds must be >= 0")
