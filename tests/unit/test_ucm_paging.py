"""cdrapi paging: offsets, termination rules, repeated pages, page cap, query parameters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from audiapro.ucm.errors import UcmConfigError, UcmPageCapExceeded, UcmPagingError
from tests.unit.fakepbx_support import FakePbx, flat_leg, make_client

START = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def grouped(first_acct: int, legs: int) -> dict[str, Any]:
    item: dict[str, Any] = {"cdr": "", "main_cdr": {"AcctId": "", "src": "555", "disposition": ""}}
    for n in range(legs):
        item[f"sub_cdr_{n + 1}"] = flat_leg(first_acct + n)
    return item


def acct_ids(legs: list[dict[str, str]]) -> list[int]:
    return [int(leg["AcctId"]) for leg in legs]


def test_pages_until_empty_page() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(25)]
    client, _ = make_client(pbx, page_size=10)
    pages = list(client.iter_cdr_pages(START, END))
    assert [p.offset for p in pages] == [0, 10, 20]
    assert [p.item_count for p in pages] == [10, 10, 5]
    # The short last page is not the end; the empty page is, once re-requests confirm it.
    assert pbx.cdr_offsets() == [0, 10, 20, 25, 25, 25]
    assert acct_ids([leg for p in pages for leg in p.legs]) == list(range(25))


def test_query_parameters_are_local_and_validated() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx, page_size=500)
    client.fetch_cdrs(START, END)
    query = next(r for r in pbx.requests if r["action"] == "cdrapi")
    assert {k: v for k, v in query.items() if k != "cookie"} == {
        "action": "cdrapi",
        "format": "json",
        "numRecords": "500",
        "offset": "0",
        "startTime": "2026-03-01T09:00:00",  # America/New_York, EST
        "endTime": "2026-03-01T10:00:00",
        "timeFilterType": "Start",
    }


def test_time_filter_override_and_omission() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx)
    client.fetch_cdrs(START, END, time_filter="End")
    assert pbx.requests[-1]["timeFilterType"] == "End"
    pbx2 = FakePbx()
    client2, _ = make_client(pbx2, send_time_filter_type=False, numbers_as_strings=False)
    client2.fetch_cdrs(START, END)
    assert "timeFilterType" not in pbx2.requests[-1] and pbx2.requests[-1]["numRecords"] == 1000
    with pytest.raises(UcmConfigError):
        client2.fetch_cdrs(START, END, time_filter="End")
    with pytest.raises(UcmConfigError):
        client.fetch_cdrs(START, END, time_filter="start")


def test_naive_window_rejected_before_any_request() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx)
    with pytest.raises(UcmConfigError):
        client.fetch_cdrs(datetime(2026, 3, 1), END)
    assert pbx.requests == []


def test_short_page_mid_stream_continues() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(30)]

    def short_page(req: dict[str, Any]) -> dict[str, Any]:
        return {"cdr_root": pbx.items[int(req["offset"]) : int(req["offset"]) + 4]}

    pbx.script("cdrapi", short_page)
    client, _ = make_client(pbx, page_size=10)
    legs = client.fetch_cdrs(START, END)
    assert acct_ids(legs) == list(range(30))
    assert pbx.cdr_offsets() == [0, 4, 14, 24, 30, 30, 30]


def test_empty_first_page_logs_zero_rows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="audiapro.ucm")
    pbx = FakePbx()
    client, _ = make_client(pbx)
    assert client.fetch_cdrs(START, END) == []
    assert "zero rows" in caplog.text


def test_repeated_page_rerequested_then_recovers() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(20)]
    first = {"cdr_root": pbx.items[:10]}
    pbx.script("cdrapi", first, first)  # offset 10 answered with page 0 again
    client, sleeps = make_client(pbx, page_size=10)
    legs = client.fetch_cdrs(START, END)
    assert acct_ids(legs) == list(range(20))
    assert pbx.cdr_offsets() == [0, 10, 10, 20, 20, 20]
    assert len(sleeps) == 1


def test_persistent_repeated_page_raises() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(20)]
    first = {"cdr_root": pbx.items[:10]}
    pbx.script("cdrapi", *[first] * 10)
    client, _ = make_client(pbx, page_size=10, repeated_page_retries=2)
    with pytest.raises(UcmPagingError, match="offset 10"):
        client.fetch_cdrs(START, END)
    assert pbx.cdr_offsets() == [0, 10, 10, 10]


def test_page_cap_raises() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(35)]
    client, _ = make_client(pbx, page_size=10, max_pages=3)
    with pytest.raises(UcmPageCapExceeded) as info:
        client.fetch_cdrs(START, END)
    assert info.value.pages == 3 and info.value.offset == 30


def test_page_cap_exact_fit_is_fine() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(30)]
    client, _ = make_client(pbx, page_size=10, max_pages=3)
    assert len(client.fetch_cdrs(START, END)) == 30


def test_items_counting_advances_by_items_with_groups() -> None:
    pbx = FakePbx()
    pbx.items = [grouped(100 * i, 3) for i in range(5)]
    client, _ = make_client(pbx, page_size=2)
    pages = list(client.iter_cdr_pages(START, END))
    assert [p.offset for p in pages] == [0, 2, 4]
    assert [len(p.legs) for p in pages] == [6, 6, 3]
    assert len({leg["AcctId"] for p in pages for leg in p.legs}) == 15


def test_legs_counting_advances_by_legs() -> None:
    legs_flat = [flat_leg(i) for i in range(12)]
    pbx = FakePbx()

    def by_legs(req: dict[str, Any]) -> httpx.Response:
        offset, size = int(req["offset"]), int(req["numRecords"])
        chunk = legs_flat[offset : offset + size]
        # Groups of 3 legs in one item, as a PBX counting legs might render them.
        items = []
        for i in range(0, len(chunk), 3):
            item: dict[str, Any] = {"cdr": "", "main_cdr": {}}
            for n, leg in enumerate(chunk[i : i + 3]):
                item[f"sub_cdr_{n + 1}"] = leg
            items.append(item)
        return httpx.Response(200, json={"cdr_root": items})

    pbx.script("cdrapi", *[by_legs] * 10)
    client, _ = make_client(pbx, page_size=6, page_counting="legs")
    legs = client.fetch_cdrs(START, END)
    assert acct_ids(legs) == list(range(12))
    assert pbx.cdr_offsets() == [0, 6, 12, 12, 12]


def test_overlapping_pages_deduplicated_by_acct_id() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(10)]
    pbx.script("cdrapi", {"cdr_root": pbx.items[:6]}, {"cdr_root": pbx.items[4:10]}, {"cdr_root": []})
    client, _ = make_client(pbx, page_size=6)
    assert acct_ids(client.fetch_cdrs(START, END)) == list(range(10))


def test_alternative_reply_shapes() -> None:
    pbx = FakePbx()
    pbx.script(
        "cdrapi",
        {"response": {"cdr_root": [flat_leg(1)]}, "status": 0},
        {"cdr": [flat_leg(2)]},
        {"cdr_root": []},
    )
    client, _ = make_client(pbx, page_size=1)
    assert acct_ids(client.fetch_cdrs(START, END)) == [1, 2]


def test_malformed_items_reported_with_position(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="audiapro.ucm")
    pbx = FakePbx()
    pbx.items = [flat_leg(1), "garbage", flat_leg(2), None]
    client, _ = make_client(pbx)
    (page,) = list(client.iter_cdr_pages(START, END))
    assert [(m.position, m.value) for m in page.malformed] == [(1, "garbage"), (3, None)]
    assert page.item_count == 4 and len(page.legs) == 2
    legs = client.fetch_cdrs(START, END)
    assert len(legs) == 2
    assert "malformed" in caplog.text and "[1, 3]" in caplog.text


def test_session_expiry_mid_paging_rerequests_same_offset() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(30)]
    served = {"n": 0}

    def expire_after_first(req: dict[str, Any]) -> httpx.Response:
        served["n"] += 1
        pbx.expire_sessions()
        return pbx.on_cdrapi(req)

    client, _ = make_client(pbx, page_size=10)
    client.login()
    pbx.script("cdrapi", pbx.on_cdrapi, expire_after_first)
    legs = client.fetch_cdrs(START, END)
    assert acct_ids(legs) == list(range(30))
    assert pbx.count("login") == 2


def test_stale_empty_reply_does_not_end_window() -> None:
    # A PBX replaying the previous window's final (empty) reply must not make this window look empty.
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(5)]
    pbx.script("cdrapi", {"cdr_root": []})
    client, _ = make_client(pbx)
    assert acct_ids(client.fetch_cdrs(START, END)) == list(range(5))
    assert pbx.cdr_offsets() == [0, 0, 5, 5, 5]


def test_empty_page_confirmations_configurable() -> None:
    pbx = FakePbx()
    client, _ = make_client(pbx, empty_page_confirmations=0)
    client.fetch_cdrs(START, END)
    assert pbx.cdr_offsets() == [0]
    pbx2 = FakePbx()
    client2, _ = make_client(pbx2, empty_page_confirmations=3)
    client2.fetch_cdrs(START, END)
    assert pbx2.cdr_offsets() == [0, 0, 0, 0]


def past_end_repeats_last_page(pbx: FakePbx, page_size: int) -> Any:
    """A cdrapi handler for firmware that answers an offset past the end with its last page again."""

    def reply(req: dict[str, Any]) -> dict[str, Any]:
        offset = int(req["offset"])
        if offset >= len(pbx.items) and pbx.items:
            offset = (len(pbx.items) - 1) // page_size * page_size
        return {"cdr_root": pbx.items[offset : offset + page_size]}

    return reply


def test_repeated_short_last_page_ends_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="audiapro.ucm")
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(25)]
    pbx.script("cdrapi", *[past_end_repeats_last_page(pbx, 10)] * 20)
    client, sleeps = make_client(pbx, page_size=10)
    pages = list(client.iter_cdr_pages(START, END))
    assert acct_ids([leg for p in pages for leg in p.legs]) == list(range(25))
    # Offset 25 answers the 5-item page of offset 20 again: re-requested twice to confirm, then done.
    assert pbx.cdr_offsets() == [0, 10, 20, 25, 25, 25]
    assert "previous short page again" in caplog.text and sleeps == []


def test_repeated_page_shortness_counted_in_legs() -> None:
    # With leg counting, two grouped items of 3 legs fill a 6-record page: repeated, that is no end.
    items = [grouped(100 * i, 3) for i in range(3)]
    pbx = FakePbx()
    pbx.script("cdrapi", *[{"cdr_root": items[:2]}] * 10)
    client, _ = make_client(pbx, page_size=6, page_counting="legs", repeated_page_retries=2)
    with pytest.raises(UcmPagingError):
        client.fetch_cdrs(START, END)
    # One item (3 legs) of 6 is short: repeated, it ends the window.
    pbx = FakePbx()
    pbx.script("cdrapi", {"cdr_root": items[:2]}, *[{"cdr_root": items[2:]}] * 10)
    client, _ = make_client(pbx, page_size=6, page_counting="legs")
    assert len(client.fetch_cdrs(START, END)) == 9
    assert pbx.cdr_offsets() == [0, 6, 9, 9, 9]


def test_repeated_full_page_past_end_still_raises() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(20)]
    pbx.script("cdrapi", *[past_end_repeats_last_page(pbx, 10)] * 20)
    client, _ = make_client(pbx, page_size=10, repeated_page_retries=2)
    with pytest.raises(UcmPagingError, match="offset 20"):
        client.fetch_cdrs(START, END)
    assert pbx.cdr_offsets() == [0, 10, 20, 20, 20]


def test_stale_replay_of_a_short_page_mid_stream_is_not_the_end() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(i) for i in range(12)]
    short = {"cdr_root": pbx.items[:4]}
    # Offset 0 gets a short page; offset 4 first gets that reply replayed, then the real page.
    pbx.script("cdrapi", short, short)
    client, _ = make_client(pbx, page_size=10)
    assert acct_ids(client.fetch_cdrs(START, END)) == list(range(12))
    assert pbx.cdr_offsets() == [0, 4, 4, 12, 12, 12]


def test_malformed_items_carry_page_offset_and_record_number() -> None:
    pbx = FakePbx()
    pbx.items = [flat_leg(1), flat_leg(2), "garbage", {"cdr": "", "main_cdr": {"AcctId": ""}}]
    client, _ = make_client(pbx, page_size=2)
    pages = list(client.iter_cdr_pages(START, END))
    bad = [item for page in pages for item in page.malformed]
    assert [(m.offset, m.position, m.record_number, m.reason) for m in bad] == [
        (2, 0, 3, "item is not an object"),
        (2, 1, 4, "grouped call without sub_cdr legs"),
    ]
