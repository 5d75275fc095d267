"""CDR file headers -> UCM field names: alias table, folding, unknown and repeated columns."""

from __future__ import annotations

import pytest

from audiapro.cdr.headers import ALIAS_INDEX, CDRAPI_FIELDS, header_key, map_headers
from audiapro.cdr.schema import LEG_KEY_FIELDS

# (header as some firmware writes it, cdrapi field)
UI_VARIANTS = [
    ("Account Code", "accountcode"),
    ("Caller Number", "src"),
    ("Call From", "src"),
    ("Callee Number", "dst"),
    ("Call To", "dst"),
    ("Context", "dcontext"),
    ("Caller ID", "clid"),
    ("Source Channel", "channel"),
    ("Dest. Channel", "dstchannel"),
    ("Dest Channel", "dstchannel"),
    ("Last app.", "lastapp"),
    ("Last App", "lastapp"),
    ("Last data", "lastdata"),
    ("Start Time", "start"),
    ("Answer Time", "answer"),
    ("End Time", "end"),
    ("Call Time", "duration"),
    ("Talk Time", "billsec"),
    ("Call Status", "disposition"),
    ("Disposition", "disposition"),
    ("Status", "disposition"),
    ("AMA Flags", "amaflags"),
    ("Unique ID", "uniqueid"),
    ("Call Type", "userfield"),
    ("Dest Channel Extension", "dstchannel_ext"),
    ("Caller Name", "caller_name"),
    ("Answered by", "dstanswer"),
    ("Session", "session"),
    ("Action Type", "action_type"),
    ("Source Trunk Name", "src_trunk_name"),
    ("Destination Trunk Name", "dst_trunk_name"),
    ("Dest Trunk Name", "dst_trunk_name"),
    ("Caller NAT", "caller_nat"),
    ("Callee NAT", "callee_nat"),
    ("Premier Caller", "premier_caller"),
    ("cdr", "cdr"),
]


@pytest.mark.parametrize(("header", "field"), UI_VARIANTS)
def test_every_ui_header_maps(header: str, field: str) -> None:
    assert map_headers([header]).columns == (field,)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("  unique   id ", "uniqueid"),
        ("UNIQUE_ID", "uniqueid"),
        ("Unique-ID", "uniqueid"),
        ("dest.channel", "dstchannel"),
        ("DEST. CHANNEL", "dstchannel"),
        ("Last App.", "lastapp"),
        ("last_app", "lastapp"),
        ("Start-Time", "start"),
        ("Answered By", "dstanswer"),
        ("callee number", "dst"),
    ],
)
def test_case_space_and_punctuation_do_not_matter(header: str, field: str) -> None:
    assert map_headers([header]).columns == (field,)


@pytest.mark.parametrize("field", CDRAPI_FIELDS)
def test_cdrapi_names_map_to_themselves(field: str) -> None:
    assert map_headers([field]).columns == (field,)
    assert map_headers([field.upper()]).columns == (field,)


def test_folding_keeps_non_latin_letters() -> None:
    assert header_key("Número de llamada") == "númerodellamada"
    assert ALIAS_INDEX["destchannel"] == "dstchannel"


def test_unknown_headers_get_stable_snake_case_names() -> None:
    mapping = map_headers(["Unique ID", "Recording File(s)", "Some  Column!", "", "Ünïcode Spalte", "--"])
    assert mapping.columns == (
        "uniqueid",
        "recording_file_s",
        "some_column",
        "column_4",
        "ünïcode_spalte",
        "column_6",
    )
    assert map_headers(["Recording File(s)"]).columns == ("recording_file_s",)


def test_first_header_of_a_field_wins_and_the_other_keeps_its_own_name() -> None:
    mapping = map_headers(["Call Status", "Disposition", "disposition"])
    assert mapping.columns == ("disposition", "disposition_2", "disposition_3")


def test_an_unknown_header_never_takes_a_field_name() -> None:
    # "src 2" is unknown and snake-cases to src_2; the real field still gets "src".
    mapping = map_headers(["src 2", "Caller Number"])
    assert mapping.columns == ("src_2", "src")


def test_raw_names_keep_the_files_headers_and_disambiguate_repeats() -> None:
    mapping = map_headers(["Status", " Unique ID ", "Status"])
    assert mapping.raw_names == ("Status", " Unique ID ", "Status#2")


def test_missing_key_fields_are_reported_in_key_order() -> None:
    assert map_headers(["Caller Number", "Start Time", "Last app."]).missing_keys == (
        "uniqueid",
        "channel",
        "dstchannel",
    )
    assert map_headers(list(LEG_KEY_FIELDS)).missing_keys == ()
