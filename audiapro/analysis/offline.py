"""Deterministic call analysis without any model or network: what the CDR and call history tell.

Works on a frame of `calls` rows (the calls to classify plus the history around them: callbacks and
repeat callers are looked up *within the frame*, so pass a window that covers the lookback you want).
Output is `OfflineFlags` per call; see `models.OfflineFlags` for each flag's definition. Optional
columns are used when present: `duration_s` (abandoned calls), `dst_e164` (an outbound answered call
to the number also counts as a callback), and `voicemail` / `lastapp` / `action_type` /
`answered_by` (voicemail indicators; the UCM writes `lastapp=VoiceMail`, `action_type=VM`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audiapro.analysis.models import OFFLINE_RULES_VERSION, AnalysisRecord, OfflineFlags, Outcome

REQUIRED_COLUMNS: Final = ("tenant", "session", "started_at", "direction", "answered", "talk_s", "src_e164")
#: Columns whose value can reveal that the call ended in voicemail.
VOICEMAIL_COLUMNS: Final = ("lastapp", "action_type", "answered_by")
FLAG_COLUMNS: Final = tuple(OfflineFlags.model_fields)
SECONDS_PER_HOUR: Final = 3600
SECONDS_PER_MINUTE: Final = 60


def _seconds_of_day(moment: time) -> int:
    return moment.hour * SECONDS_PER_HOUR + moment.minute * SECONDS_PER_MINUTE + moment.second


class BusinessHours(BaseModel):
    """Opening hours of a tenant, in its local time.

    `closes` before `opens` means hours that run past midnight (e.g. 22:00-06:00). The weekday is the
    local calendar day of the call.

    Attributes:
        timezone: IANA time zone, e.g. `America/New_York`.
        opens: Opening time (inclusive).
        closes: Closing time (exclusive).
        weekdays: Open days, Monday = 0 ... Sunday = 6.
        holidays: Local dates that are closed all day.
    """

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            # ZoneInfoNotFoundError is a KeyError, which pydantic would not turn into a ValidationError.
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("weekdays")
    @classmethod
    def _valid_days(cls, value: frozenset[int]) -> frozenset[int]:
        if not value <= frozenset(range(7)):
            raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
        return value

    def after_hours(self, started_at: pd.Series) -> pd.Series:
        """True for UTC timestamps outside these hours (False for missing timestamps)."""
        local = started_at.dt.tz_convert(self.timezone)
        second = local.dt.hour * SECONDS_PER_HOUR + local.dt.minute * SECONDS_PER_MINUTE + local.dt.second
        opens, closes = _seconds_of_day(self.opens), _seconds_of_day(self.closes)
        if opens <= closes:
            in_hours = (second >= opens) & (second < closes)
        else:
            in_hours = (second >= opens) | (second < closes)
        workday = local.dt.day_of_week.isin(self.weekdays) & ~local.dt.date.isin(self.holidays)
        return (~(in_hours & workday) & local.notna()).astype(bool)


class OfflineSettings(BaseModel):
    """Rules of the offline analyzer.

    Attributes:
        default_hours: Business hours of tenants without their own.
        hours_by_tenant: Business hours by tenant.
        repeat_window_days: A call is a repeat when the number called in within this many days before.
        callback_window_hours: A later answered call only counts as the callback within this many
            hours (None: any later call in the frame).
        abandon_max_s: Unanswered inbound calls shorter than this are abandoned (CallRail uses 15 s).
        voicemail_pattern: Case-insensitive regex; a match in a voicemail column marks voicemail.
    """

    model_config = ConfigDict(frozen=True)

    default_hours: BusinessHours = Field(default_factory=BusinessHours)
    hours_by_tenant: dict[str, BusinessHours] = Field(default_factory=dict)
    repeat_window_days: float = Field(default=7.0, gt=0)
    callback_window_hours: float | None = Field(default=None, gt=0)
    abandon_max_s: int = Field(default=15, ge=0)
    voicemail_pattern: str = r"^(?:vm|voicemail)\b"

    def hours_for(self, tenant: str) -> BusinessHours:
        """Business hours of `tenant`."""
        return self.hours_by_tenant.get(tenant, self.default_hours)


class OfflineAnalyzer:
    """Rule-based flags for calls (no network, no cost).

    Args:
        settings: Rules (defaults: `OfflineSettings()`).
    """

    def __init__(self, settings: OfflineSettings | None = None) -> None:
        self.settings = settings or OfflineSettings()

    def flags(self, calls: pd.DataFrame) -> pd.DataFrame:
        """Flags of every call in the frame, vectorized.

        Args:
            calls: `calls` rows (at least `REQUIRED_COLUMNS`); the frame is also the history.

        Returns:
            A frame with the `OfflineFlags` fields as columns, indexed like `calls`.

        Raises:
            ValueError: Required columns are missing.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in calls.columns]
        if missing:
            raise ValueError(f"calls frame lacks columns: {missing}")
        # Positional index inside, so duplicate or odd labels of the caller's frame cannot collide.
        frame = calls.reset_index(drop=True)
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
        answered = frame["answered"].astype("boolean").fillna(False).astype(bool)
        talk = pd.to_numeric(frame["talk_s"], errors="coerce").fillna(0)
        inbound = frame["direction"].astype("string").str.lower().eq("inbound").fillna(False).astype(bool)
        voicemail = self._voicemail(frame)
        missed = (~answered | (talk <= 0)) & ~voicemail
        reached = answered & ~voicemail & (talk > 0)

        out = pd.DataFrame(index=frame.index)
        unknown = np.full(len(frame), None, dtype=object)  # None = needs a model
        outcome = np.where(
            voicemail, Outcome.voicemail.value, np.where(missed, Outcome.missed.value, unknown)
        )
        out["outcome"] = pd.Series(outcome, index=frame.index, dtype=object)
        out["missed"] = missed
        out["voicemail"] = voicemail
        out["abandoned"] = self._abandoned(frame, inbound & ~answered & ~voicemail)
        out["callback_needed"] = self._callback_needed(frame, inbound & (missed | voicemail), reached)
        prior = self._prior_calls(frame, inbound)
        out["repeat_caller"] = prior > 0
        out["prior_calls_from_number"] = prior
        out["after_hours"] = self._after_hours(frame)
        out.index = calls.index
        return out[list(FLAG_COLUMNS)]

    def analyze(self, calls: pd.DataFrame, *, created_at: datetime | None = None) -> list[AnalysisRecord]:
        """One succeeded offline record per call, in frame order.

        Args:
            calls: `calls` rows (also the history).
            created_at: Timestamp of the records (default: now, UTC).

        Returns:
            Records with `analyzer="offline"`, `flags` set and zero cost.
        """
        stamp = created_at or datetime.now(UTC)
        flags = self.flags(calls)
        records = []
        for (_, call), values in zip(calls.iterrows(), flags.to_dict("records"), strict=True):
            records.append(
                AnalysisRecord(
                    tenant=str(call["tenant"]),
                    session=str(call["session"]),
                    recording_sha256=None,
                    analyzer="offline",
                    model=None,
                    transcription_model=None,
                    prompt_version=OFFLINE_RULES_VERSION,
                    status="succeeded",
                    flags=OfflineFlags.model_validate(values),
                    created_at=stamp,
                )
            )
        return records

    # -- rules ----------------------------------------------------------------------------------

    def _voicemail(self, frame: pd.DataFrame) -> pd.Series:
        found = pd.Series(False, index=frame.index)
        if "voicemail" in frame.columns:
            found |= frame["voicemail"].astype("boolean").fillna(False).astype(bool)
        for column in VOICEMAIL_COLUMNS:
            if column in frame.columns:
                values = frame[column].astype("string").str.strip()
                hit = values.str.contains(self.settings.voicemail_pattern, case=False, regex=True)
                found |= hit.fillna(False).astype(bool)
        return found

    def _abandoned(self, frame: pd.DataFrame, unanswered_inbound: pd.Series) -> pd.Series:
        if "duration_s" not in frame.columns:
            return pd.Series(False, index=frame.index)
        duration = pd.to_numeric(frame["duration_s"], errors="coerce")
        return (unanswered_inbound & (duration < self.settings.abandon_max_s).fillna(False)).astype(bool)

    def _callback_needed(self, frame: pd.DataFrame, candidates: pd.Series, reached: pd.Series) -> pd.Series:
        """Candidates with no later reached call with the same number (within the window)."""
        known = frame["started_at"].notna()
        waiting = frame.loc[candidates & known & frame["src_e164"].notna(), ["src_e164", "started_at"]]
        contacts = [frame.loc[reached & known & frame["src_e164"].notna(), ["src_e164", "started_at"]]]
        if "dst_e164" in frame.columns:
            outbound = (
                frame["direction"].astype("string").str.lower().eq("outbound").fillna(False).astype(bool)
            )
            dialled = frame.loc[
                reached & outbound & known & frame["dst_e164"].notna(), ["dst_e164", "started_at"]
            ]
            contacts.append(dialled.rename(columns={"dst_e164": "src_e164"}))
        later = pd.concat(contacts).rename(columns={"src_e164": "number", "started_at": "reached_at"})
        left = waiting.rename(columns={"src_e164": "number"}).reset_index(names="_row")
        if left.empty:
            return pd.Series(False, index=frame.index)
        left["number"] = left["number"].astype(str)
        later["number"] = later["number"].astype(str)
        matched = pd.merge_asof(
            left.sort_values("started_at", kind="mergesort"),
            later.sort_values("reached_at", kind="mergesort"),
            left_on="started_at",
            right_on="reached_at",
            by="number",
            direction="forward",
            allow_exact_matches=False,  # the call itself (or a twin at the same second) is no callback
        )
        pending = matched["reached_at"].isna()
        if self.settings.callback_window_hours is not None:
            window = pd.Timedelta(hours=self.settings.callback_window_hours)
            pending |= matched["reached_at"] - matched["started_at"] > window
        result = pd.Series(False, index=frame.index)
        result.loc[matched.loc[pending, "_row"].to_numpy()] = True
        return result

    def _prior_calls(self, frame: pd.DataFrame, inbound: pd.Series) -> pd.Series:
        """Inbound calls from the same number in [start - window, start)."""
        rows = frame.loc[
            inbound & frame["src_e164"].notna() & frame["started_at"].notna(), ["src_e164", "started_at"]
        ]
        counts = pd.Series(0, index=frame.index, dtype="int64")
        if rows.empty:
            return counts
        rows = rows.assign(number=rows["src_e164"].astype(str), one=1.0).sort_values(
            ["number", "started_at"], kind="mergesort"
        )
        window = pd.Timedelta(days=self.settings.repeat_window_days)
        # Rolling over the frame (not one column) keeps the row labels in the result's index.
        rolled = (
            rows[["number", "started_at", "one"]]
            .groupby("number", sort=False)
            .rolling(window, on="started_at", closed="left")
            .sum()["one"]
            .reset_index(level=0, drop=True)
        )
        counts.loc[rolled.index] = rolled.fillna(0).astype("int64")
        return counts

    def _after_hours(self, frame: pd.DataFrame) -> pd.Series:
        result = pd.Series(False, index=frame.index)
        for tenant, index in frame.groupby("tenant", sort=False).groups.items():
            hours = self.settings.hours_for(str(tenant))
            result.loc[index] = hours.after_hours(frame.loc[index, "started_at"]).to_numpy()
        return result
