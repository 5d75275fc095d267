"""The simulated tenant's dial plan: extensions, ring groups, queues, trunks and external numbers.

External numbers come from ranges reserved for fiction (NANP 555-0100..0199, Ofcom drama ranges), so
generated CDRs never contain a real subscriber's number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FIRST_EXTENSION = 1000
RING_GROUP_NUMBERS = ("6400", "6401")
QUEUE_NUMBERS = ("6500", "6501")
IVR_NUMBER = "7000"
PARK_SLOTS = tuple(str(n) for n in range(701, 711))
TRUNK_NAMES = ("Carrier-A", "Carrier-B")
RING_GROUP_SIZES = (3, 5)
QUEUE_SIZES = (4, 6)

_FIRST_NAMES = (
    "Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hector", "Ines", "Jonah", "Keiko",
    "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Baker", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
)  # fmt: skip
#: Phone models reported in device_info (Wave = the softphone app, which also fills wave_*_seqid).
DEVICES = ("GXP2160", "GRP2614", "GXP2170", "WP820", "GRP2616", "Wave")
_CNAM = ("WIRELESS CALLER", "", "", "", "SMITH JOHN", "GARCIA MARIA", "CITY OF SPRINGFIELD", "TOLL FREE CALL")
_US_AREA_CODES = ("212", "646", "718", "917", "347", "516", "201", "973", "617", "305", "312", "415", "404")
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Extension:
    """A user extension."""

    number: str
    name: str
    device: str
    records: bool  # auto-recording enabled for this user


@dataclass(frozen=True)
class HuntGroup:
    """A ring group or queue and its members."""

    number: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The tenant's configuration, derived from the seed."""

    extensions: tuple[Extension, ...]
    ring_groups: tuple[HuntGroup, ...]
    queues: tuple[HuntGroup, ...]
    country: str
    by_number: dict[str, Extension] = field(default_factory=dict, compare=False, repr=False)

    def ext(self, number: str) -> Extension:
        """Look up an extension by number."""
        return self.by_number[number]


def build_plan(seed: int, n_extensions: int, country: str) -> Plan:
    """Derive the tenant's dial plan from the seed.

    Args:
        seed: Data seed.
        n_extensions: How many user extensions.
        country: ``"US"`` or ``"GB"``.
    """
    rng = random.Random(f"plan:{seed}")
    numbers: list[str] = []
    candidate = FIRST_EXTENSION
    while len(numbers) < n_extensions:
        numbers.append(str(candidate))
        # Real extension ranges have holes (people leave); skip a number now and then.
        candidate += 2 if rng.random() < 0.1 else 1
    extensions = tuple(
        Extension(
            number=n,
            name=f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}",
            device=rng.choices(DEVICES, weights=(5, 3, 3, 1, 2, 1))[0],
            records=rng.random() < 0.5,
        )
        for n in numbers
    )
    ring_groups = tuple(
        HuntGroup(g, tuple(rng.sample(numbers, rng.randint(*RING_GROUP_SIZES)))) for g in RING_GROUP_NUMBERS
    )
    queues = tuple(HuntGroup(q, tuple(rng.sample(numbers, rng.randint(*QUEUE_SIZES)))) for q in QUEUE_NUMBERS)
    return Plan(extensions, ring_groups, queues, country, {e.number: e for e in extensions})


def country_for_zone(tz: str) -> str:
    """Guess the numbering plan from the PBX zone (UK zones -> GB, everything else -> US)."""
    return "GB" if tz in ("Europe/London", "Europe/Belfast", "GB") else "US"


def inbound_caller(rng: random.Random, country: str) -> tuple[str, str]:
    """A caller as the trunk presents it: ``(number, cnam)``; the number may be withheld."""
    roll = rng.random()
    if roll < 0.025:
        return ANONYMOUS, "Anonymous"
    cnam = rng.choice(_CNAM)
    if country == "GB":
        local = rng.choice((f"07700900{rng.randrange(1000):03d}", f"02079460{rng.randrange(1000):03d}"))
        if roll < 0.2:
            return "+44" + local[1:], cnam
        if roll < 0.25:
            return f"+1{rng.choice(_US_AREA_CODES)}55501{rng.randrange(100):02d}", ""
        return local, cnam
    national = f"{rng.choice(_US_AREA_CODES)}55501{rng.randrange(100):02d}"
    if roll < 0.06:
        return f"+4420794600{rng.randrange(100):02d}", ""
    if roll < 0.25:
        return "1" + national, cnam
    if roll < 0.3:
        return "+1" + national, cnam
    return national, cnam


def dialled_number(rng: random.Random, country: str) -> str:
    """An external number as a user dials it (outbound ``dst``)."""
    roll = rng.random()
    if country == "GB":
        if roll < 0.05:
            return f"0012125550{rng.randrange(100, 200)}"
        return rng.choice((f"07700900{rng.randrange(1000):03d}", f"01134960{rng.randrange(1000):03d}"))
    national = f"{rng.choice(_US_AREA_CODES)}55501{rng.randrange(100):02d}"
    if roll < 0.05:
        return f"0114420794600{rng.randrange(100):02d}"
    if roll < 0.1:
        return f"180055501{rng.randrange(100):02d}"
    if roll < 0.55:
        return "1" + national
    return national
