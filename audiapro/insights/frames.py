"""From the warehouse's legs to one row per call with what the insights and fraud rules need.

Definitions (README "Insights"):

* **answered**: a person answered: some leg is ANSWERED by an application other than voicemail or
  an IVR menu. A call only voicemail or the IVR took is ``VOICEMAIL``, not answered.
* **disposition**: ``ANSWERED``, ``VOICEMAIL``, or the first leg's (NO ANSWER, BUSY, FAILED,
  CONGESTION).
* **extension**: the caller's extension for outbound and internal calls; for inbound calls the
  extension that answered (none when nobody did).
* **number**: the outside party (inbound and trunk-to-trunk: the caller; outbound: the dialled
  number), E.164 when it parsed.
* **trunk**: inbound and trunk-to-trunk: the trunk the call came in on; outbound: the trunk of the
  answered (else first) leg that dialled out.
* **country**: ISO region of the dialled E.164 number (outbound and trunk-to-trunk calls).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import pandas as pd
import phonenumbers

#: Applications that answer without a person: their ANSWERED legs do not make a call answered.
MACHINE_APPS: Final = frozenset({"VoiceMail", "IVR", "BackGround", "Playback"})
MACHINE_ACTIONS: Final = ("VM", "IVR")
ANSWERED: Final = "ANSWERED"
VOICEMAIL: Final = "VOICEMAIL"
#: Directions whose calls leave over a trunk to an outside number.
OUTGOING: Final = ("outbound", "external")
#: An extension: 2 to 6 digits (longer digit strings are outside numbers).
_EXTENSION: Final = re.compile(r"^\d{2,6}$")
_CHANNEL_EXTENSION: Final = re.compile(r"^(?:PJSIP|SIP)/(\d{2,6})-")

#: Columns of :func:`call_frame`.
CALL_FRAME_COLUMNS: Final = (
    "session", "started_at", "ended_at", "direction", "answered", "disposition", "talk_s",
    "extension", "number", "dst_e164", "country", "trunk", "action_type", "ring_s",
)  # fmt: skip
#: Columns of :func:`extension_legs`.
EXTENSION_LEG_COLUMNS: Final = ("session", "extension", "answered", "ring_s", "billsec_s")


def is_extension(value: object) -> bool:
    """Whether a raw number is an extension (2 to 6 digits)."""
    return isinstance(value, str) and bool(_EXTENSION.match(value))


@lru_cache(maxsize=65536)
def region_of(e164: str) -> str | None:
    """ISO region of an E.164 number (``"001"`` for non-geographic, e.g. satellite; None: unknown)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def _machine(legs: pd.DataFrame) -> pd.Series:
    """Legs of voicemail or an IVR menu."""
    action = legs["action_type"].fillna("").str.split("[", n=1).str[0]
    return legs["lastapp"].isin(MACHINE_APPS) | action.isin(MACHINE_ACTIONS)


def _person_answered(legs: pd.DataFrame) -> pd.Series:
    return (legs["disposition"] == ANSWERED) & ~_machine(legs)


def _leg_extension(legs: pd.DataFrame) -> pd.Series:
    """The extension a leg rang or was answered by (None for trunk legs)."""
    from_channel = legs["dstchannel"].fillna("").str.extract(_CHANNEL_EXTENSION, expand=False)
    dst = legs["dst_raw"].where(legs["dst_raw"].map(is_extension))
    answered_by = legs["answered_by"].where(legs["answered_by"].map(is_extension))
    result = answered_by.fillna(from_channel).fillna(dst)
    return result.where(result.notna(), None)


def ordered_legs(legs: pd.DataFrame) -> pd.DataFrame:
    """Legs sorted so each session's first leg comes first (start, then uniqueid numerically)."""
    order = legs.assign(_uid_len=legs["uniqueid"].fillna("").str.len())
    order = order.sort_values(["session", "start_at", "_uid_len", "uniqueid", "leg_key"], na_position="last")
    return order.drop(columns="_uid_len")


def call_frame(legs: pd.DataFrame) -> pd.DataFrame:
    """One row per call (:data:`CALL_FRAME_COLUMNS`) from legs read by ``read_call_legs``."""
    if legs.empty:
        return pd.DataFrame(columns=list(CALL_FRAME_COLUMNS))
    legs = ordered_legs(legs).assign(person=lambda f: _person_answered(f))
    legs["ring"] = (legs["answer_at"] - legs["start_at"]).dt.total_seconds()
    first = legs.groupby("session", sort=False).first()
    answered = legs.groupby("session", sort=False)["person"].any()
    any_answer = legs.assign(a=legs["disposition"] == ANSWERED).groupby("session", sort=False)["a"].any()
    winners = legs[legs["person"]].groupby("session", sort=False).first()
    calls = pd.DataFrame(index=first.index)
    calls["started_at"] = first["call_started_at"]
    calls["ended_at"] = first["call_ended_at"]
    calls["direction"] = first["direction"]
    calls["answered"] = answered
    calls["disposition"] = first["disposition"].where(~any_answer, VOICEMAIL).where(~answered, ANSWERED)
    calls["talk_s"] = first["call_talk_s"].fillna(0).astype("int64").where(answered, 0)
    winner_ext = _leg_extension(winners.reset_index()).set_axis(winners.index)
    outgoing_or_internal = calls["direction"].isin(("outbound", "internal"))
    caller_ext = first["src_raw"].where(first["src_raw"].map(is_extension))
    calls["extension"] = caller_ext.where(outgoing_or_internal, winner_ext.reindex(calls.index))
    outgoing = calls["direction"].isin(OUTGOING)
    calls["dst_e164"] = first["dst_e164"].where(outgoing)
    inbound_number = first["src_e164"].fillna(first["src_raw"])
    calls["number"] = (
        calls["dst_e164"].fillna(first["dst_raw"]).where(calls["direction"] == "outbound", inbound_number)
    )
    calls.loc[calls["direction"] == "internal", "number"] = None
    calls["country"] = calls["dst_e164"].map(lambda n: region_of(n) if isinstance(n, str) else None)
    out_trunk = winners["dst_trunk"].reindex(calls.index).fillna(first["dst_trunk"])
    calls["trunk"] = first["src_trunk"].where(calls["direction"] != "outbound", out_trunk)
    calls["action_type"] = first["action_type"]
    calls["ring_s"] = winners["ring"].reindex(calls.index)
    calls = calls.reset_index().rename(columns={"index": "session"})
    return calls[list(CALL_FRAME_COLUMNS)].astype({"answered": bool})


def extension_legs(legs: pd.DataFrame) -> pd.DataFrame:
    """Legs that rang an extension (:data:`EXTENSION_LEG_COLUMNS`), for the per-extension table."""
    if legs.empty:
        return pd.DataFrame(columns=list(EXTENSION_LEG_COLUMNS))
    # Legs voicemail or an IVR menu took are not an extension ringing (the IVR's number is no user).
    ringing = legs[legs["direction"].isin(("inbound", "internal")) & ~_machine(legs)]
    frame = pd.DataFrame(
        {
            "session": ringing["session"],
            "extension": _leg_extension(ringing),
            "answered": _person_answered(ringing),
            "ring_s": (ringing["answer_at"] - ringing["start_at"]).dt.total_seconds(),
            "billsec_s": ringing["billsec_s"].fillna(0).astype("int64"),
        }
    )
    return frame[frame["extension"].notna()].reset_index(drop=True)


def outgoing_frame(legs: pd.DataFrame) -> pd.DataFrame:
    """:func:`call_frame` for outgoing calls only, built the cheap way (for the per-poll fraud check).

    An outgoing call's figures are its first leg's (caller extension, dialled number, trunk) and the
    call's own answered flag and talk time: no per-leg answering logic is needed.
    """
    if legs.empty:
        return pd.DataFrame(columns=list(CALL_FRAME_COLUMNS))
    first = ordered_legs(legs).drop_duplicates("session")
    outbound = first["direction"] == "outbound"
    calls = pd.DataFrame(
        {
            "session": first["session"],
            "started_at": first["call_started_at"],
            "ended_at": first["call_ended_at"],
            "direction": first["direction"],
            "answered": first["call_answered"].astype(bool),
            "disposition": first["disposition"],
            "talk_s": first["call_talk_s"].fillna(0).astype("int64"),
            "extension": first["src_raw"].where(outbound & first["src_raw"].map(is_extension)),
            "number": first["dst_e164"].fillna(first["dst_raw"]),
            "dst_e164": first["dst_e164"],
            "country": first["dst_e164"].map(lambda n: region_of(n) if isinstance(n, str) else None),
            "trunk": first["dst_trunk"].where(outbound, first["src_trunk"]),
            "action_type": first["action_type"],
            "ring_s": None,
        }
    )
    return calls.reset_index(drop=True)
