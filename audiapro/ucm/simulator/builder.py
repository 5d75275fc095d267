"""Leg-building helpers shared by the call scenarios (channels, timing, recordings, ForkCDR copies).

A :class:`CallBuilder` holds one call's randomness, start and deadline; every helper draws from that
RNG, so a call stays a pure function of its seed, start and the channel counter.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from audiapro.ucm.simulator.config import FORK_SHARE, LONG_CALL_SECONDS, FraudScenario, SimulatorConfig
from audiapro.ucm.simulator.legs import NO_ANSWER, Leg, local_string
from audiapro.ucm.simulator.plan import TRUNK_NAMES, Extension, Plan

#: Seconds a phone rings before Dial gives up (also the ring-group timeout).
RING_TIMEOUT = 30
#: Share of conversations that run 20 minutes or more (up to the tenant's max_call_seconds); the
#: ``long_call_share`` knob forces calls of an exact length on top of this natural tail.
LONG_CALL_SHARE = 0.03
LONG_CALL_MIN = 20 * 60
#: Median talk time; talk times are log-normal around it.
MEDIAN_TALK = 95
#: Share of long recordings split in two files by a pause (recordfiles "a.wav@b.wav@").
SPLIT_RECORDING_SHARE = 0.05
SPLIT_RECORDING_MIN_TALK = 120
#: Share of unanswered calls that end in voicemail.
VOICEMAIL_SHARE = 0.5


class ChannelCounter:
    """Asterisk's channel sequence: feeds ``uniqueid`` suffixes and channel name suffixes."""

    def __init__(self, base: int) -> None:
        """Start counting after ``base``."""
        self.value = base

    def next(self) -> int:
        """Next sequence number."""
        self.value += 1
        return self.value


@dataclass(frozen=True)
class Tenant:
    """What every call of one tenant shares (the call-shape knobs: see :class:`SimulatorConfig`)."""

    plan: Plan
    zone: ZoneInfo
    max_call_seconds: int
    recording_share: float
    long_call_share: float = 0.0
    long_call_seconds: int = LONG_CALL_SECONDS
    parallel_trunk_share: float = 0.0
    twin_leg_share: float = 0.0
    fork_share: float = FORK_SHARE
    fork_recordings: bool = False
    fraud: tuple[FraudScenario, ...] = ()

    @classmethod
    def from_config(cls, plan: Plan, zone: ZoneInfo, config: SimulatorConfig) -> Tenant:
        """The tenant a simulator configuration describes."""
        return cls(
            plan,
            zone,
            config.max_call_seconds,
            config.recording_share,
            long_call_share=config.long_call_share,
            long_call_seconds=config.long_call_seconds,
            parallel_trunk_share=config.parallel_trunk_share,
            twin_leg_share=config.twin_leg_share,
            fork_share=config.fork_share,
            fork_recordings=config.fork_recordings,
            fraud=config.fraud,
        )


class CallBuilder:
    """State of one call being generated, plus the helpers that build its legs."""

    def __init__(self, tenant: Tenant, rng: random.Random, t0: int, counter: ChannelCounter) -> None:
        """Start a call at UTC epoch ``t0``; its legs share the uniqueid drawn here."""
        self.tenant = tenant
        self.rng = rng
        self.t0 = t0
        self.counter = counter
        self.deadline = t0 + tenant.max_call_seconds
        self.uid = f"{t0}.{counter.next()}"

    def chan(self, endpoint: str) -> str:
        """A new channel name ``PJSIP/<endpoint>-<8 hex>``."""
        return f"PJSIP/{endpoint}-{self.counter.next():08x}"

    def session(self, at: int, originator: str) -> str:
        """A session id ``<epoch><6 digits>-<originator>``."""
        return f"{at}{self.rng.randrange(1_000_000):06d}-{originator}"

    def ext(self, *exclude: str) -> Extension:
        """A random extension other than ``exclude``."""
        while True:
            e = self.rng.choice(self.tenant.plan.extensions)
            if e.number not in exclude:
                return e

    def ring(self) -> int:
        """Seconds until someone picks up."""
        return int(self.rng.triangular(2, 25, 7))

    def talk(self, begins: int) -> int:
        """Talk seconds for a conversation starting at ``begins``, ending by the deadline."""
        room = self.deadline - begins
        forced = self.tenant.long_call_share
        # Drawn only when asked for, so the default configuration generates what it always did.
        if forced and self.rng.random() < forced:
            return max(1, min(self.tenant.long_call_seconds, room))
        if self.rng.random() < LONG_CALL_SHARE:
            seconds = self.rng.randint(LONG_CALL_MIN, max(LONG_CALL_MIN, room))
        else:
            seconds = int(self.rng.lognormvariate(math.log(MEDIAN_TALK), 0.9)) + 3
        return max(1, min(seconds, room))

    def trunk(self) -> int:
        """Which trunk carries the call (the first one carries most)."""
        return self.rng.choice((1, 1, 1, 2))

    def month(self, epoch: int) -> str:
        """The recording month directory ``YYYY-MM`` (PBX local time)."""
        return local_string(epoch, self.tenant.zone)[:7]

    def record(self, leg: Leg, dst_label: str, member: str = "", rec_dir: str = "monitor") -> None:
        """Attach an auto-recording to an answered leg (sometimes split by a pause)."""
        if leg.answer == NO_ANSWER or self.rng.random() >= self.tenant.recording_share:
            return
        tag = f"#{member}" if member else ""
        spans = [(leg.answer, leg.end)]
        if leg.end - leg.answer > SPLIT_RECORDING_MIN_TALK and self.rng.random() < SPLIT_RECORDING_SHARE:
            pause = leg.answer + (leg.end - leg.answer) // 2
            resume = pause + self.rng.randint(5, 30)
            spans = [(leg.answer, pause), (resume, leg.end)]
        # The first file is named after the leg start, a resumed one after its own start.
        name_epochs = [leg.start] + [first for first, _ in spans[1:]]
        leg.recordings = tuple(
            f"{self.month(e)}/auto-{e}{tag}-{leg.src}-{dst_label}.wav" for e in name_epochs
        )
        leg.rec_spans = tuple(spans)
        leg.rec_dir = rec_dir

    def ext_leg(self, caller: Extension, **fields: object) -> Leg:
        """A leg originated by an extension (internal or outbound)."""
        base: dict[str, object] = {
            "uid": self.uid,
            "src": caller.number,
            "clid": f'"{caller.name}" <{caller.number}>',
            "channel": self.chan(caller.number),
            "lastapp": "Dial",
            "channel_ext": caller.number,
            "caller_name": caller.name,
            "action_owner": caller.number,
            "action_type": "DIAL",
            "device_info": caller.device,
            "nat_call": "yes" if caller.device == "Wave" else "no",
            "wave_src": wave_id(caller),
        }
        base.update(fields)
        return Leg(**base)  # type: ignore[arg-type]

    def trunk_leg(self, caller: str, cnam: str, trunk: int, channel: str, **fields: object) -> Leg:
        """A leg of a call that came in over trunk ``trunk``."""
        base: dict[str, object] = {
            "uid": self.uid,
            "src": caller,
            "clid": f'"{cnam}" <{caller}>',
            "channel": channel,
            "lastapp": "Dial",
            "dcontext": f"ext-did-{trunk}",
            "userfield": "Inbound",
            "channel_ext": f"trunk_{trunk}",
            "caller_name": cnam,
            "action_owner": caller,
            "action_type": "DIAL",
            "src_trunk": TRUNK_NAMES[trunk - 1],
        }
        base.update(fields)
        return Leg(**base)  # type: ignore[arg-type]

    def dial_fields(self, target: Extension, disposition: str) -> dict[str, object]:
        """The destination fields of a leg that rings extension ``target`` (``disposition`` not included).

        Draws ``target``'s channel (unless the dial FAILED) from the channel counter: where it is called
        decides the channel numbers a seed generates.
        """
        failed = disposition == "FAILED"
        return {
            "dst": target.number,
            "dstchannel": "" if failed else self.chan(target.number),
            "lastdata": f"PJSIP/{target.number},60",
            "dstchannel_ext": "" if failed else target.number,
            "dstanswer": target.number if disposition == "ANSWERED" else "",
            "device_info_peer": target.device,
            "wave_dst": wave_id(target),
        }

    def member_leg(self, template: Leg, member: Extension, answer: int, end: int, disposition: str) -> Leg:
        """One ring-group/queue member's leg, derived from the caller's leg template."""
        return template.clone(
            dstchannel=self.chan(member.number),
            dstchannel_ext=member.number,
            answer=answer,
            end=end,
            disposition=disposition,
            dstanswer=member.number if disposition == "ANSWERED" else "",
            device_info_peer=member.device,
            wave_dst=wave_id(member),
        )

    def outcome(self, start: int, answered: bool) -> tuple[int, int]:
        """(answer, end) of a dialled leg: rings, then talks or gives up."""
        if answered:
            answer = start + self.ring()
            return answer, answer + self.talk(answer)
        return NO_ANSWER, start + RING_TIMEOUT

    def voicemail(self, after: Leg, mailbox: str) -> Leg:
        """The caller lands in voicemail after ``after`` went unanswered."""
        start = after.end
        return after.clone(
            dst=mailbox,
            dstchannel="",
            dstchannel_ext="",
            lastapp="VoiceMail",
            lastdata=f"{mailbox}@default,u",
            answer=start,
            start=start,
            end=min(self.deadline, start + self.rng.randint(3, 60)),
            disposition="ANSWERED",
            dstanswer="",
            action_type="VM",
            device_info_peer="",
            wave_dst="0",
            recordings=(),
            rec_spans=(),
        )

    # --- scenarios -------------------------------------------------------------------------------
    def with_forks(self, legs: list[Leg]) -> list[Leg]:
        """Add ForkCDR bookkeeping copies of some answered legs (same uniqueid/channels and end)."""
        out = list(legs)
        share = self.tenant.fork_share
        for leg in legs:
            if leg.answer == NO_ANSWER or leg.lastapp != "Dial" or self.rng.random() >= share:
                continue
            same_start = self.rng.random() < 0.7
            keep = self.tenant.fork_recordings
            out.append(
                leg.clone(
                    start=leg.start if same_start else leg.answer,
                    lastapp="ForkCDR",
                    lastdata="",
                    recordings=leg.recordings if keep else (),
                    rec_spans=leg.rec_spans if keep else (),
                )
            )
        return out


def outside_dial_fields(trunk: int, number: str, disposition: str, timeout: int) -> dict[str, object]:
    """The destination fields of a leg that dials outside ``number`` over ``trunk`` for ``timeout`` s.

    ``disposition`` is not included; a FAILED dial has no destination channel.
    """
    failed = disposition == "FAILED"
    return {
        "dst": number,
        "dstchannel": "" if failed else f"PJSIP/trunk_{trunk}/{number}",
        "lastdata": f"PJSIP/trunk_{trunk}/{number},{timeout},T",
        "dstchannel_ext": "" if failed else f"trunk_{trunk}",
        "dstanswer": "",
        "dst_trunk": TRUNK_NAMES[trunk - 1],
    }


def wave_id(ext: Extension) -> str:
    """Wave softphone sequence id (``0`` for desk phones)."""
    return str(int(ext.number) % 9000 + 1000) if ext.device == "Wave" else "0"
