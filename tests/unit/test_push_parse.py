"""Pushed bodies -> raw legs: every shape the simulator's emitter sends, with and without a matching
Content-Type, and the bodies that must be quarantined with a reason."""

from __future__ import annotations

import json

import pytest

from audiapro.push.parse import PushParseError, parse_push_body
from audiapro.ucm.simulator.push import VARIANTS, render_body

START = "2026-03-02 09:00:00"
LEG_A = {"AcctId": "101", "uniqueid": "1700000000.1", "src": "1001", "dst": "5551234", "start": START,
         "end": "2026-03-02 09:01:00", "disposition": "ANSWERED", "session": "s-1",
         "lastapp": "Dial"}  # fmt: skip
LEG_B = {**LEG_A, "AcctId": "102", "uniqueid": "1700000000.2", "dst": "1002 & <3>", "lastapp": "Queue"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("legs", [[LEG_A], [LEG_A, LEG_B]], ids=["one", "two"])
def test_every_emitter_variant_parses_back_to_the_same_legs(variant: str, legs: list[dict[str, str]]) -> None:
    body, content_type = render_body(legs, variant)
    assert parse_push_body(body, content_type).legs == legs
    # The Content-Type is only a hint: without one (or a wrong one) the body still parses.
    assert parse_push_body(body, None).legs == legs
    assert parse_push_body(body, "text/html").legs == legs


def test_json_numbers_and_nulls_become_strings_like_cdrapi_values() -> None:
    body = json.dumps({**LEG_A, "AcctId": 101, "billsec": 42, "userfield": None}).encode()
    leg = parse_push_body(body, "application/json").legs[0]
    assert (leg["AcctId"], leg["billsec"], leg["userfield"]) == ("101", "42", "")


def test_cdr_item_marker_and_wrappers() -> None:
    body = json.dumps({"records": [{"cdr": "", **LEG_A}]}).encode()
    assert parse_push_body(body).legs == [LEG_A]
    body = json.dumps({"cdr": LEG_A}).encode()
    assert parse_push_body(body).legs == [LEG_A]


def test_json_documents_back_to_back_are_one_leg_each() -> None:
    ndjson = (json.dumps(LEG_A) + "\n" + json.dumps(LEG_B) + "\n").encode()
    assert parse_push_body(ndjson).legs == [LEG_A, LEG_B]
    glued = (json.dumps(LEG_A) + json.dumps({"cdr_root": [LEG_B]}) + "\x00").encode()
    assert parse_push_body(glued).legs == [LEG_A, LEG_B]
    with pytest.raises(PushParseError, match="line 2"):
        parse_push_body((json.dumps(LEG_A) + "\n" + '{"uniqueid": ').encode())


def test_form_field_holding_json_and_xml_with_attributes() -> None:
    body = b"cdr=" + json.dumps(LEG_A).encode().replace(b"&", b"%26")
    assert parse_push_body(body, "application/x-www-form-urlencoded").legs == [LEG_A]
    xml = b'<cdr uniqueid="1700000000.1" src="1001" start="2026-03-02 09:00:00"/>'
    assert parse_push_body(xml).legs == [
        {"uniqueid": "1700000000.1", "src": "1001", "start": "2026-03-02 09:00:00"}
    ]


def test_utf8_bom_and_latin1_bodies() -> None:
    body = "\ufeff".encode() + json.dumps({**LEG_A, "caller_name": "Jürgen"}, ensure_ascii=False).encode()
    assert parse_push_body(body).legs[0]["caller_name"] == "Jürgen"
    latin = json.dumps({**LEG_A, "caller_name": "Jürgen"}, ensure_ascii=False).encode("latin-1")
    assert parse_push_body(latin).legs[0]["caller_name"] == "Jürgen"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b'{"uniqueid": "1", "src": ', "invalid JSON"),
        (b"hello world", "no key=value pairs"),
        (b'{"status": 0, "response": {}}', "none of the fields"),
        (b"[]", "no CDR record"),
        (b'{"main_cdr": {"uniqueid": "1"}}', "no sub_cdr legs"),
        (b"<cdr><src>1</src>", "invalid XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><cdr><uniqueid>&a;</uniqueid></cdr>', "DTD"),
        (b"[[[[[[[1]]]]]]]", "nested too deeply"),
    ],
)
def test_unusable_bodies_raise_a_one_line_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PushParseError, match=reason) as caught:
        parse_push_body(body, None)
    assert "\n" not in str(caught.value)
