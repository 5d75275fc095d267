"""Normalization: raw legs -> canonical frame, quarantine, DST, E.164, direction and leg keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.cdr.schema import LEG_COLUMN_NAMES, REJECT_COLUMNS

NY = NormalizeContext(tenant="acme", timezone="America/New_York", region="US")


def leg(**overrides: str) -> dict[str, str]:
    base = {
        "cdr": "",
        "AcctId": "1201",
        "src": "203",
        "dst": "204",
        "channel": "PJSIP/203-000004eb",
        "dstchannel": "PJSIP/204-000004ec",
        "lastapp": "Dial",
        "start": "2026-03-04 09:35:07",
        "answer": "2026-03-04 09:35:10",
        "end": "2026-03-04 09:35:38",
        "duration": "31",
        "billsec": "28",
        "disposition": "ANSWERED",
        "uniqueid": "1772634907.2651",
        "userfield": "Internal",
        "session": "1772634907767640-203",
        "recordfiles": "",
        "dstanswer": "204",
        "action_type": "DIAL",
        "src_trunk_name": "",
        "dst_trunk_name": "",
    }
    base.update(overrides)
    return base


def fall_back_leg(epoch: int, *, answered_after: int, **overrides: str) -> dict[str, str]:
    """A one-minute leg starting at 01:30 on 2026-11-01, a time New York lives twice (EDT, then EST):
    the PBX epoch of its uniqueid and session (``epoch``) decides which."""
    fields = {
        "start": "2026-11-01 01:30:00",
        "answer": f"2026-11-01 01:30:{answered_after:02d}",
        "end": "2026-11-01 01:31:00",
        "duration": "60",
        "billsec": str(60 - answered_after),
        "uniqueid": f"{epoch}.17",
        "session": f"{epoch}123456-203",
    }
    return leg(**{**fields, **overrides})


def test_frame_has_canonical_columns_and_utc_times() -> None:
    batch = normalize_legs([leg()], NY)
    assert list(batch.legs.columns) == list(LEG_COLUMN_NAMES)
    assert list(batch.rejects.columns) == list(REJECT_COLUMNS)
    row = batch.legs.iloc[0]
    # 09:35:07 EST (UTC-5) on 2026-03-04.
    assert row["start_at"] == pd.Timestamp("2026-03-04 14:35:07", tz="UTC")
    assert row["answer_at"] == pd.Timestamp("2026-03-04 14:35:10", tz="UTC")
    assert row["end_at"] == pd.Timestamp("2026-03-04 14:35:38", tz="UTC")
    assert (row["duration_s"], row["billsec_s"]) == (31, 28)
    assert row["direction"] == "internal"
    assert row["acct_id"] == "1201"
    assert json.loads(row["raw"])["AcctId"] == "1201"


@pytest.mark.parametrize(
    ("epoch_utc", "expected_utc"),
    [
        # 2026-11-01 01:30 happens twice in New York: first in EDT (05:30 UTC), then in EST (06:30 UTC).
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "2026-11-01 05:30:00"),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "2026-11-01 06:30:00"),
    ],
)
def test_ambiguous_local_time_resolved_by_the_pbx_epoch(epoch_utc: datetime, expected_utc: str) -> None:
    raw = fall_back_leg(int(epoch_utc.timestamp()), answered_after=5)
    row = normalize_legs([raw], NY).legs.iloc[0]
    assert row["start_at"] == pd.Timestamp(expected_utc, tz="UTC")
    assert row["end_at"] - row["start_at"] == pd.Timedelta(seconds=60)
    assert row["answer_at"] - row["start_at"] == pd.Timedelta(seconds=5)


def test_recording_epoch_beats_an_older_uniqueid_for_parked_calls() -> None:
    # A parked call keeps the original channel's uniqueid (an hour older); the recording name carries
    # the leg's own start epoch and decides the DST reading.
    leg_start = int(datetime(2026, 11, 1, 6, 30, tzinfo=UTC).timestamp())
    raw = fall_back_leg(
        leg_start - 3600,
        answered_after=0,
        lastapp="ParkedCall",
        uniqueid=f"{leg_start - 3600}.5",
        session=f"{leg_start - 3600}000001-203",
        recordfiles=f"2026-11/auto-{leg_start}-203-71.wav@",
    )
    row = normalize_legs([raw], NY).legs.iloc[0]
    assert row["start_at"] == pd.Timestamp("2026-11-01 06:30:00", tz="UTC")


def test_ambiguous_time_without_any_epoch_is_quarantined_not_guessed() -> None:
    raw = leg(start="2026-11-01 01:30:00", answer="", end="", uniqueid="x", session="", billsec="0")
    batch = normalize_legs([raw], NY)
    assert batch.legs.empty
    assert "ambiguous" in batch.rejects.iloc[0]["reason"]


def test_nonexistent_local_time_is_quarantined_with_a_hint() -> None:
    raw = leg(start="2026-03-08 02:30:00", answer="", end="", billsec="0")
    batch = normalize_legs([raw], NY)
    assert batch.legs.empty
    assert "time zone" in batch.rejects.iloc[0]["reason"]


def test_bad_rows_are_quarantined_with_position_and_reason_while_good_rows_load() -> None:
    raws = [
        leg(AcctId="1"),
        leg(AcctId="2", start="yesterday"),
        leg(AcctId="3", disposition="MAYBE"),
        leg(AcctId="4", duration="abc"),
        leg(AcctId="5", uniqueid=""),
        leg(AcctId="6", channel="PJSIP/203-0002"),
    ]
    batch = normalize_legs(raws, NY, positions=[10, 11, 12, 13, 14, 15])
    assert sorted(batch.legs["acct_id"]) == ["1", "6"]
    rejects = batch.rejects.set_index("position")["reason"].to_dict()
    assert set(rejects) == {11, 12, 13, 14}
    assert "start time" in rejects[11]
    assert "disposition" in rejects[12]
    assert "duration" in rejects[13]
    assert "uniqueid" in rejects[14]
    assert json.loads(batch.rejects.iloc[0]["raw"])["AcctId"] == "2"


def test_e164_uses_the_tenant_region_and_leaves_extensions_alone() -> None:
    raws = [
        leg(AcctId="1", src="07700900123", dst="6400", userfield="Inbound", src_trunk_name="Carrier"),
        leg(AcctId="2", src="203", dst="+1 (212) 555-0143", userfield="Outbound"),
    ]
    gb = NormalizeContext(tenant="uk", timezone="Europe/London", region="GB")
    legs = normalize_legs(raws, gb).legs.set_index("acct_id")
    assert legs.loc["1", "src_e164"] == "+447700900123"
    assert legs.loc["1", "dst_e164"] is None
    assert legs.loc["2", "dst_e164"] == "+12125550143"
    assert legs.loc["2", "src_e164"] is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"userfield": "Inbound"}, "inbound"),
        ({"userfield": "OUTBOUND"}, "outbound"),
        ({"userfield": "External"}, "external"),
        ({"userfield": "", "channel": "PJSIP/trunk_2-0001"}, "inbound"),
        ({"userfield": "", "dstchannel": "PJSIP/trunk_1/2125550143"}, "outbound"),
        ({"userfield": "EXT", "src_trunk_name": "A", "dst_trunk_name": "B"}, "external"),
        ({"userfield": ""}, "internal"),
    ],
)
def test_direction_from_userfield_or_trunks(fields: dict[str, str], expected: str) -> None:
    assert normalize_legs([leg(**fields)], NY).legs.iloc[0]["direction"] == expected


def test_ui_export_shapes_durations_and_missing_disposition() -> None:
    raw = leg(duration="0:01:05", billsec="00:50", disposition="", start="2026-03-04 09:35")
    raw.pop("AcctId")
    row = normalize_legs([raw], NY).legs.iloc[0]
    assert (row["duration_s"], row["billsec_s"]) == (65, 50)
    assert row["disposition"] == "ANSWERED"  # derived from the answer time
    assert row["acct_id"] is None
    assert row["start_local"] == "2026-03-04 09:35:00"


def test_recordings_are_listed() -> None:
    raw = leg(recordfiles="2026-03/auto-1772634907#204-203-6400.wav@2026-03/b.wav@")
    row = normalize_legs([raw], NY).legs.iloc[0]
    assert json.loads(row["recording_files"]) == ["2026-03/auto-1772634907#204-203-6400.wav", "2026-03/b.wav"]
    assert row["recording_count"] == 2


class TestLegKey:
    def test_same_leg_from_api_and_export_has_the_same_key(self) -> None:
        api = leg()
        export = {k: v for k, v in leg().items() if k not in ("AcctId", "cdr", "recordfiles")}
        export["duration"] = "0:00:31"
        a = normalize_legs([api], NY).legs.iloc[0]["leg_key"]
        b = normalize_legs([export], NY).legs.iloc[0]["leg_key"]
        assert a == b

    def test_legs_sharing_a_uniqueid_get_distinct_keys(self) -> None:
        ring_group = [
            leg(AcctId="1", dstchannel="PJSIP/204-01", disposition="ANSWERED"),
            leg(AcctId="2", dstchannel="PJSIP/205-02", disposition="NO ANSWER", answer="", billsec="0"),
            leg(AcctId="3", lastapp="ForkCDR"),
            leg(AcctId="4", start="2026-03-04 09:36:00", dstchannel="PJSIP/206-03"),  # transfer
        ]
        keys = normalize_legs(ring_group, NY).legs["leg_key"]
        assert keys.is_unique

    def test_identical_rows_are_numbered_by_acctid_not_merged(self) -> None:
        twins = [leg(AcctId="9"), leg(AcctId="8")]
        legs = normalize_legs(twins, NY).legs.set_index("acct_id")
        assert legs.loc["8", "leg_key"] + "#2" == legs.loc["9", "leg_key"]

    def test_key_carries_no_phone_number(self) -> None:
        raw = leg(dstchannel="PJSIP/trunk_1/2125550143", dst="2125550143")
        key = normalize_legs([raw], NY).legs.iloc[0]["leg_key"]
        assert "2125550143" not in key
        assert len(key) == 32


def test_reader_marked_rows_are_quarantined_with_the_readers_reason() -> None:
    from audiapro.cdr.normalize import REJECT_MARKER, NormalizeContext, normalize_frame

    frame = pd.DataFrame([leg(AcctId="1"), leg(AcctId="2")])
    frame[REJECT_MARKER] = ["", "row has 12 fields, header has 14"]
    batch = normalize_frame(
        frame, NormalizeContext("acme", "America/New_York", source="csv"), positions=[2, 3]
    )
    assert list(batch.legs["acct_id"]) == ["1"]
    assert batch.rejects.to_dict("records")[0]["reason"] == "row has 12 fields, header has 14"
    assert batch.rejects.to_dict("records")[0]["position"] == 3


def test_durations_read_alike_whether_every_value_is_plain_digits_or_not() -> None:
    # A column of plain digits takes a shortcut; one clock value or a blank sends it the general way.
    plain = ["31", "007", "0", "86400"]
    expected = [31, 7, 0, 86400]
    for extra, seconds in (([], []), (["0:01:05"], [65]), ([" 12 "], [12]), (["4.0"], [4])):
        values = plain + extra
        legs = [leg(AcctId=str(n), duration=value, billsec="0") for n, value in enumerate(values, 1)]
        batch = normalize_legs(legs, NormalizeContext(tenant="acme", timezone="America/New_York"))
        assert batch.rejects.empty
        assert batch.legs["duration_s"].tolist() == expected + seconds, extra
        assert str(batch.legs["duration_s"].dtype) == "Int64"


def test_empty_optional_texts_are_null_and_others_kept() -> None:
    legs = [
        leg(AcctId="1", caller_name=""),
        leg(AcctId="2", caller_name="Chloe"),
        leg(AcctId="3", caller_name=" "),
    ]
    names = normalize_legs(legs, NormalizeContext(tenant="acme", timezone="America/New_York")).legs[
        "caller_name"
    ]
    assert names.tolist() == [None, "Chloe", None]


def test_identical_export_legs_without_acct_id_are_numbered_in_row_order() -> None:
    twin = leg(AcctId="", recordfiles="2026-03/a.wav@")
    other = leg(AcctId="", uniqueid="1772634999.1", recordfiles="")
    legs = normalize_legs(
        [twin, other, dict(twin)], NormalizeContext(tenant="acme", timezone="America/New_York")
    ).legs
    first, second, third = legs["leg_key"].tolist()
    assert third == first + "#2" and "#" not in first + second
    assert legs["recording_count"].tolist() == [1, 0, 1]
    assert legs["recording_files"].tolist() == ['["2026-03/a.wav"]', "[]", '["2026-03/a.wav"]']
