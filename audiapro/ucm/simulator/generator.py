"""Deterministic CDR history, generated lazily one local day at a time.

Calls are generated per *start* day (history at ``calls_per_day`` plus the optional live stream at
``live_rate`` calls per minute). Like the PBX's database, legs are numbered when they are written,
i.e. when they end, so they are indexed per *end* day: AcctId = day offset x ``ACCT_BLOCK`` + rank by
end time. AcctIds therefore increase with leg end time across the whole history, and the legs visible
at any instant (end <= now) are exactly a prefix of each end day.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from audiapro.ucm.simulator.builder import ChannelCounter
from audiapro.ucm.simulator.calls import CallFactory
from audiapro.ucm.simulator.fraud import fraud_legs
from audiapro.ucm.simulator.legs import Leg, wall_seconds

#: AcctIds of one end day occupy one block; a day must hold fewer legs than this.
ACCT_BLOCK = 1_000_000
#: Channel-counter values reserved per day (Asterisk's counter keeps growing; ours restarts per day at
#: a day-specific base, so ids still grow over time; about seven values per call).
CHANNELS_PER_DAY = 50_000
#: Relative call volume per local hour: quiet nights, a business-hours plateau, a lunch dip.
HOUR_WEIGHTS = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 2.0, 5.0, 8.0, 9.0, 9.0,
    7.0, 8.0, 9.0, 9.0, 8.0, 6.0, 3.0, 1.5, 1.0, 0.7, 0.5, 0.3,
)  # fmt: skip
#: Calls forced into each occurrence of a repeated local hour (DST fall-back), so history that
#: includes the change day always has ambiguous wall-clock times.
MIN_CALLS_REPEATED_HOUR = 3
DAY_VOLUME_JITTER = 0.1
RAW_DAY_CACHE = 4
_RECORDING_EPOCH = re.compile(r"auto-(\d{9,11})")

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A tiny LRU map; values are recomputed identically on a miss, so eviction is harmless."""

    def __init__(self, size: int) -> None:
        """Keep at most ``size`` entries."""
        self.size = max(1, size)
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """Return the cached value for ``key``, computing it with ``make`` on a miss."""
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = make()
        self._data[key] = value
        if len(self._data) > self.size:
            self._data.popitem(last=False)
        return value


@dataclass
class EndDay:
    """All legs whose end falls on one local day, in AcctId (= end time) order."""

    legs: list[Leg]
    ends: list[int] = field(default_factory=list)
    recordings: dict[str, Leg] = field(default_factory=dict)

    def visible(self, now: float) -> list[Leg]:
        """Legs that have ended by ``now`` (a prefix, because legs are sorted by end)."""
        return self.legs[: bisect_right(self.ends, now)]


def number_legs(legs: list[Leg], seq_base: int) -> list[Leg]:
    """Give ``legs`` consecutive generation numbers from ``seq_base`` (tie-breaks); return them."""
    for i, leg in enumerate(legs):
        leg.seq = seq_base + i
    return legs


def poisson(rng: random.Random, lam: float) -> int:
    """Draw a Poisson-distributed count (normal approximation for large means)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True)
class Timeline:
    """Which days carry calls.

    Attributes:
        history_start: First local day of generated history.
        history_days: Number of history days.
        live_rate: Live calls per minute (0 = none).
        live_start: UTC epoch from which the live stream runs.
    """

    history_start: date
    history_days: int
    live_rate: float
    live_start: int


class DataStore:
    """Generates, numbers and indexes the tenant's legs."""

    def __init__(
        self,
        *,
        seed: int,
        zone: ZoneInfo,
        factory: CallFactory,
        timeline: Timeline,
        calls_per_day: int,
        weekend_factor: float,
        max_call_seconds: int,
        cache_size: int,
    ) -> None:
        """Set up an empty cache; nothing is generated until asked for."""
        self.seed = seed
        self.zone = zone
        self.factory = factory
        self.timeline = timeline
        self.calls_per_day = calls_per_day
        self.weekend_factor = weekend_factor
        self.max_call_seconds = max_call_seconds
        self.first_day = timeline.history_start
        if timeline.live_rate > 0:
            self.first_day = min(self.first_day, self.local_date(timeline.live_start))
        self._raw: LruCache[date, list[Leg]] = LruCache(RAW_DAY_CACHE)
        self._ends: LruCache[date, EndDay] = LruCache(cache_size)

    # --- calendar ---------------------------------------------------------------------------------
    def day_bounds(self, day: date) -> tuple[int, int]:
        """UTC epochs of local midnight starting ``day`` and the next one."""
        nxt = day + timedelta(days=1)
        lo = datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()
        hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.zone).timestamp()
        return int(lo), int(hi)

    def local_date(self, epoch: float) -> date:
        """Local calendar date of a UTC epoch."""
        return datetime.fromtimestamp(epoch, self.zone).date()

    # --- generation -------------------------------------------------------------------------------
    def raw_day(self, day: date) -> list[Leg]:
        """Legs of calls starting on local ``day`` (cached briefly)."""
        return self._raw.get(day, lambda: self._generate(day))

    def _generate(self, day: date) -> list[Leg]:
        if day < self.first_day:
            return []
        lo, hi = self.day_bounds(day)
        calls: list[tuple[int, int, int, random.Random]] = []
        t = self.timeline
        if t.history_start <= day < t.history_start + timedelta(days=t.history_days):
            rng = random.Random(f"{self.seed}:day:{day.isoformat()}")
            calls += [(t0, 0, i, rng) for i, t0 in enumerate(self._sample_starts(rng, day, lo, hi))]
        if t.live_rate > 0:
            first_minute = max(lo, -(-t.live_start // 60) * 60)
            for minute in range(first_minute, hi, 60):
                # One RNG per wall-clock minute: the live stream is a pure function of seed and minute.
                bucket = random.Random(f"{self.seed}:live:{minute}")
                calls += [
                    (minute + bucket.randrange(60), 1, minute + j, bucket)
                    for j in range(poisson(bucket, t.live_rate))
                ]
        calls.sort(key=lambda c: (c[0], c[1], c[2]))
        counter = ChannelCounter((day - self.first_day).days * CHANNELS_PER_DAY)
        legs: list[Leg] = []
        for t0, _, _, rng in calls:
            legs += self.factory.make(rng, t0, counter, len(legs))
        for scenario in self.factory.tenant.fraud:
            if scenario.day == day:
                legs += number_legs(fraud_legs(self.factory.tenant, scenario, counter, self.seed), len(legs))
        for leg in legs:
            leg.start_wall = wall_seconds(leg.start, self.zone)
        return legs

    def _sample_starts(self, rng: random.Random, day: date, lo: int, hi: int) -> list[int]:
        """Call start epochs for one history day, following ``HOUR_WEIGHTS`` in local time."""
        factor = self.weekend_factor if day.weekday() >= 5 else 1.0
        jitter = rng.uniform(1 - DAY_VOLUME_JITTER, 1 + DAY_VOLUME_JITTER)
        count = round(self.calls_per_day * factor * jitter)
        if count <= 0:
            return []
        # Hour-long slots in UTC; a fall-back day has 25 of them, a spring-forward day 23.
        slots = list(range(lo, hi, 3600))
        hours = [datetime.fromtimestamp(s, self.zone).hour for s in slots]
        picks = rng.choices(range(len(slots)), [HOUR_WEIGHTS[h] for h in hours], k=count)
        repeats = Counter(hours)
        picks += [i for i, h in enumerate(hours) if repeats[h] > 1 for _ in range(MIN_CALLS_REPEATED_HOUR)]
        return sorted(slots[i] + rng.randrange(min(3600, hi - slots[i])) for i in picks)

    # --- indexing ---------------------------------------------------------------------------------
    def end_day(self, day: date) -> EndDay:
        """Legs ending on local ``day``, numbered (cached)."""
        return self._ends.get(day, lambda: self._index(day))

    def _index(self, day: date) -> EndDay:
        lo, hi = self.day_bounds(day)
        legs = [leg for d in (day - timedelta(days=1), day) for leg in self.raw_day(d) if lo <= leg.end < hi]
        legs.sort(key=lambda leg: (leg.end, leg.start, leg.seq))
        if len(legs) >= ACCT_BLOCK - 1:
            raise ValueError(f"{day}: {len(legs)} legs do not fit one AcctId block; lower calls_per_day")
        base = (day - self.first_day).days * ACCT_BLOCK
        index = EndDay(legs, [leg.end for leg in legs])
        for rank, leg in enumerate(legs, start=1):
            leg.acct = base + rank
            for path in leg.recordings:
                index.recordings.setdefault(path.rsplit("/", 1)[-1], leg)
        return index

    # --- lookups ----------------------------------------------------------------------------------
    def days(self, first: date, last: date, now: float) -> list[date]:
        """End days within ``first``..``last`` that can hold legs visible at ``now``."""
        first = max(first, self.first_day)
        last = min(last, self.local_date(now))
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def visible(self, first: date, last: date, now: float) -> list[Leg]:
        """Legs ending on local days ``first``..``last`` that have ended by ``now``, by AcctId."""
        out: list[Leg] = []
        for day in self.days(first, last, now):
            out += self.end_day(day).visible(now)
        return out

    def visible_signature(self, first: date, last: date, now: float) -> tuple[int, ...]:
        """Identifies the set of legs :meth:`visible` would return (same signature = same legs).

        Days that ended before ``now`` are entirely visible, so only the current day's index is
        consulted; nothing old is regenerated just to compute the signature.
        """
        days = self.days(first, last, now)
        if not days:
            return ()
        partial = [d for d in days if self.day_bounds(d)[1] > now]
        counts = (bisect_right(self.end_day(d).ends, now) for d in partial)
        return (days[0].toordinal(), days[-1].toordinal(), *counts)

    def by_acct(self, acct: int, now: float) -> Leg | None:
        """The visible leg with this AcctId, if any."""
        offset, rank = divmod(acct, ACCT_BLOCK)
        if acct <= 0 or rank == 0:
            return None
        day = self.first_day + timedelta(days=offset)
        if day > self.local_date(now):
            return None
        legs = self.end_day(day).legs
        leg = legs[rank - 1] if rank <= len(legs) else None
        return leg if leg is not None and leg.end <= now else None

    def by_recording(self, basename: str, now: float) -> Leg | None:
        """The visible leg owning the recording file ``basename``, if any."""
        found = _RECORDING_EPOCH.match(basename)
        if not found:
            return None
        epoch = int(found.group(1))
        first = self.local_date(epoch)
        # The file is named after the leg start (or a resume within it), so the leg ends soon after.
        last = min(self.local_date(epoch + self.max_call_seconds + 3600), self.local_date(now))
        day = max(first, self.first_day)
        while day <= last:
            leg = self.end_day(day).recordings.get(basename)
            if leg is not None and leg.end <= now:
                return leg
            day += timedelta(days=1)
        return None
