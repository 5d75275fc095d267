"""Call scenarios: one simulated call becomes the legs a UCM would write for it.

Each scenario mirrors a real PBX pattern (docs/ucm-protocol.md, "Call shapes"): ring groups write
one leg per member sharing ``uniqueid``, queue recordings live under ``filedir=queue``, a transfer
writes a second leg with a new start (and session), a parked call's pickup keeps the original (older)
``uniqueid``, and ForkCDR writes bookkeeping duplicates. Every leg starts within a minute of the epoch
in its ``session`` (or its recording name), which is what lets a consumer place wall-clock times of
the repeated DST hour. All randomness comes from the ``rng`` handed in, so a call is
a pure function of its RNG state, its start and the channel counter.
"""

from __future__ import annotations

import math
import random

from audiapro.ucm.simulator.builder import (
    RING_TIMEOUT,
    VOICEMAIL_SHARE,
    CallBuilder,
    ChannelCounter,
    Tenant,
    outside_dial_fields,
)
from audiapro.ucm.simulator.legs import NO_ANSWER, Leg
from audiapro.ucm.simulator.plan import (
    IVR_NUMBER,
    PARK_SLOTS,
    Extension,
    HuntGroup,
    dialled_number,
    inbound_caller,
)

#: Scenario mix (relative weights). Ring groups and queues dominate inbound, as in a small office.
SCENARIOS = (
    ("internal", 16),
    ("inbound", 14),
    ("ringgroup", 18),
    ("queue", 14),
    ("outbound", 22),
    ("external", 3),
    ("transfer", 5),
    ("park", 3),
    ("ivr", 5),
)
OUTBOUND_DISPOSITIONS = (("ANSWERED", 62), ("NO ANSWER", 22), ("BUSY", 8), ("FAILED", 4), ("CONGESTION", 4))
INTERNAL_DISPOSITIONS = (("ANSWERED", 72), ("NO ANSWER", 18), ("BUSY", 8), ("FAILED", 2))
OUTBOUND_ROUTES = 3


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


class CallFactory:
    """Builds calls for one tenant."""

    def __init__(self, tenant: Tenant) -> None:
        """Bind the factory to a tenant's dial plan, time zone and limits."""
        self.tenant = tenant

    def make(self, rng: random.Random, t0: int, counter: ChannelCounter, seq_base: int) -> list[Leg]:
        """Generate one call starting at UTC epoch ``t0``.

        Args:
            rng: The call's randomness.
            t0: Call start (UTC epoch seconds).
            counter: The day's channel counter.
            seq_base: First ``Leg.seq`` to use (legs get consecutive values).

        Returns:
            The call's legs (at least one).
        """
        kind = _pick(rng, SCENARIOS)
        call = _Call(self.tenant, rng, t0, counter)
        legs: list[Leg] = getattr(call, kind)()
        legs = call.with_forks(legs)
        for i, leg in enumerate(legs):
            leg.seq = seq_base + i
        return legs


class _Call(CallBuilder):
    """The scenarios: each returns the legs the PBX writes for one kind of call."""

    def internal(self) -> list[Leg]:
        a = self.ext()
        b = self.ext(a.number)
        disposition = _pick(self.rng, INTERNAL_DISPOSITIONS)
        answer, end = self.outcome(self.t0, disposition == "ANSWERED")
        if disposition in ("BUSY", "FAILED"):
            end = self.t0 + self.rng.randint(0, 3)
        leg = self.ext_leg(
            a,
            start=self.t0,
            answer=answer,
            end=end,
            session=self.session(self.t0, a.number),
            **self.dial_fields(b, disposition),
            dcontext="from-internal",
            disposition=disposition,
            userfield="Internal",
        )
        self.record(leg, b.number)
        legs = [leg]
        if disposition in ("NO ANSWER", "BUSY") and self.rng.random() < VOICEMAIL_SHARE:
            legs.append(self.voicemail(leg, b.number))
        return legs

    def _outside_call(self) -> tuple[str, str, int]:
        """An outside caller's number and name, and the trunk their call comes in on."""
        caller, cnam = inbound_caller(self.rng, self.tenant.plan.country)
        return caller, cnam, self.trunk()

    def _arrival(
        self,
        caller: str,
        cnam: str,
        trunk: int,
        line: tuple[str, str] | None = None,
        /,
        *,
        answer: int,
        end: int,
        disposition: str,
        rings: Extension | None = None,
        **fields: object,
    ) -> Leg:
        """The leg of an outside call that comes in over ``trunk`` at the call's start.

        Args:
            caller: The caller's number.
            cnam: The caller's name.
            trunk: The trunk the call comes in on.
            line: The call's trunk channel and session, when drawn already (:meth:`_line`).
            answer: Answer epoch (``NO_ANSWER`` if nobody answered).
            end: End epoch.
            disposition: The leg's disposition.
            rings: The extension the call rings directly, if any (its destination fields).
            **fields: The leg's other fields.
        """
        # Draw order (trunk channel, session, the rung extension's channel) is part of what a seed
        # generates: changing it would change every later channel name and session id.
        channel, session = line or self._line(caller, trunk)
        dial = self.dial_fields(rings, disposition) if rings is not None else {}
        return self.trunk_leg(
            caller,
            cnam,
            trunk,
            channel,
            start=self.t0,
            answer=answer,
            end=end,
            session=session,
            disposition=disposition,
            **dial,
            **fields,
        )

    def inbound(self) -> list[Leg]:
        caller, cnam, trunk = self._outside_call()
        target = self.ext()
        disposition = _pick(self.rng, (("ANSWERED", 70), ("NO ANSWER", 25), ("BUSY", 5)))
        answer, end = self.outcome(self.t0, disposition == "ANSWERED")
        if disposition == "BUSY":
            end = self.t0 + self.rng.randint(0, 2)
        leg = self._arrival(
            caller, cnam, trunk, answer=answer, end=end, disposition=disposition, rings=target
        )
        self.record(leg, target.number)
        legs = [leg]
        if disposition != "ANSWERED" and self.rng.random() < VOICEMAIL_SHARE:
            legs.append(self.voicemail(leg, target.number))
        return legs

    def _line(self, caller: str, trunk: int) -> tuple[str, str]:
        """A new outside call's trunk channel and session (drawn in this order)."""
        channel = self.chan(f"trunk_{trunk}")
        return channel, self.session(self.t0, caller)

    def _hunt(self, group: HuntGroup, kind: str) -> list[Leg]:
        """Inbound call to a ring group or queue: one leg per member rung."""
        caller, cnam, trunk = self._outside_call()
        channel, session = line = self._line(caller, trunk)
        legs: list[Leg] = []
        start = self.t0
        is_queue = kind == "QUEUE"
        if not is_queue and self.rng.random() < 0.4:
            # Caller goes through the auto attendant first (same channel, same uniqueid).
            ivr_end = start + self.rng.randint(4, 20)
            legs.append(self._ivr_leg(caller, cnam, trunk, line, ivr_end))
            start = ivr_end
        members = [self.tenant.plan.ext(m) for m in group.members]
        dial_all = "&".join(f"PJSIP/{m.number}" for m in members)
        template = self.trunk_leg(
            caller,
            cnam,
            trunk,
            channel,
            start=start,
            answer=NO_ANSWER,
            end=start,
            session=session,
            dst=group.number,
            dstchannel="",
            lastapp="Queue" if is_queue else "Dial",
            lastdata=f"{group.number},t,,,300" if is_queue else dial_all,
            disposition="NO ANSWER",
            dstchannel_ext="",
            dstanswer="",
            action_type=f"{kind}[{group.number}]",
        )
        if legs:
            template.dcontext = "ivr-1"
        wait = int(self.rng.lognormvariate(math.log(25), 0.8)) + 3 if is_queue else self.ring()
        wait = min(wait, self.tenant.config.max_call_seconds // 4)
        if self.rng.random() < (0.8 if is_queue else 0.85):
            winner = self.rng.choice(members)
            answer = start + wait
            end = answer + self.talk(answer)
            for m in members:
                if m is winner:
                    leg = self.member_leg(template, m, answer, end, "ANSWERED")
                    self.record(leg, group.number, m.number, "queue" if is_queue else "monitor")
                elif self.rng.random() < 0.1:
                    leg = self.member_leg(template, m, NO_ANSWER, start + self.rng.randint(0, 1), "BUSY")
                else:
                    leg = self.member_leg(template, m, NO_ANSWER, answer, "NO ANSWER")
                legs.append(leg)
            return legs
        if is_queue:
            # Abandoned: the queue itself answered (music on hold), so the PBX writes ANSWERED with
            # the waiting time as billsec although nobody talked.
            gave_up = start + wait + self.rng.randint(10, 120)
            legs.append(template.clone(answer=start, end=gave_up, disposition="ANSWERED"))
            if self.rng.random() < 0.5:
                legs += [self.member_leg(template, m, NO_ANSWER, gave_up, "NO ANSWER") for m in members]
            return legs
        for m in members:
            legs.append(self.member_leg(template, m, NO_ANSWER, start + RING_TIMEOUT, "NO ANSWER"))
        if self.rng.random() < VOICEMAIL_SHARE:
            legs.append(self.voicemail(legs[-1], members[0].number))
        return legs

    def ringgroup(self) -> list[Leg]:
        return self._hunt(self.rng.choice(self.tenant.plan.ring_groups), "RINGGROUP")

    def queue(self) -> list[Leg]:
        return self._hunt(self.rng.choice(self.tenant.plan.queues), "QUEUE")

    def _ivr_leg(self, caller: str, cnam: str, trunk: int, line: tuple[str, str] | None, end: int) -> Leg:
        """The auto attendant's leg of an outside call (its ``line`` drawn now when None)."""
        return self._arrival(
            caller,
            cnam,
            trunk,
            line,
            answer=self.t0,
            end=end,
            disposition="ANSWERED",
            dst=IVR_NUMBER,
            dstchannel="",
            lastapp="BackGround",
            lastdata="custom/welcome",
            dstchannel_ext="",
            dstanswer="",
            action_type=f"IVR[{IVR_NUMBER}]",
        )

    def ivr(self) -> list[Leg]:
        """Caller hangs up in the auto attendant."""
        caller, cnam, trunk = self._outside_call()
        end = self.t0 + self.rng.randint(2, 45)
        return [self._ivr_leg(caller, cnam, trunk, None, end)]

    def outbound(self) -> list[Leg]:
        user = self.ext()
        number = dialled_number(self.rng, self.tenant.plan.country)
        trunk = self.trunk()
        disposition = _pick(self.rng, OUTBOUND_DISPOSITIONS)
        answer, end = self.outcome(self.t0, disposition == "ANSWERED")
        if disposition != "ANSWERED" and disposition != "NO ANSWER":
            end = self.t0 + self.rng.randint(0, 4)
        leg = self.ext_leg(
            user,
            start=self.t0,
            answer=answer,
            end=end,
            session=self.session(self.t0, user.number),
            dcontext=f"outbound-route-{self.rng.randint(1, OUTBOUND_ROUTES)}",
            **outside_dial_fields(trunk, number, disposition, timeout=60),
            disposition=disposition,
            userfield="Outbound",
        )
        self.record(leg, number)
        shape = self._outbound_shape()
        if shape == "parallel":
            return [leg, self._losing_trunk_leg(leg, number, trunk)]
        if shape == "twin":
            return self._via_local_channel(leg, number)
        return [leg]

    def _outbound_shape(self) -> str:
        """``parallel``, ``twin`` or ``plain``: drawn only when a shape is switched on."""
        parallel, twin = self.tenant.config.parallel_trunk_share, self.tenant.config.twin_leg_share
        if not parallel and not twin:
            return "plain"
        draw = self.rng.random()
        if draw < parallel:
            return "parallel"
        return "twin" if draw < parallel + twin else "plain"

    def _losing_trunk_leg(self, leg: Leg, number: str, trunk: int) -> Leg:
        """Both trunks dialled at once: ``leg`` (its trunk won) gets the losing trunk's leg beside it.

        Asterisk writes one CDR per dialled channel, sharing uniqueid, channel, start and lastdata.
        The loser rang until the winner answered (or the dial ended) and is NO ANSWER.
        """
        other = 3 - trunk  # the plan has two trunks
        both = f"PJSIP/trunk_{trunk}/{number}&PJSIP/trunk_{other}/{number},60,T"
        leg.lastdata = both
        rang_until = leg.answer if leg.answer != NO_ANSWER else leg.end
        return leg.clone(
            **{**outside_dial_fields(other, number, "NO ANSWER", timeout=60), "lastdata": both},
            answer=NO_ANSWER,
            end=max(leg.start, rang_until),
            disposition="NO ANSWER",
            recordings=(),
            rec_spans=(),
        )

    def _via_local_channel(self, leg: Leg, number: str) -> list[Leg]:
        """The call went out through a Local channel: the caller's leg to ``Local/...;1`` and the
        Local channel's own leg (``;2``, its own uniqueid) to the trunk, in the same session.

        Answered, both legs are ANSWERED for the same conversation; the trunk side sees the answer
        first (up to a second earlier). The recording stays with the caller's leg.
        """
        local = f"Local/{number}@{leg.dcontext}-{self.counter.next():08x}"
        twin = leg.clone(
            uid=f"{self.t0}.{self.counter.next()}",
            channel=f"{local};2",
            channel_ext="",
            device_info="",
            nat_call="no",
            wave_src="0",
            recordings=(),
            rec_spans=(),
        )
        if leg.answer != NO_ANSWER:
            twin.answer = max(leg.start, leg.answer - self.rng.randint(0, 1))
        leg.dstchannel = "" if leg.disposition == "FAILED" else f"{local};1"
        leg.lastdata = f"Local/{number}@{leg.dcontext}/n"
        leg.dstchannel_ext = ""
        leg.dst_trunk = ""
        return [leg, twin]

    def external(self) -> list[Leg]:
        """Trunk to trunk: an inbound call forwarded to a user's mobile (follow me)."""
        caller, cnam = inbound_caller(self.rng, self.tenant.plan.country)
        user = self.ext()
        mobile = dialled_number(self.rng, self.tenant.plan.country)
        trunk_in, trunk_out = 1, 2
        answered = self.rng.random() < 0.7
        answer, end = self.outcome(self.t0, answered)
        disposition = "ANSWERED" if answered else "NO ANSWER"
        leg = self._arrival(
            caller,
            cnam,
            trunk_in,
            answer=answer,
            end=end,
            disposition=disposition,
            rings=None,  # it rings a mobile over the other trunk instead
            **outside_dial_fields(trunk_out, mobile, disposition, timeout=45),
            userfield="External",
            action_owner=user.number,
            action_type=f"FOLLOWME[{user.number}]",
        )
        return [leg]

    def _answered_inbound(self) -> tuple[Leg, Extension]:
        caller, cnam, trunk = self._outside_call()
        first = self.ext()
        answer = self.t0 + self.ring()
        talk = min(self.talk(answer), self.tenant.config.max_call_seconds // 2)
        leg = self._arrival(
            caller, cnam, trunk, answer=answer, end=answer + talk, disposition="ANSWERED", rings=first
        )
        self.record(leg, first.number)
        return leg, first

    def transfer(self) -> list[Leg]:
        """Answered, then transferred: a second leg with a new start and the same uniqueid.

        The transfer opens a new session owned by the transferring extension (docs/ucm-protocol.md, "Call
        shapes"), so its session epoch marks the leg's own start.
        """
        first_leg, first = self._answered_inbound()
        second = self.ext(first.number)
        start = first_leg.end
        answer, end = self.outcome(start, self.rng.random() < 0.8)
        disposition = "ANSWERED" if answer != NO_ANSWER else "NO ANSWER"
        leg = first_leg.clone(
            start=start,
            answer=answer,
            end=end,
            session=self.session(start, first.number),
            **self.dial_fields(second, disposition),
            dcontext="from-internal-xfer",
            disposition=disposition,
            action_owner=first.number,
            action_type="TRANSFER",
            recordings=(),
            rec_spans=(),
        )
        self.record(leg, second.number)
        return [first_leg, leg]

    def park(self) -> list[Leg]:
        """Answered, parked, picked up elsewhere: the pickup leg keeps the older uniqueid."""
        first_leg, first = self._answered_inbound()
        if self.rng.random() < 0.15:
            return [first_leg]  # caller hung up while parked: no pickup leg
        picker = self.ext(first.number)
        slot = self.rng.choice(PARK_SLOTS)
        pickup = min(first_leg.end + self.rng.randint(10, 600), self.deadline - 2)
        pickup = max(pickup, first_leg.end + 1)
        leg = self.ext_leg(
            picker,
            start=pickup,
            answer=pickup,
            end=pickup + self.talk(pickup),
            session=self.session(pickup, picker.number),
            dst=slot,
            dcontext="from-internal",
            dstchannel=first_leg.channel,
            lastapp="ParkedCall",
            lastdata=f"default,{slot}",
            disposition="ANSWERED",
            userfield="Internal",
            dstchannel_ext=first_leg.channel_ext,
            dstanswer=slot,
            action_type="PARKEDCALL",
        )
        self.record(leg, slot)
        return [first_leg, leg]
