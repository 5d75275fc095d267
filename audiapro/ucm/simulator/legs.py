"""One generated call leg and its rendering into the PBX's cdrapi field set.

Legs are kept compact (times as UTC epochs) and rendered to ``dict[str, str]`` only when served, so a
year of history stays cheap. Rendering follows the real UCM: local wall-clock times without offset,
every value a string, ``""`` for empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

#: Field order of a UCM63xx leg (firmware 1.0.17.11, 43 fields, real capture order).
FIELDS_43: tuple[str, ...] = (
    "AcctId", "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid",
    "userfield", "channel_ext", "dstchannel_ext", "service", "caller_name", "recordfiles", "dstanswer",
    "chanext", "dstchanext", "session", "action_owner", "action_type", "src_trunk_name", "dst_trunk_name",
    "nat_call", "nat_call_peer", "video_call", "gdms_unique_code", "gds_call", "gsc_call", "wave_src_seqid",
    "wave_dst_seqid", "device_info", "device_info_peer", "recordfiles_desc",
)  # fmt: skip
#: Older firmware: the 22 classic Asterisk fields plus the ten Grandstream additions.
FIELDS_32: tuple[str, ...] = FIELDS_43[:32]
#: Fields the PBX fills in a grouped call's synthetic ``main_cdr`` (the rest are ``""``).
MAIN_CDR_FILLED = ("src", "dst", "start", "duration", "billsec", "session", "action_type")

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Bytes per second of an 8 kHz, 16-bit mono recording, and the RIFF/WAVE header size.
WAV_BYTES_PER_SECOND = 16000
WAV_HEADER_BYTES = 44
NO_ANSWER = -1
#: ``lastapp`` of bookkeeping rows: copies of another leg, not legs of the call.
BOOKKEEPING_APP = "ForkCDR"
#: UTC offsets change on quarter-hour boundaries in every current zone, so they can be cached per
#: 15-minute bucket of UTC time (much faster than asking zoneinfo for every timestamp).
_OFFSET_BUCKET = 900


@dataclass(slots=True)
class Leg:
    """One CDR row as the generator produced it (times are UTC epoch seconds).

    Attributes not named after a PBX field map as follows: ``uid`` = ``uniqueid``, ``src_trunk`` /
    ``dst_trunk`` = ``*_trunk_name``, ``recordings`` = relative paths without the trailing ``@``
    (rendered into ``recordfiles``), ``rec_spans`` = (first, last) UTC second of audio in each
    recording, ``rec_dir`` = the recapi ``filedir`` holding them, ``seq`` =
    generation order (tie-breaks), ``acct`` = AcctId (assigned once the leg's end day is indexed) and
    ``start_wall`` = the local wall-clock start as seconds since 1970-01-01 00:00 *local* (what the PBX
    compares query windows against).
    """

    start: int
    answer: int
    end: int
    uid: str
    session: str
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    disposition: str
    userfield: str
    channel_ext: str
    dstchannel_ext: str
    caller_name: str
    dstanswer: str
    action_owner: str
    action_type: str
    src_trunk: str = ""
    dst_trunk: str = ""
    recordings: tuple[str, ...] = ()
    rec_spans: tuple[tuple[int, int], ...] = ()
    rec_dir: str = "monitor"
    device_info: str = ""
    device_info_peer: str = ""
    nat_call: str = "no"
    wave_src: str = "0"
    wave_dst: str = "0"
    seq: int = 0
    acct: int = 0
    start_wall: int = 0

    def clone(self, **changes: Any) -> Leg:
        """A copy with some attributes changed (several times faster than ``dataclasses.replace``)."""
        new = Leg(*_get_all(self))
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    @property
    def billsec(self) -> int:
        """Talk time in seconds (0 when unanswered)."""
        return 0 if self.answer == NO_ANSWER else self.end - self.answer

    @property
    def duration(self) -> int:
        """Seconds from start to end."""
        return self.end - self.start


_get_all = attrgetter(*(f.name for f in fields(Leg)))


@lru_cache(maxsize=1 << 16)
def _bucket_offset(zone: ZoneInfo, bucket: int) -> int:
    offset = datetime.fromtimestamp(bucket * _OFFSET_BUCKET, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def wall_seconds(epoch: int, zone: ZoneInfo) -> int:
    """Local wall-clock time of a UTC epoch, as seconds since the local 1970-01-01 00:00."""
    return epoch + _bucket_offset(zone, epoch // _OFFSET_BUCKET)


def wall_string(wall: int) -> str:
    """Render wall-clock seconds (see :func:`wall_seconds`) as ``YYYY-MM-DD HH:MM:SS``."""
    t = time.gmtime(wall)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d} {t[3]:02d}:{t[4]:02d}:{t[5]:02d}"


def local_string(epoch: int, zone: ZoneInfo) -> str:
    """Render a UTC epoch as the PBX's local wall clock ``YYYY-MM-DD HH:MM:SS``."""
    return wall_string(wall_seconds(epoch, zone))


def render_leg(leg: Leg, zone: ZoneInfo, fields: tuple[str, ...]) -> dict[str, str]:
    """Render a leg as the PBX sends it: ``fields`` in order, all strings.

    Args:
        leg: The leg.
        zone: PBX time zone.
        fields: ``FIELDS_43`` or ``FIELDS_32``.

    Returns:
        The raw leg (no ``cdr`` key).
    """
    answered = leg.answer != NO_ANSWER
    billsec = leg.billsec
    values = {
        "AcctId": str(leg.acct),
        "accountcode": "",
        "src": leg.src,
        "dst": leg.dst,
        "dcontext": leg.dcontext,
        "clid": leg.clid,
        "channel": leg.channel,
        "dstchannel": leg.dstchannel,
        "lastapp": leg.lastapp,
        "lastdata": leg.lastdata,
        "start": wall_string(leg.start_wall),
        "answer": local_string(leg.answer, zone) if answered else "",
        "end": local_string(leg.end, zone),
        "duration": str(leg.duration),
        "billsec": str(billsec),
        "disposition": leg.disposition,
        "amaflags": "DOCUMENTATION",
        "uniqueid": leg.uid,
        "userfield": leg.userfield,
        "channel_ext": leg.channel_ext,
        "dstchannel_ext": leg.dstchannel_ext,
        "service": "s",
        "caller_name": leg.caller_name,
        "recordfiles": "".join(f"{path}@" for path in leg.recordings),
        "dstanswer": leg.dstanswer,
        "chanext": "",
        "dstchanext": "",
        "session": leg.session,
        "action_owner": leg.action_owner,
        "action_type": leg.action_type,
        "src_trunk_name": leg.src_trunk,
        "dst_trunk_name": leg.dst_trunk,
    }
    if len(fields) > len(FIELDS_32):
        values.update(
            nat_call=leg.nat_call,
            nat_call_peer="no",
            video_call="no",
            gdms_unique_code="",
            gds_call="no",
            gsc_call="no",
            wave_src_seqid=leg.wave_src,
            wave_dst_seqid=leg.wave_dst,
            device_info=leg.device_info,
            device_info_peer=leg.device_info_peer,
            recordfiles_desc=_recordfiles_desc(leg),
        )
    return {name: values[name] for name in fields}


def _recordfiles_desc(leg: Leg) -> str:
    """``duration=<s>,size=<bytes>B,start-time=<epoch>@`` per recording.

    The real PBX reports the full recording; the simulator's audio is capped, so ``size`` describes
    the recording the PBX would have made, not the bytes recapi serves.
    """
    parts = []
    for first, last in leg.rec_spans:
        seconds = max(0, last - first)
        size = WAV_HEADER_BYTES + seconds * WAV_BYTES_PER_SECOND
        parts.append(f"duration={seconds},size={size}B,start-time={first}@")
    return "".join(parts)


def main_cdr(legs: list[Leg], zone: ZoneInfo, fields: tuple[str, ...]) -> dict[str, str]:
    """The synthetic summary the PBX puts first in a grouped call (AcctId and most fields empty).

    Args:
        legs: The group's legs as served (at least one).
        zone: PBX time zone.
        fields: Field set of the legs.

    Returns:
        A dict with every field; only ``MAIN_CDR_FILLED`` are non-empty.
    """
    first = min(legs, key=lambda leg: (leg.start, leg.seq))
    start = first.start
    end = max(leg.end for leg in legs)
    talk = talk_seconds(legs)
    summary = dict.fromkeys(fields, "")
    summary.update(
        src=first.src,
        dst=first.dst,
        start=local_string(start, zone),
        duration=str(end - start),
        billsec=str(min(talk, end - start)),
        session=first.session,
        action_type=first.action_type,
    )
    return summary


def call_legs(legs: Iterable[Leg]) -> list[Leg]:
    """The legs that make up a call: ForkCDR bookkeeping copies left out, unless there is nothing else."""
    legs = list(legs)
    real = [leg for leg in legs if leg.lastapp != BOOKKEEPING_APP]
    return real or legs


def talk_seconds(legs: Iterable[Leg]) -> int:
    """Talk time of a call: the length of the union of its call legs' answered intervals.

    Overlapping talk (a leg and its twin, parallel legs that both answered) counts once; disjoint
    talk (a transfer, a pickup after parking) adds up.
    """
    spans = sorted((leg.answer, leg.end) for leg in call_legs(legs) if leg.answer != NO_ANSWER)
    total, reach = 0, None
    for first, last in spans:
        if reach is None or first > reach:
            total, reach = total + last - first, last
        elif last > reach:
            total, reach = total + last - reach, last
    return total


@dataclass(frozen=True)
class CallTruth:
    """What the warehouse's ``calls`` row of one session should hold (ground truth for tests).

    Attributes:
        session: The call's session.
        leg_count: Call legs (ForkCDR copies left out, unless the session has nothing else).
        bookkeeping: ForkCDR copies among the session's legs.
        answered: Some call leg is ANSWERED.
        talk_s: :func:`talk_seconds`.
        naive_talk_s: billsec summed over every leg, copies included (what double counting gives).
        recording_count: Distinct recording files of the call legs.
        started_at: Earliest call-leg start (UTC).
        ended_at: Latest call-leg end (UTC).
    """

    session: str
    leg_count: int
    bookkeeping: int
    answered: bool
    talk_s: int
    naive_talk_s: int
    recording_count: int
    started_at: datetime
    ended_at: datetime


def call_truth(legs: Iterable[Leg]) -> dict[str, CallTruth]:
    """Per session, the :class:`CallTruth` of the given legs."""
    sessions: dict[str, list[Leg]] = {}
    for leg in legs:
        sessions.setdefault(leg.session, []).append(leg)
    truth = {}
    for session, all_legs in sessions.items():
        own = call_legs(all_legs)
        truth[session] = CallTruth(
            session=session,
            leg_count=len(own),
            bookkeeping=sum(leg.lastapp == BOOKKEEPING_APP for leg in all_legs),
            answered=any(leg.answer != NO_ANSWER for leg in own),
            talk_s=talk_seconds(own),
            naive_talk_s=sum(leg.billsec for leg in all_legs),
            recording_count=len({path for leg in own for path in leg.recordings}),
            started_at=datetime.fromtimestamp(min(leg.start for leg in own), UTC),
            ended_at=datetime.fromtimestamp(max(leg.end for leg in own), UTC),
        )
    return truth
