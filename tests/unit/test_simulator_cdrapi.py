"""UCM simulator cdrapi: shapes, strings, paging to the empty page, filters, silent empties, visibility."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from audiapro.ucm.simulator import UcmSimulator
from tests.unit.simulator_support import Session, item_legs, simulator

TZ = ZoneInfo("America/New_York")
WINDOW = {"startTime": "2026-03-02T00:00:00", "endTime": "2026-03-03T23:59:59"}


def make_sim(**overrides: Any) -> UcmSimulator:
    """Two busy days (``overrides`` change any setting)."""
    return simulator(**{"seed": 11, "calls_per_day": 200, "days": 2, **overrides})


@pytest.fixture(scope="module")
def sim() -> UcmSimulator:
    return make_sim()


def test_paging_covers_ground_truth_exactly(sim: UcmSimulator, session: Session) -> None:
    truth = sim.ground_truth()
    assert len(truth) > 500
    legs, pages = session.all_pages(size=100, **WINDOW)
    ids = [leg["AcctId"] for leg in legs]
    assert len(ids) == len(set(ids)), "duplicate legs across pages"
    assert sorted(ids, key=int) == [leg["AcctId"] for leg in truth]
    by_id = {leg["AcctId"]: leg for leg in truth}
    assert all(leg == by_id[leg["AcctId"]] for leg in legs)
    assert pages > 3


def test_page_unit_legs_splits_calls_but_loses_nothing() -> None:
    sim = make_sim(page_unit="legs", days=1)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        s = Session(client)
        legs, offset = [], 0
        while items := s.cdr(numRecords=7, offset=offset):
            page = [leg for item in items for leg in item_legs(item)]
            assert len(page) <= 7
            legs += page
            offset += len(page)
    assert sorted(leg["AcctId"] for leg in legs) == sorted(leg["AcctId"] for leg in sim.ground_truth())


def test_flat_and_grouped_shapes_all_strings(session: Session) -> None:
    items = session.cdr(numRecords=1000, **WINDOW)
    flat = [i for i in items if "main_cdr" not in i]
    grouped = [i for i in items if "main_cdr" in i]
    assert flat and grouped
    for item in flat:
        assert item["cdr"] == "" and item["AcctId"].isdigit() and len(item) == 44
    for item in grouped:
        assert item["cdr"] == ""
        main = item["main_cdr"]
        assert main["AcctId"] == "" and main["disposition"] == "" and main["recordfiles"] == ""
        assert all(main[k] for k in ("src", "dst", "start", "duration", "billsec", "session", "action_type"))
        subs = item_legs(item)
        assert len(subs) >= 2 and len(item) == 2 + len(subs)
        assert {leg["session"] for leg in subs} == {main["session"]}
        assert all(leg["AcctId"].isdigit() and len(leg) == 43 for leg in subs)

    def walk(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        else:
            yield value

    assert all(isinstance(v, str) for item in items for v in walk(item))
    assert max(len(item_legs(i)) for i in grouped) >= 4  # ring groups / queues
    # Ring-group calls: one ANSWERED member, others NO ANSWER, same uniqueid and channel.
    ring = next(
        item_legs(i)
        for i in grouped
        if i["main_cdr"]["action_type"].startswith("RINGGROUP")
        and any(leg["disposition"] == "ANSWERED" for leg in item_legs(i))
        and all(leg["lastapp"] == "Dial" for leg in item_legs(i))
    )
    assert len({leg["uniqueid"] for leg in ring}) == 1 and len({leg["channel"] for leg in ring}) == 1
    assert sum(leg["disposition"] == "ANSWERED" for leg in ring) == 1


def test_order_start_then_acctid(session: Session) -> None:
    items = session.cdr(numRecords=1000, **WINDOW)
    keys = [min((leg["start"], int(leg["AcctId"])) for leg in item_legs(i)) for i in items]
    assert keys == sorted(keys)


def test_order_by_acctid_option() -> None:
    sim = make_sim(order_by="acctid", days=1)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        items = Session(client).cdr(numRecords=1000)
    firsts = [int(item_legs(i)[0]["AcctId"]) for i in items]
    assert firsts == sorted(firsts)


def test_32_field_schema() -> None:
    sim = make_sim(schema_fields=32, days=1)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        items = Session(client).cdr(numRecords=50)
    leg = item_legs(items[0])[0]
    assert len(leg) == 32 and "session" in leg and "recordfiles_desc" not in leg


def test_num_records_clamped_and_paging_params_as_ints(session: Session) -> None:
    assert len(session.cdr(numRecords=5000, **WINDOW)) <= 1000
    assert len(session.cdr(numRecords=3, offset=2, **WINDOW)) == 3
    assert session.cdr(numRecords=3, offset="2", **WINDOW) == session.cdr(numRecords="3", offset=2, **WINDOW)


@pytest.mark.parametrize(
    "params",
    [
        {"startdate": "2026-03-02T00:00:00"},  # unknown parameter
        {"startTime": "2026-03-02 00:00:00"},  # missing T
        {"startTime": "2026-03-02"},
        {"startTime": "2026-13-02T00:00:00"},
        {"numRecords": "ten"},
        {"offset": "-1"},
        {"caller": ""},
        {"caller": ",1000"},
        {"caller": "1000,,1001"},
        {"caller": "1000-1001-1002"},
        {"caller": "1000;1001"},
        {"minDur": "1.5"},
        {"timeFilterType": "Middle"},
        {"format": "xml"},
        {"caller": ["1000"]},
    ],
)
def test_bad_params_return_empty_silently(session: Session, params: dict[str, Any]) -> None:
    assert session.cdr(**params) == []


def test_num_records_above_limit_can_be_rejected() -> None:
    sim = make_sim(clamp_num_records=False, days=1)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        assert Session(client).cdr(numRecords=1001) == []


def _legs(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [leg for item in items for leg in item_legs(item)]


def test_time_window_inclusive_on_local_start(sim: UcmSimulator, session: Session) -> None:
    truth = sim.ground_truth()
    probe = truth[len(truth) // 2]["start"]
    at = probe.replace(" ", "T")
    legs = _legs(session.cdr(startTime=at, endTime=at))
    assert legs and all(leg["start"] == probe for leg in legs)
    # Minute precision and a W3C offset designate the same local window.
    local = datetime.strptime(probe, "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)
    minute = local.strftime("%Y-%m-%dT%H:%M")
    by_minute = _legs(session.cdr(startTime=minute, endTime=minute + ":59"))
    utc_text = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"
    by_offset = _legs(session.cdr(startTime=utc_text, endTime=utc_text))
    assert {leg["AcctId"] for leg in legs} <= {leg["AcctId"] for leg in by_minute}
    assert {leg["AcctId"] for leg in by_offset} == {leg["AcctId"] for leg in legs}
    epoch = str(int(local.timestamp()))
    assert {leg["AcctId"] for leg in _legs(session.cdr(startTime=epoch, endTime=epoch))} == {
        leg["AcctId"] for leg in legs
    }


def test_time_filter_type_end(sim: UcmSimulator, session: Session) -> None:
    window = {"startTime": "2026-03-02T10:00:00", "endTime": "2026-03-02T11:00:00"}
    by_end = _legs(session.cdr(timeFilterType="End", numRecords=1000, **window))
    assert by_end and all("2026-03-02 10:00:00" <= leg["end"] <= "2026-03-02 11:00:00" for leg in by_end)
    expected = [
        leg for leg in sim.ground_truth() if "2026-03-02 10:00:00" <= leg["end"] <= "2026-03-02 11:00:00"
    ]
    assert {leg["AcctId"] for leg in by_end} == {leg["AcctId"] for leg in expected}
    by_start = _legs(session.cdr(timeFilterType="Start", numRecords=1000, **window))
    assert {leg["AcctId"] for leg in by_start} != {leg["AcctId"] for leg in by_end}


def _in_range(value: str, low: int, high: int) -> bool:
    return value.isdigit() and low <= int(value) <= high


def test_caller_callee_answeredby_patterns(sim: UcmSimulator, session: Session) -> None:
    truth = sim.ground_truth()
    member = next(leg["dstanswer"] for leg in truth if leg["dstanswer"].startswith("10"))
    cases: list[tuple[dict[str, str], Any]] = [
        ({"caller": "1000-1009"}, lambda leg: _in_range(leg["src"], 1000, 1009)),
        ({"caller": "1003,1005"}, lambda leg: leg["src"] in ("1003", "1005")),
        ({"callee": "64@"}, lambda leg: leg["dst"].startswith("64")),
        ({"callee": "10_5"}, lambda leg: len(leg["dst"]) == 4 and leg["dst"][:2] + leg["dst"][3] == "105"),
        ({"caller": "0-0"}, lambda leg: not leg["src"].isdigit()),
        ({"answeredby": member}, lambda leg: leg["dstanswer"] == member),
        (
            {"caller": "1000-1039", "callee": "1000-1039"},
            lambda leg: _in_range(leg["src"], 1000, 1039) and _in_range(leg["dst"], 1000, 1039),
        ),
    ]
    for params, predicate in cases:
        served = {leg["AcctId"] for leg in _legs(session.cdr(numRecords=1000, **params))}
        expected = {leg["AcctId"] for leg in truth if predicate(leg)}
        assert served == expected and expected, params


def test_min_max_duration_on_billsec(sim: UcmSimulator, session: Session) -> None:
    legs = _legs(session.cdr(numRecords=1000, minDur="60", maxDur=120, **WINDOW))
    assert legs and all(60 <= int(leg["billsec"]) <= 120 for leg in legs)
    expected = [leg for leg in sim.ground_truth() if 60 <= int(leg["billsec"]) <= 120]
    assert len(legs) == len(expected)


def test_only_ended_legs_are_visible_and_groups_fill_in() -> None:
    sim = make_sim(days=1)
    truth = sim.ground_truth()
    group = next(
        legs
        for session_id in {leg["session"] for leg in truth}
        if len(legs := [leg for leg in truth if leg["session"] == session_id]) >= 3
        and len({leg["end"] for leg in legs}) >= 2
    )
    # Local end strings -> instants (no DST change that day), then stop between the first two ends.
    ends = sorted(datetime.strptime(leg["end"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ) for leg in group)
    cut = next(e for e in ends if e > ends[0]) - timedelta(seconds=1)
    sim.clock.set(cut)
    visible = {leg["AcctId"] for leg in sim.ground_truth()}
    seen = {leg["AcctId"] for leg in group} & visible
    assert 0 < len(seen) < len(group)
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        s = Session(client)
        served = {leg["AcctId"] for leg in _legs(s.cdr(numRecords=1000))}
        assert served == visible
        sim.clock.advance(7200)  # the session idles out meanwhile: log in again
        later = {leg["AcctId"] for leg in _legs(Session(client).cdr(numRecords=1000))}
    assert {leg["AcctId"] for leg in group} <= later


@pytest.mark.parametrize("page_unit", ["items", "legs"])
def test_past_end_repeats_last_page(page_unit: str) -> None:
    sim = make_sim(days=1, page_unit=page_unit, past_end_repeats_last_page=True)
    window = {"startTime": "2026-03-02T00:00:00", "endTime": "2026-03-02T23:59:59"}
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        s = Session(client)
        everything = s.cdr(numRecords=1000, **window)
        total = len(everything) if page_unit == "items" else sum(len(item_legs(i)) for i in everything)
        size = next(n for n in range(30, 60) if total % n)  # a short last page
        last = total // size * size
        last_page = s.cdr(numRecords=size, offset=last, **window)
        assert 0 < len(last_page) < size if page_unit == "items" else len(last_page) > 0
        for offset in (total, total + 1, total + 5 * size):
            assert s.cdr(numRecords=size, offset=offset, **window) == last_page  # same items, again
        empty_window = {"startTime": "2020-01-01T00:00:00", "endTime": "2020-01-01T23:59:59"}
        assert s.cdr(numRecords=size, offset=0, **empty_window) == []  # nothing to repeat
    plain = make_sim(days=1, page_unit=page_unit)
    with plain.serve() as base_url, httpx.Client(base_url=base_url) as client:
        assert Session(client).cdr(numRecords=size, offset=total, **window) == []  # default: empty
