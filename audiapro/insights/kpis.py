"""Daily KPIs, breakdowns, callback worklist and repeat callers of one tenant-day (pure pandas).

* **ASR** = answered calls / calls x 100; **ACD** = talk seconds of answered calls / answered calls
  (cdr-stats and carrier usage; here "answered" means a person answered, see ``frames``).
* **missed** = inbound calls no person answered.
* **busiest hour**: the local hour with the most call starts (earliest on a tie).
* **peak concurrent calls**: a sweep over the day's call intervals ``[started_at, ended_at)`` (an
  end at the same instant as a start frees its slot first); also for outgoing calls only.
* **callback worklist**: inbound calls of the day no person answered, from a caller with a number,
  that are not followed within ``callback_window_hours`` by an answered call with that number in
  either direction; one row per number (missed calls, first and last, last session), oldest first.
* **repeat callers**: numbers with at least ``repeat_min_calls`` inbound calls in the
  ``repeat_days`` days ending with the day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from audiapro.insights.frames import ANSWERED, OUTGOING
from audiapro.insights.settings import InsightSettings
from audiapro.warehouse.insights import StoredDay

#: Inbound caller ids that cannot be called back.
UNCALLABLE: Final = frozenset({"anonymous", "unknown", "private", ""})
DIRECTIONS: Final = ("inbound", "outbound", "internal", "external")


def local_hours(starts: pd.Series, timezone: str) -> pd.Series:
    """Local hour (0-23) of each UTC start."""
    return starts.dt.tz_convert(ZoneInfo(timezone)).dt.hour


def after_hours(starts: pd.Series, timezone: str, settings: InsightSettings) -> pd.Series:
    """Whether each UTC start falls outside the tenant's business hours (its own zone)."""
    local = starts.dt.tz_convert(ZoneInfo(timezone))
    business_day = local.dt.day_of_week.isin(settings.business_days)
    in_hours = (local.dt.hour >= settings.business_start_hour) & (local.dt.hour < settings.business_end_hour)
    return ~(business_day & in_hours)


def peak_concurrency(starts: pd.Series, ends: pd.Series) -> int:
    """Most intervals open at once (sweep line; an end frees its slot before a start at that instant)."""
    if starts.empty:
        return 0
    ends = ends.fillna(starts)
    events = pd.DataFrame(
        {"at": pd.concat([starts, ends], ignore_index=True), "delta": [1] * len(starts) + [-1] * len(ends)}
    ).sort_values(["at", "delta"], kind="mergesort")
    return int(max(0, events["delta"].cumsum().max()))


def day_kpis(
    calls: pd.DataFrame, timezone: str, home_region: str, settings: InsightSettings
) -> dict[str, Any]:
    """The ``daily_kpis`` values of one day's calls (``callbacks_open`` is set by :func:`compute_day`)."""
    total = len(calls)
    answered = int(calls["answered"].sum())
    talk = int(calls.loc[calls["answered"], "talk_s"].sum())
    by_direction = calls["direction"].value_counts()
    hours = local_hours(calls["started_at"], timezone).value_counts() if total else pd.Series(dtype=int)
    busiest = int(hours.sort_index().idxmax()) if total else None
    outgoing = calls[calls["direction"].isin(OUTGOING)]
    intl = outgoing["country"].notna() & (outgoing["country"] != home_region)
    return {
        "calls": total,
        **{direction: int(by_direction.get(direction, 0)) for direction in DIRECTIONS},
        "answered": answered,
        "missed": int(((calls["direction"] == "inbound") & ~calls["answered"]).sum()),
        "asr": round(100.0 * answered / total, 2) if total else None,
        "acd_s": round(talk / answered, 1) if answered else None,
        "talk_s": talk,
        "busiest_hour": busiest,
        "busiest_hour_calls": int(hours.max()) if total else 0,
        "peak_concurrent": peak_concurrency(calls["started_at"], calls["ended_at"]),
        "peak_concurrent_outbound": peak_concurrency(outgoing["started_at"], outgoing["ended_at"]),
        "after_hours_external": int(after_hours(outgoing["started_at"], timezone, settings).sum()),
        "international": int(intl.sum()),
    }


def _grouped(calls: pd.DataFrame, key: pd.Series, dimension: str) -> list[dict[str, Any]]:
    frame = pd.DataFrame(
        {
            "key": key,
            "calls": 1,
            "answered": calls["answered"].astype(int),
            "missed": ((calls["direction"] == "inbound") & ~calls["answered"]).astype(int),
            "talk_s": calls["talk_s"].where(calls["answered"], 0).astype("int64"),
        }
    )
    sums = (
        frame[frame["key"].notna()].groupby("key", sort=True)[["calls", "answered", "missed", "talk_s"]].sum()
    )
    return [
        {"dimension": dimension, "key": str(value), **{k: int(v) for k, v in row.items()}, "avg_ring_s": None}
        for value, row in zip(sums.index, sums.to_dict("records"), strict=True)
    ]


def extension_rows(calls: pd.DataFrame, ext_legs: pd.DataFrame) -> list[dict[str, Any]]:
    """Per extension: calls it placed or that rang it, answered (by it), missed (rang it, nobody
    answered), talk seconds (calls it placed and legs it answered), average ring before it answered."""
    placed = calls[calls["direction"].isin(("outbound", "internal")) & calls["extension"].notna()]
    missed_sessions = calls.loc[~calls["answered"], "session"]
    took = ext_legs[ext_legs["answered"]]
    rang_missed = ext_legs[ext_legs["session"].isin(missed_sessions)]
    involved = pd.concat([placed[["extension", "session"]], ext_legs[["extension", "session"]]])
    table = pd.DataFrame(
        {
            "calls": involved.groupby("extension")["session"].nunique(),
            "answered": took.groupby("extension")["session"].nunique(),
            "missed": rang_missed.groupby("extension")["session"].nunique(),
            "placed_talk": placed[placed["answered"]].groupby("extension")["talk_s"].sum(),
            "took_talk": took.groupby("extension")["billsec_s"].sum(),
            "avg_ring_s": took.groupby("extension")["ring_s"].mean(),
        }
    )
    counts = table[["calls", "answered", "missed", "placed_talk", "took_talk"]].fillna(0).astype("int64")
    return [
        {
            "dimension": "extension",
            "key": str(ext),
            "calls": int(row["calls"]),
            "answered": int(row["answered"]),
            "missed": int(row["missed"]),
            "talk_s": int(row["placed_talk"] + row["took_talk"]),
            "avg_ring_s": None if pd.isna(ring) else round(float(ring), 1),
        }
        for ext, row, ring in zip(counts.index, counts.to_dict("records"), table["avg_ring_s"], strict=True)
    ]


def callback_rows(
    day_calls: pd.DataFrame, later_calls: pd.DataFrame, window: timedelta
) -> list[dict[str, Any]]:
    """The day's callback worklist (see the module docstring), oldest first.

    Args:
        day_calls: The day's calls.
        later_calls: Calls from the day's start to at least its end plus ``window`` (may include the
            day's own calls).
        window: How long an answered call with the number resolves a missed call.
    """
    missed = day_calls[(day_calls["direction"] == "inbound") & ~day_calls["answered"]]
    missed = missed[missed["number"].notna() & ~missed["number"].fillna("").str.lower().isin(UNCALLABLE)]
    if missed.empty:
        return []
    answered = later_calls.loc[
        later_calls["answered"] & later_calls["number"].notna(), ["number", "started_at"]
    ]
    pairs = missed[["session", "number", "started_at"]].merge(answered, on="number", suffixes=("", "_answer"))
    follows = (pairs["started_at_answer"] > pairs["started_at"]) & (
        pairs["started_at_answer"] <= pairs["started_at"] + pd.Timedelta(window)
    )
    open_calls = missed[~missed["session"].isin(pairs.loc[follows, "session"])]
    grouped = open_calls.sort_values(["started_at", "session"]).groupby("number", sort=False)
    rows = pd.DataFrame(
        {
            "missed_calls": grouped["session"].count(),
            "first_missed_at": grouped["started_at"].min(),
            "last_missed_at": grouped["started_at"].max(),
            "last_session": grouped["session"].last(),
        }
    ).reset_index()
    rows = rows.sort_values(["first_missed_at", "number"])
    return [
        {
            "number": str(row["number"]),
            "missed_calls": int(row["missed_calls"]),
            "first_missed_at": row["first_missed_at"].to_pydatetime(),
            "last_missed_at": row["last_missed_at"].to_pydatetime(),
            "last_session": str(row["last_session"]),
        }
        for row in rows.to_dict("records")
    ]


def repeat_caller_rows(recent_calls: pd.DataFrame, settings: InsightSettings) -> list[dict[str, Any]]:
    """Numbers with at least ``repeat_min_calls`` inbound calls among ``recent_calls``."""
    inbound = recent_calls[(recent_calls["direction"] == "inbound") & recent_calls["number"].notna()]
    inbound = inbound[~inbound["number"].str.lower().isin(UNCALLABLE)]
    rows = _grouped(inbound, inbound["number"], "repeat_caller")
    return [row for row in rows if row["calls"] >= settings.repeat_min_calls]


def compute_day(
    day: date,
    *,
    window_calls: pd.DataFrame,
    ext_legs: pd.DataFrame,
    day_span: tuple[datetime, datetime],
    timezone: str,
    home_region: str,
    settings: InsightSettings,
) -> StoredDay:
    """Everything stored for one tenant-day.

    Args:
        day: The local day.
        window_calls: Calls from ``repeat_days - 1`` days before the day's start to at least the
            callback window after its end.
        ext_legs: Extension legs (``frames.extension_legs``) of the day's calls.
        day_span: The day's UTC ``[start, end)``.
        timezone: Tenant zone.
        home_region: Tenant phone region (calls to other regions are international).
        settings: Tenant insight settings.
    """
    start, end = (pd.Timestamp(t) for t in day_span)
    in_day = (window_calls["started_at"] >= start) & (window_calls["started_at"] < end)
    calls = window_calls[in_day]
    kpis = day_kpis(calls, timezone, home_region, settings)
    hours = local_hours(calls["started_at"], timezone)
    outgoing = calls["direction"].isin(OUTGOING)
    breakdowns = [
        *_grouped(calls, hours.map(lambda h: f"{h:02d}"), "hour"),
        *_grouped(calls, calls["disposition"], "disposition"),
        *_grouped(calls, calls["trunk"], "trunk"),
        *_grouped(calls, calls["country"].where(outgoing), "country"),
        *extension_rows(calls, ext_legs[ext_legs["session"].isin(set(calls["session"]))]),
    ]
    repeat_from = start - pd.Timedelta(days=settings.repeat_days - 1)
    recent = window_calls[(window_calls["started_at"] >= repeat_from) & (window_calls["started_at"] < end)]
    breakdowns += repeat_caller_rows(recent, settings)
    later = window_calls[window_calls["started_at"] >= start]
    callbacks = callback_rows(calls, later, timedelta(hours=settings.callback_window_hours))
    kpis["callbacks_open"] = len(callbacks)
    return StoredDay(kpis=kpis, breakdowns=breakdowns, callbacks=callbacks)


#: The disposition a call counts under when answered (for the report's pie chart).
ANSWERED_LABEL: Final = ANSWERED
