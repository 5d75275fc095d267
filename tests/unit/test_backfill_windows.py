"""Backfill planning without a database: ranges in the tenant's zone, windows, coverage, page-cap splits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audiapro.backfill import MAX_WINDOWS, merge_intervals, resolve_range, split_range, uncovered
from audiapro.ucm.errors import UcmPageCapExceeded
from audiapro.ucm.records import CdrPage
from audiapro.windows import PieceRead, Window, fetch_pieces, read_in_pieces

NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def assert_contiguous(windows: list[Window], span: Window) -> None:
    assert windows[0].start == span.start and windows[-1].end == span.end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start  # shared boundary second: no gap, no double coverage beyond it
        assert before.start < before.end


def test_dates_are_whole_local_days_and_end_is_inclusive() -> None:
    span = resolve_range(date(2026, 3, 1), date(2026, 3, 1), NY)
    assert span == Window(utc(2026, 3, 1, 5), utc(2026, 3, 2, 5))
    span = resolve_range(date(2026, 1, 1), date(2026, 1, 31), "Europe/London")
    assert span == Window(utc(2026, 1, 1), utc(2026, 2, 1))


def test_datetimes_are_local_unless_aware_and_lose_sub_seconds() -> None:
    naive = resolve_range(datetime(2026, 3, 1, 9, 30, 0, 999), datetime(2026, 3, 1, 17), NY)
    assert naive == Window(utc(2026, 3, 1, 14, 30), utc(2026, 3, 1, 22))
    aware = resolve_range(utc(2026, 3, 1, 9), datetime(2026, 3, 1, 12, tzinfo=ZoneInfo(NY)), NY)
    assert aware == Window(utc(2026, 3, 1, 9), utc(2026, 3, 1, 17))


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="after start"):
        resolve_range(date(2026, 3, 2), datetime(2026, 3, 1, 12), NY)


@pytest.mark.parametrize(
    ("first", "last", "long_day", "hours"),
    [(date(2026, 3, 6), date(2026, 3, 10), 2, 23), (date(2026, 10, 30), date(2026, 11, 3), 2, 25)],
    ids=["spring-forward", "fall-back"],
)
def test_day_windows_run_midnight_to_midnight_across_dst(
    first: date, last: date, long_day: int, hours: int
) -> None:
    span = resolve_range(first, last, NY)
    windows = split_range(span, timedelta(days=1), NY)
    assert len(windows) == 5
    assert_contiguous(windows, span)
    local_starts = {w.start.astimezone(ZoneInfo(NY)).time() for w in windows}
    assert local_starts == {datetime.min.time()}
    assert windows[long_day].span == timedelta(hours=hours)


def test_hour_windows_across_the_spring_gap_are_never_empty() -> None:
    span = resolve_range(datetime(2026, 3, 8, 0), datetime(2026, 3, 8, 5), NY)
    windows = split_range(span, timedelta(hours=1), NY)
    assert_contiguous(windows, span)
    assert [w.span for w in windows] == [timedelta(hours=1)] * 4  # 02:00 local does not exist
    assert span.span == timedelta(hours=4)


def test_last_window_is_cut_at_the_range_end() -> None:
    span = Window(utc(2026, 3, 1), utc(2026, 3, 1, 10))
    windows = split_range(span, timedelta(hours=4), "UTC")
    assert [w.span for w in windows] == [timedelta(hours=4), timedelta(hours=4), timedelta(hours=2)]


def test_window_size_limits() -> None:
    span = Window(utc(2020, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="at least"):
        split_range(span, timedelta(seconds=30), "UTC")
    with pytest.raises(ValueError, match=str(MAX_WINDOWS)):
        split_range(span, timedelta(minutes=1), "UTC")


def test_halves_split_on_a_whole_second() -> None:
    first, second = Window(utc(2026, 3, 1), utc(2026, 3, 1, 0, 0, 3)).halves()
    assert first.end == second.start == utc(2026, 3, 1, 0, 0, 1) and first.end.microsecond == 0
    with pytest.raises(ValueError, match="too short"):
        Window(utc(2026, 3, 1), utc(2026, 3, 1, 0, 0, 1)).halves()


def test_windows_must_be_aware_and_non_empty() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        Window(datetime(2026, 3, 1), utc(2026, 3, 2))
    with pytest.raises(ValueError, match="empty"):
        Window(utc(2026, 3, 2), utc(2026, 3, 2))


def test_merge_joins_touching_and_overlapping_intervals() -> None:
    merged = merge_intervals(
        [
            (utc(2026, 3, 2), utc(2026, 3, 3)),
            (utc(2026, 3, 1), utc(2026, 3, 2)),
            (utc(2026, 3, 5), utc(2026, 3, 6)),
            (utc(2026, 3, 5, 12), utc(2026, 3, 5, 13)),
        ]
    )
    assert merged == [(utc(2026, 3, 1), utc(2026, 3, 3)), (utc(2026, 3, 5), utc(2026, 3, 6))]


def test_uncovered_returns_only_the_gaps() -> None:
    window = Window(utc(2026, 3, 1), utc(2026, 3, 2))
    assert uncovered(window, []) == [window]
    assert uncovered(window, [(utc(2026, 2, 1), utc(2026, 3, 3))]) == []
    done = merge_intervals(
        [(utc(2026, 3, 1), utc(2026, 3, 1, 6)), (utc(2026, 3, 1, 12), utc(2026, 3, 1, 18))]
    )
    assert uncovered(window, done) == [
        Window(utc(2026, 3, 1, 6), utc(2026, 3, 1, 12)),
        Window(utc(2026, 3, 1, 18), utc(2026, 3, 2)),
    ]
    # Intervals entirely before or after the window do not matter.
    far = [(utc(2026, 1, 1), utc(2026, 1, 2)), (utc(2026, 4, 1), utc(2026, 4, 2))]
    assert uncovered(window, far) == [window]


class DenseSource:
    """Raises the page cap for any window longer than ``max_span``; records what was fetched."""

    def __init__(self, max_span: timedelta) -> None:
        self.max_span = max_span
        self.fetched: list[Window] = []
        self.attempts = 0

    def iter_cdr_pages(
        self, start_utc: datetime, end_utc: datetime, *, time_filter: str | None = None
    ) -> Iterator[CdrPage]:
        self.attempts += 1
        if end_utc - start_utc > self.max_span:
            raise UcmPageCapExceeded("too many pages", pages=3, offset=3000)
        self.fetched.append(Window(start_utc, end_utc))
        yield CdrPage(offset=0, legs=[{"uniqueid": start_utc.isoformat()}], item_count=1)


def test_page_capped_windows_are_split_until_they_fit_in_time_order() -> None:
    window = Window(utc(2026, 3, 1), utc(2026, 3, 2))
    source = DenseSource(max_span=timedelta(hours=5))
    pieces = [piece for piece, _legs in fetch_pieces(source, window)]
    assert pieces == source.fetched
    assert_contiguous(pieces, window)
    assert all(piece.span == timedelta(hours=3) for piece in pieces)  # 24 h halved three times


def test_a_piece_that_cannot_be_split_further_raises() -> None:
    source = DenseSource(max_span=timedelta(seconds=10))
    with pytest.raises(UcmPageCapExceeded):
        list(fetch_pieces(source, Window(utc(2026, 3, 1), utc(2026, 3, 1, 1)), min_span=timedelta(minutes=5)))


def test_a_streamed_read_marks_each_piece_done_or_abandoned_for_its_halves() -> None:
    """The backfill streams pages: the pages of an overflowing piece already came out before the cap,
    so its end is marked ``split`` (the halves re-read them) and every finished piece is marked done."""

    def pages(piece: Window) -> Iterator[str]:
        yield f"{piece.start:%H}h page 1"
        if piece.span > timedelta(hours=6):
            raise UcmPageCapExceeded("too many pages", pages=2, offset=1000)
        yield f"{piece.start:%H}h page 2"

    day = Window(utc(2026, 3, 1), utc(2026, 3, 1, 12))
    first, second = day.halves()
    assert list(read_in_pieces(day, pages)) == [
        PieceRead(day, "00h page 1"),
        PieceRead(day, split=True),
        PieceRead(first, "00h page 1"),
        PieceRead(first, "00h page 2"),
        PieceRead(first),
        PieceRead(second, "06h page 1"),
        PieceRead(second, "06h page 2"),
        PieceRead(second),
    ]


# --- checked before a backfill starts, and its estimate ------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "window", "parallel", "expected"),
    [
        (date(2026, 1, 5), date(2026, 1, 1), timedelta(days=1), 2, "end 2026-01-01 is before start"),
        (datetime(2026, 1, 5, 10), date(2026, 1, 4), timedelta(days=1), 2, "is before start"),
        (date(2026, 1, 1), date(2026, 1, 2), timedelta(seconds=30), 2, "shorter than 0:01:00"),
        (date(2026, 1, 1), date(2026, 1, 2), timedelta(days=1), 0, "parallel 0 is not 1..4"),
        (date(2026, 1, 1), date(2026, 1, 2), timedelta(days=1), 5, "parallel 5 is not 1..4"),
    ],
)
def test_check_request_refuses_what_no_tenant_could_run(
    start: date, end: date, window: timedelta, parallel: int, expected: str
) -> None:
    from audiapro.backfill import check_request

    with pytest.raises(ValueError, match=expected):
        check_request(start, end, window, parallel)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 1), date(2026, 1, 1)),  # one whole day
        (datetime(2026, 1, 1, 9), date(2026, 1, 1)),  # from 09:00 to the end of that day
        (datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 8)),  # mixed: the tenant's zone decides
    ],
)
def test_check_request_lets_through_what_a_tenant_may_run(start: date, end: date) -> None:
    from audiapro.backfill import check_request

    check_request(start, end, timedelta(days=1), 2)


def test_the_estimate_counts_pages_from_the_stored_traffic_and_says_how() -> None:
    from audiapro.backfill import BackfillPlan, estimate_backfill

    span = Window(utc(2026, 1, 1), utc(2026, 1, 11))
    plan = BackfillPlan(span, split_range(span, timedelta(days=1), "UTC"), 10, 0, utc(2026, 2, 1))
    busy = estimate_backfill(plan, legs_per_day=2500.0, max_parallel=2)
    # 2,500 legs a day: 3 pages of 1,000 + login (2) + the empty last page, per window.
    assert (busy.windows, busy.legs, busy.requests) == (10, 25_000, 60)
    assert busy.seconds == pytest.approx(60 * 1.0 / 2 + 25_000 / 5000)
    assert busy.basis.startswith("2,500 legs a day as stored so far, 1 s per PBX request, 2 windows at once")
    unknown = estimate_backfill(plan, legs_per_day=None, max_parallel=1)
    assert (unknown.legs, unknown.requests) == (0, 30) and unknown.basis.startswith("no calls stored yet")
