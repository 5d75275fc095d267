"""Toll-fraud scenarios the simulator can add to a day (``SimulatorConfig.fraud``).

* ``premium_night``: a compromised extension dials premium-rate numbers abroad at night, one call
  every ``spacing_s`` seconds from ``hour`` (local): answered, a few minutes each. The numbers come
  from Ofcom's drama premium-rate range (09098 790000-790999), so no real number is ever dialled.
* ``pumping_burst``: an extension places answered calls of a few seconds to one pumping-prone NANP
  area code (712, fictional 555-01xx numbers), one every ``spacing_s`` seconds: traffic pumping.

Ordinary days are unchanged: scenarios only add calls on their own day.
"""

from __future__ import annotations

import random
from datetime import datetime

from audiapro.ucm.simulator.builder import CallBuilder, ChannelCounter, Tenant, outside_dial_fields
from audiapro.ucm.simulator.config import FraudScenario
from audiapro.ucm.simulator.legs import Leg

#: UK premium-rate drama numbers, dialled from a NANP PBX (011 = international prefix).
PREMIUM_NUMBER = "01144909879{:04d}"
PREMIUM_NUMBER_GB = "0909879{:04d}"
#: A pumping-prone NANP area code with fictional subscriber numbers.
PUMPING_NUMBER = "1712555{:04d}"
FIRST_FICTIONAL = 100


def fraud_legs(tenant: Tenant, scenario: FraudScenario, counter: ChannelCounter, seed: int) -> list[Leg]:
    """The legs of a scenario's calls (one answered outbound leg each)."""
    rng = random.Random(f"{seed}:fraud:{scenario.kind}:{scenario.day.isoformat()}")
    user = tenant.plan.ext(scenario.extension) if scenario.extension else tenant.plan.extensions[0]
    first = int(datetime(scenario.day.year, scenario.day.month, scenario.day.day, scenario.hour,
                         tzinfo=tenant.zone).timestamp())  # fmt: skip
    legs = []
    for i in range(scenario.calls):
        t0 = first + i * scenario.spacing_s
        call = CallBuilder(tenant, rng, t0, counter)
        if scenario.kind == "premium_night":
            pattern = PREMIUM_NUMBER_GB if tenant.plan.country == "GB" else PREMIUM_NUMBER
            number = pattern.format(rng.randrange(1000))
            answer = t0 + call.ring()
            end = answer + rng.randint(120, 600)
        else:
            number = PUMPING_NUMBER.format(FIRST_FICTIONAL + rng.randrange(100))
            answer = t0 + rng.randint(1, 3)
            end = answer + rng.randint(2, 8)
        legs.append(
            call.ext_leg(
                user,
                start=t0,
                answer=answer,
                end=end,
                session=call.session(t0, user.number),
                dcontext="outbound-route-1",
                **outside_dial_fields(1, number, "ANSWERED", timeout=60),
                disposition="ANSWERED",
                userfield="Outbound",
            )
        )
    return legs
