"""The canonical leg frame: one row per PBX call leg, the shape every source is normalized into.

Every source (cdrapi pages, UI CSV exports, saved JSON, later SFTP/e-mail/push) first becomes a list of
raw legs (``dict[str, str]`` keyed by the UCM's own field names, unknown keys kept), then
:func:`audiapro.cdr.normalize.normalize_legs` turns them into a DataFrame with exactly the columns
below, in this order. The warehouse loads that frame as is (``cdr_legs`` has the same columns plus
bookkeeping), so this module is the single home of the column list.
"""

from __future__ import annotations

from typing import Final

#: Raw UCM field names (cdrapi JSON keys) that together identify one leg on every path (API, UI
#: export, real-time push). ``uniqueid`` alone is not unique: ring-group, queue, transfer and
#: ForkCDR legs share it; ``channel``/``dstchannel`` separate ring-group and queue members,
#: ``start`` separates transfer and park legs, ``lastapp`` separates ForkCDR bookkeeping legs.
LEG_KEY_FIELDS: Final = ("uniqueid", "channel", "dstchannel", "start", "lastapp")

#: Directions, as the UCM's own CDR report classifies calls.
DIRECTIONS: Final = ("inbound", "outbound", "internal", "external")

#: Normalized dispositions (Asterisk's set); anything else is quarantined.
DISPOSITIONS: Final = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")

#: Column name -> logical type. Types: "str" (nullable text), "utc" (tz-aware UTC timestamp),
#: "int" (nullable integer), "json" (text holding JSON).
LEG_COLUMNS: Final[dict[str, str]] = {
    "tenant": "str",  # tenant name (the CloudUCM block's name)
    "leg_key": "str",  # deterministic natural key, see audiapro.cdr.keys; unique per tenant
    "acct_id": "str",  # UCM AcctId when the source has it (API yes, UI export no)
    "uniqueid": "str",  # Asterisk channel id "<epoch>.<seq>"
    "session": "str",  # call-session id; legs of one call share it (call grouping key)
    "start_local": "str",  # PBX wall-clock start as sent, "YYYY-MM-DD HH:MM:SS"
    "start_at": "utc",
    "answer_at": "utc",  # null when unanswered
    "end_at": "utc",
    "duration_s": "int",  # start -> end
    "billsec_s": "int",  # answer -> end (talk time)
    "disposition": "str",  # one of DISPOSITIONS
    "direction": "str",  # one of DIRECTIONS
    "src_raw": "str",
    "dst_raw": "str",
    "src_e164": "str",  # null when the number is an extension or not parseable
    "dst_e164": "str",
    "caller_name": "str",
    "answered_by": "str",  # dstanswer: extension that answered
    "action_type": "str",  # DIAL, QUEUE[n], RINGGROUP[n], PARKEDCALL, TRANSFER, ...
    "action_owner": "str",
    "src_trunk": "str",
    "dst_trunk": "str",
    "channel": "str",
    "dstchannel": "str",
    "dcontext": "str",
    "lastapp": "str",
    "recording_files": "json",  # JSON array of recording paths ("2025-03/auto-....wav"), [] if none
    "recording_count": "int",
    "raw": "json",  # the raw leg as received (all keys, strings), for audit and re-normalization
}

#: Columns of the canonical frame, in order.
LEG_COLUMN_NAMES: Final = tuple(LEG_COLUMNS)

#: Columns of a rejected (quarantined) row, as produced by normalization and file readers.
REJECT_COLUMNS: Final = ("source", "position", "reason", "raw")
