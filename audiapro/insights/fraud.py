"""Toll-fraud rules over a call frame: read-only alerts, never blocking (README "Toll-fraud rules").

Each rule returns alert rows keyed by (rule, subject, window_start). Windowed rules (2, 4, 6) find
their windows greedily from the earliest call of the evaluated span, so evaluating the same calls
again yields the same windows; per-day rules (1, 3, 5, 7, new country) use the PBX-local day as the
window. The store (``audiapro.warehouse.insights.upsert_alerts``) keeps one row per key.

The rules and their default thresholds (``InsightSettings``):

1. ``risky_destination``: premium-rate, shared-cost, UAN or non-geographic/satellite numbers
   (``phonenumbers`` types), NANP area codes of the Caribbean/Pacific one-ring scams and of
   pumping-prone rural carriers; and ``new_country``: a destination country the tenant never called
   in its baseline (daily).
2. ``intl_velocity``: international calls of one extension: 10 in 60 min warns, 20 is critical.
3. ``after_hours``: external calls outside business hours above max(10, 2 x the trailing median of
   the same kind of day) (daily).
4. ``short_call_burst``: answered calls under 10 s to one prefix, 10 in 10 min (traffic pumping).
5. ``concurrency``: peak simultaneous outgoing calls above the trailing p99 of daily peaks + 2, or at
   80 % of the configured trunk channels (daily).
6. ``sequential_calls``: calls to one number: 10 in 600 s warns, 20 is critical.
7. ``trunk_to_trunk``: a call from one trunk out another that no user's follow-me or forward explains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import PhoneNumberType

from audiapro.insights.frames import OUTGOING
from audiapro.insights.kpis import after_hours
from audiapro.insights.settings import InsightSettings

WARNING, CRITICAL = "warning", "critical"
RULES: Final = (
    "risky_destination", "new_country", "intl_velocity", "after_hours", "short_call_burst",
    "concurrency", "sequential_calls", "trunk_to_trunk",
)  # fmt: skip
#: Rules cheap enough for every poll tick (windowed or per call); the others run daily.
POLL_RULES: Final = (
    "risky_destination",
    "intl_velocity",
    "short_call_burst",
    "sequential_calls",
    "trunk_to_trunk",
)
#: Rules that search sliding windows (each resumes after its latest stored window, see TenantContext).
WINDOWED_RULES: Final = ("intl_velocity", "short_call_burst", "sequential_calls")
#: phonenumbers types billed at a premium or shared with the called party.
PREMIUM_TYPES: Final = (PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN)
#: Region code phonenumbers gives non-geographic numbers (satellite, international networks).
NON_GEOGRAPHIC: Final = "001"
#: Evidence lists are cut to this many items (counts stay exact).
MAX_EVIDENCE_ITEMS: Final = 20


@dataclass(frozen=True)
class TenantContext:
    """What the rules need about the tenant.

    Attributes:
        tenant: Tenant name.
        timezone: IANA zone of the PBX.
        home_region: ISO region of the tenant's own numbers (others are international).
        settings: Thresholds.
        resume: See the field's comment.
    """

    tenant: str
    timezone: str
    home_region: str
    settings: InsightSettings
    #: (rule, subject) -> end of its latest stored window: a windowed rule resumes its search there
    #: (what a search from the day's first call does after that window), so an evaluation of only
    #: the last hours finds the same windows as one of the whole day.
    resume: dict[tuple[str, str], datetime] = field(default_factory=dict)


@lru_cache(maxsize=65536)
def risk_of(e164: str, risky_area_codes: tuple[str, ...]) -> str | None:
    """Why a dialled number is risky (``premium_rate``, ``satellite``, ``risky_area_code``...), or None."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.region_code_for_number(number) == NON_GEOGRAPHIC:
        return "satellite_or_non_geographic"
    kind = phonenumbers.number_type(number)
    if kind in PREMIUM_TYPES:
        return {PhoneNumberType.PREMIUM_RATE: "premium_rate", PhoneNumberType.SHARED_COST: "shared_cost"}.get(
            kind, "uan"
        )
    national = str(number.national_number)
    if number.country_code == 1 and national[:3] in risky_area_codes:
        return "risky_area_code"
    return None


def estimated_cost(calls: pd.DataFrame, rates: dict[str, float]) -> float | None:
    """Talk minutes x the longest matching prefix's rate per minute (None without a rate table)."""
    if not rates:
        return None
    prefixes = sorted(rates, key=len, reverse=True)
    total = 0.0
    for number, talk in zip(calls["dst_e164"], calls["talk_s"], strict=True):
        rate = next((rates[p] for p in prefixes if isinstance(number, str) and number.startswith(p)), 0.0)
        total += rate * float(talk) / 60.0
    return round(total, 2)


def _evidence(calls: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    destinations = calls["number"].dropna().value_counts()
    return {
        "calls": len(calls),
        "answered": int(calls["answered"].sum()),
        "talk_s": int(calls["talk_s"].sum()),
        "destinations": {str(k): int(v) for k, v in destinations.head(MAX_EVIDENCE_ITEMS).items()},
        "countries": sorted({str(c) for c in calls["country"].dropna()}),
        "extensions": sorted({str(e) for e in calls["extension"].dropna()}),
        "sessions": [str(s) for s in calls["session"].head(MAX_EVIDENCE_ITEMS)],
        **extra,
    }


def _alert(
    ctx: TenantContext,
    rule: str,
    severity: str,
    subject: str,
    calls: pd.DataFrame,
    window: tuple[Any, Any],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "tenant": ctx.tenant,
        "rule": rule,
        "severity": severity,
        "subject": subject,
        "window_start": pd.Timestamp(window[0]).to_pydatetime(),
        "window_end": pd.Timestamp(window[1]).to_pydatetime(),
        "calls": len(calls),
        "evidence": _evidence(calls, **extra),
        "estimated_cost": estimated_cost(calls, ctx.settings.rates_per_minute),
    }


def windows(
    times: Sequence[pd.Timestamp] | pd.Series, span: pd.Timedelta, minimum: int
) -> list[tuple[int, int]]:
    """Greedy ``[i, j)`` index ranges of sorted ``times`` with at least ``minimum`` within ``span``.

    From the earliest time on: a window opens at a call when ``minimum`` calls (it included) start
    before it plus ``span``; the window takes every call in that span, and the search goes on after it.
    """
    values = np.asarray(pd.Series(times).dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64"))
    width = int(span.value)  # nanoseconds, like the values
    found, i = [], 0
    while i < len(values):
        j = int(np.searchsorted(values, values[i] + width, side="left"))
        if j - i >= minimum:
            found.append((i, j))
            i = j
        else:
            i += 1
    return found


def _windowed(
    ctx: TenantContext,
    rule: str,
    calls: pd.DataFrame,
    key: str,
    span: pd.Timedelta,
    warn: int,
    critical: int,
    subject: Callable[[Any], str],
) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    # Only a subject with at least `warn` calls can fill a window: on an ordinary day that is none,
    # so the per-group work (the costly part) is skipped for almost every subject.
    counts = calls[key].value_counts()
    if counts.empty or counts.max() < warn:
        return alerts
    busy = calls[calls[key].isin(counts.index[counts >= warn])].sort_values(["started_at", "session"])
    for value, group in busy.groupby(key, sort=True):
        resume = ctx.resume.get((rule, subject(value)))
        if resume is not None:
            group = group[group["started_at"] >= pd.Timestamp(resume)]
        for i, j in windows(group["started_at"], span, warn):
            hit = group.iloc[i:j]
            severity = CRITICAL if len(hit) >= critical else WARNING
            start = hit["started_at"].iloc[0]
            alerts.append(_alert(ctx, rule, severity, subject(value), hit, (start, start + span)))
    return alerts


def _outgoing(calls: pd.DataFrame) -> pd.DataFrame:
    return calls[calls["direction"].isin(OUTGOING)]


def _party(calls: pd.DataFrame) -> pd.Series:
    """Who placed an outgoing call: ``ext:<n>``, else ``trunk:<name>`` (trunk-to-trunk calls)."""
    ext = "ext:" + calls["extension"].astype("string")
    trunk = "trunk:" + calls["trunk"].fillna("?").astype("string")
    return ext.fillna(trunk)


def _local_day(calls: pd.DataFrame, timezone: str) -> pd.Series:
    return calls["started_at"].dt.tz_convert(timezone).dt.date


def _day_window(day: date, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(day).tz_localize(timezone)
    return start.tz_convert("UTC"), (start + pd.DateOffset(days=1)).tz_convert("UTC")


def risky_destinations(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """Rule 1: calls to risky numbers, per placing party and local day."""
    out = _outgoing(calls)
    codes = ctx.settings.risky_area_codes
    reasons = out["dst_e164"].map(lambda n: risk_of(n, codes) if isinstance(n, str) else None)
    if not reasons.notna().any():
        return []
    risky = out[reasons.notna()].assign(reason=reasons[reasons.notna()])
    alerts = []
    for (party, day), group in risky.groupby([_party(risky), _local_day(risky, ctx.timezone)], sort=True):
        severe = group["reason"].isin(("premium_rate", "satellite_or_non_geographic")).any()
        reasons_seen = {str(k): int(v) for k, v in group["reason"].value_counts().items()}
        alerts.append(
            _alert(
                ctx,
                "risky_destination",
                CRITICAL if severe else WARNING,
                str(party),
                group,
                _day_window(day, ctx.timezone),
                reasons=reasons_seen,
            )
        )
    return alerts


def intl_velocity(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """Rule 2: international calls per placing party in a sliding window."""
    out = _outgoing(calls)
    intl = out[out["country"].notna() & (out["country"] != ctx.home_region)]
    s = ctx.settings
    if len(intl) < s.velocity_warn:  # no party can fill a window: skip building the party labels
        return []
    return _windowed(
        ctx,
        "intl_velocity",
        intl.assign(party=_party(intl)),
        "party",
        pd.Timedelta(minutes=s.velocity_window_min),
        s.velocity_warn,
        s.velocity_critical,
        str,
    )


def short_call_bursts(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """Rule 4: answered calls under ``burst_max_billsec`` to one prefix (traffic pumping)."""
    s = ctx.settings
    out = _outgoing(calls)
    short = out[out["answered"] & (out["talk_s"] < s.burst_max_billsec) & out["dst_e164"].notna()]
    short = short.assign(prefix=short["dst_e164"].str[: 1 + s.burst_prefix_digits])
    return _windowed(
        ctx,
        "short_call_burst",
        short,
        "prefix",
        pd.Timedelta(minutes=s.burst_window_min),
        s.burst_min_calls,
        2 * s.burst_min_calls,
        lambda p: f"prefix:{p}",
    )


def sequential_calls(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """Rule 6: calls to one number in a sliding window."""
    s = ctx.settings
    out = _outgoing(calls)
    out = out[out["dst_e164"].notna()]
    return _windowed(
        ctx,
        "sequential_calls",
        out,
        "dst_e164",
        pd.Timedelta(seconds=s.sequential_window_s),
        s.sequential_warn,
        s.sequential_critical,
        lambda n: f"number:{n}",
    )


def trunk_to_trunk(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """Rule 7: trunk-to-trunk calls no user's follow-me/forward explains, per trunk and day."""
    external = calls[calls["direction"] == "external"]
    if external.empty:
        return []
    allowed = ctx.settings.trunk_to_trunk_allowed_actions
    explained = (
        external["action_type"].fillna("").map(lambda a: any(a.startswith(p) for p in allowed)).astype(bool)
    )
    suspect = external[~explained]
    if suspect.empty:  # the usual case: every trunk-to-trunk call is a forward or follow-me
        return []
    alerts = []
    for (trunk, day), group in suspect.groupby(
        [suspect["trunk"].fillna("?"), _local_day(suspect, ctx.timezone)]
    ):
        alerts.append(
            _alert(ctx, "trunk_to_trunk", CRITICAL, f"trunk:{trunk}", group, _day_window(day, ctx.timezone))
        )
    return alerts


def poll_rules(ctx: TenantContext, calls: pd.DataFrame) -> list[dict[str, Any]]:
    """The rules evaluated after each poll tick (cheap: per call or windowed)."""
    if calls.empty:
        return []
    return [
        *risky_destinations(ctx, calls),
        *intl_velocity(ctx, calls),
        *short_call_bursts(ctx, calls),
        *sequential_calls(ctx, calls),
        *trunk_to_trunk(ctx, calls),
    ]


# --- daily (baseline) rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The tenant's own history before the day judged (from stored ``daily_kpis``/breakdowns).

    Attributes:
        days: Baseline days with stored KPIs.
        after_hours: ``(day, after_hours_external)`` per baseline day.
        outbound_peaks: ``peak_concurrent_outbound`` per baseline day.
        countries: Destination countries called on the baseline days.
    """

    days: int
    after_hours: list[tuple[date, int]]
    outbound_peaks: list[int]
    countries: frozenset[str]


def _business_day(day: date, settings: InsightSettings) -> bool:
    return day.weekday() in settings.business_days


def after_hours_rule(
    ctx: TenantContext, day: date, calls: pd.DataFrame, base: Baseline
) -> list[dict[str, Any]]:
    """Rule 3: the day's after-hours external calls well above the same kind of day's median."""
    s = ctx.settings
    if base.days < s.min_baseline_days:
        return []
    out = _outgoing(calls)
    late = out[after_hours(out["started_at"], ctx.timezone, s)]
    same_kind = [n for d, n in base.after_hours if _business_day(d, s) == _business_day(day, s)]
    median = float(np.median(same_kind or [n for _, n in base.after_hours]))
    threshold = max(s.after_hours_min_calls, s.after_hours_factor * median)
    if len(late) <= threshold:
        return []
    severity = CRITICAL if len(late) > 2 * threshold else WARNING
    return [
        _alert(
            ctx,
            "after_hours",
            severity,
            "tenant",
            late,
            _day_window(day, ctx.timezone),
            baseline_median=median,
            threshold=threshold,
        )
    ]


def at_peak(calls: pd.DataFrame) -> pd.DataFrame:
    """The calls in progress at the first moment the most of them were (the evidence of rule 5)."""
    if calls.empty:
        return calls
    ends = calls["ended_at"].fillna(calls["started_at"])
    moments = calls["started_at"].sort_values()
    open_at = [int(((calls["started_at"] <= t) & (ends > t)).sum()) for t in moments]
    peak_moment = moments.iloc[int(np.argmax(open_at))]
    return calls[(calls["started_at"] <= peak_moment) & (ends > peak_moment)]


def concurrency_rule(
    ctx: TenantContext, day: date, calls: pd.DataFrame, peak: int, base: Baseline
) -> list[dict[str, Any]]:
    """Rule 5: the day's peak of simultaneous outgoing calls above the tenant's normal peak."""
    s = ctx.settings
    capacity_hit = s.trunk_channels > 0 and peak >= 0.8 * s.trunk_channels
    normal = float(np.percentile(base.outbound_peaks, 99)) if base.days >= s.min_baseline_days else None
    above_normal = normal is not None and peak > normal + s.concurrency_margin
    if not (capacity_hit or above_normal):
        return []
    return [
        _alert(
            ctx,
            "concurrency",
            CRITICAL if capacity_hit else WARNING,
            "tenant",
            at_peak(_outgoing(calls)),
            _day_window(day, ctx.timezone),
            peak=peak,
            normal_p99=normal,
            trunk_channels=s.trunk_channels,
        )
    ]


def new_countries(ctx: TenantContext, day: date, calls: pd.DataFrame, base: Baseline) -> list[dict[str, Any]]:
    """Rule 1b: destination countries the tenant did not call in its baseline."""
    if base.days < ctx.settings.min_baseline_days:
        return []
    out = _outgoing(calls)
    fresh = out[out["country"].notna() & ~out["country"].isin(base.countries | {ctx.home_region})]
    return [
        _alert(ctx, "new_country", WARNING, f"country:{country}", group, _day_window(day, ctx.timezone))
        for country, group in fresh.groupby("country", sort=True)
    ]


def daily_rules(
    ctx: TenantContext, day: date, calls: pd.DataFrame, peak: int, base: Baseline
) -> list[dict[str, Any]]:
    """Every rule for a closed day: the poll rules again (catches imported legs) and the baselines."""
    if calls.empty:
        return []
    return [
        *poll_rules(ctx, calls),
        *new_countries(ctx, day, calls, base),
        *after_hours_rule(ctx, day, calls, base),
        *concurrency_rule(ctx, day, calls, peak, base),
    ]


def summary_line(alert: dict[str, Any]) -> str:
    """One line naming an alert (no phone number beyond the subject the rule is about)."""
    start: datetime = alert["window_start"]
    return (
        f"{alert['severity'].upper()} {alert['rule']} {alert['subject']}: {alert['calls']} calls "
        f"from {start:%Y-%m-%d %H:%M} UTC"
    )
