"""Per-tenant insight and toll-fraud settings, with the documented defaults (README "Insights").

Stored per tenant as JSON in ``insight_settings`` (only the fields that differ from the defaults);
:func:`parse_settings` refuses unknown fields with a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final

#: Monday..Friday (``date.weekday()`` numbers).
WEEKDAYS: Final = (0, 1, 2, 3, 4)
#: NANP area codes that ring like domestic numbers but bill like international or pumped ones:
#: Caribbean and Pacific NPAs (one-ring "call me back" scams) and rural NPAs known for traffic
#: pumping (list as used by BroadWorks toll-fraud scripts).
RISKY_NANP_AREA_CODES: Final = (
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "664", "721", "758", "767", "784",
    "809", "829", "849", "868", "869", "876", "670", "671", "684", "218", "319", "605", "641", "712",
)  # fmt: skip


@dataclass(frozen=True)
class InsightSettings:
    """What the insights and the fraud rules need per tenant; every field has a default.

    Attributes:
        business_start_hour: First local hour of business (inclusive).
        business_end_hour: Local hour business ends (exclusive).
        business_days: Weekdays (0 = Monday) that have business hours; other days are after hours.
        callback_window_hours: A missed inbound call needs no callback when an answered call with the
            same number (either direction) follows within this many hours.
        repeat_min_calls: A number calling in this often within ``repeat_days`` is a repeat caller.
        repeat_days: Days (ending with the day computed) counted for repeat callers.
        velocity_window_min: Rule 2 window (minutes).
        velocity_warn: Rule 2: international calls of one extension in the window for a warning.
        velocity_critical: ... for a critical alert.
        after_hours_min_calls: Rule 3: after-hours external calls of a day never alert below this.
        after_hours_factor: Rule 3: ... nor below this many times the trailing median of such days.
        baseline_days: Trailing days the baseline rules (3, 5, new country) compare with.
        min_baseline_days: Days with calls needed before a baseline rule judges anything.
        burst_window_min: Rule 4 window (minutes).
        burst_max_billsec: Rule 4: answered calls shorter than this count as short.
        burst_min_calls: Rule 4: short calls to one prefix in the window.
        burst_prefix_digits: Rule 4: E.164 digits (after ``+``) forming the prefix.
        concurrency_margin: Rule 5: alert above the trailing p99 daily outbound peak plus this.
        trunk_channels: Rule 5: channels of the tenant's trunks; 80 % of them alerts (0: unknown).
        sequential_window_s: Rule 6 window (seconds).
        sequential_warn: Rule 6: calls to one number in the window for a warning.
        sequential_critical: ... for a critical alert.
        risky_area_codes: Rule 1: NANP area codes treated as risky destinations.
        trunk_to_trunk_allowed_actions: Rule 7: ``action_type`` prefixes that explain a trunk-to-trunk
            call (a user's follow-me or call forward).
        rates_per_minute: Optional rate table, E.164 prefix -> price per minute, for estimated cost.
    """

    business_start_hour: int = 8
    business_end_hour: int = 18
    business_days: tuple[int, ...] = WEEKDAYS
    callback_window_hours: int = 24
    repeat_min_calls: int = 3
    repeat_days: int = 7
    velocity_window_min: int = 60
    velocity_warn: int = 10
    velocity_critical: int = 20
    after_hours_min_calls: int = 10
    after_hours_factor: float = 2.0
    baseline_days: int = 28
    min_baseline_days: int = 7
    burst_window_min: int = 10
    burst_max_billsec: int = 10
    burst_min_calls: int = 10
    burst_prefix_digits: int = 6
    concurrency_margin: int = 2
    trunk_channels: int = 0
    sequential_window_s: int = 600
    sequential_warn: int = 10
    sequential_critical: int = 20
    risky_area_codes: tuple[str, ...] = RISKY_NANP_AREA_CODES
    trunk_to_trunk_allowed_actions: tuple[str, ...] = ("FOLLOWME", "CALLFORWARD", "FORWARD")
    rates_per_minute: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> str:
        """The fields that differ from the defaults, as JSON (what ``insight_settings`` stores)."""
        default = InsightSettings()
        changed = {k: v for k, v in asdict(self).items() if getattr(default, k) != getattr(self, k)}
        return json.dumps(changed, sort_keys=True)


_TUPLE_FIELDS: Final = ("business_days", "risky_area_codes", "trunk_to_trunk_allowed_actions")


def parse_settings(text: str | None) -> InsightSettings:
    """Settings from stored JSON (``None`` or ``""``: the defaults).

    Raises:
        ValueError: Not a JSON object, or an unknown field (one-line message naming it).
    """
    if not text:
        return InsightSettings()
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("insight settings must be a JSON object")
    known = {f.name for f in fields(InsightSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown insight settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for name in _TUPLE_FIELDS:
        if name in data:
            data[name] = tuple(data[name])
    return replace(InsightSettings(), **data)
