"""Hand-built legs of one small PBX-local day for the insights tests (no tests here).

Tenant ``acme`` in New York; Monday 2026-03-02 (EST, UTC-5). Six calls:

* A 09:00 inbound from +12125550100, answered by 1001 after 5 s ring, 60 s talk;
* D 09:00:30 internal 1001 -> 1002, answered after 4 s, 30 s talk (overlaps A);
* B 09:30 inbound from +12125550111 rings 1001 for 20 s, nobody answers;
* C 10:00 outbound 1002 -> +44 20 7946 0011 (London) over Carrier-A, 10 s ring, 120 s talk;
* E 15:00 inbound from +13055550123 rings 1002 for 20 s, then voicemail takes it (15 s);
* G 16:00 outbound 1002 -> +13055550123 (calls E back), 5 s ring, 60 s talk.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from audiapro.tenants import TenantSettings
from tests.integration.warehouse_support import TENANT, leg

DAY = date(2026, 3, 2)
TZ = "America/New_York"
SETTINGS = TenantSettings(name=TENANT, timezone=TZ)
NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A UTC instant from the local (EST) wall clock of :data:`DAY`."""
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC) + timedelta(hours=5)


def _inbound(key: str, session: str, start: datetime, caller: str, ext: str, **kw: Any) -> dict[str, Any]:
    answered = kw.pop("answered", True)
    fields: dict[str, Any] = {
        "src_raw": caller[2:],
        "src_e164": caller,
        "dst_raw": ext,
        "answered_by": ext if answered else None,
        "dstchannel": f"PJSIP/{ext}-{key}",
        "action_type": "DIAL",
        "action_owner": ext,
        "src_trunk": "carrier",
    }
    return leg(key, session=session, start=start, answered=answered, **{**fields, **kw})


def _outbound(key: str, session: str, start: datetime, ext: str, number: str, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "direction": "outbound",
        "src_raw": ext,
        "src_e164": None,
        "dst_raw": number,
        "dst_e164": number,
        "answered_by": None,
        "dstchannel": f"PJSIP/trunk_1/{number}",
        "action_type": "DIAL",
        "action_owner": ext,
        "src_trunk": None,
        "dst_trunk": "Carrier-A",
        "channel": f"PJSIP/{ext}-{key}",
        "dcontext": "outbound-route-1",
    }
    return leg(key, session=session, start=start, **{**fields, **kw})


def early_legs() -> list[dict[str, Any]]:
    """Calls A, D, B, C (what a poll before the afternoon loaded)."""
    return [
        _inbound("a1", "sA", at(9), "+12125550100", "1001", ring_s=5, billsec=60),
        leg(
            "d1",
            session="sD",
            start=at(9, 0, 30),
            ring_s=4,
            billsec=30,
            direction="internal",
            src_raw="1001",
            src_e164=None,
            dst_raw="1002",
            answered_by="1002",
            dstchannel="PJSIP/1002-d1",
            action_type="DIAL",
            action_owner="1001",
            src_trunk=None,
            channel="PJSIP/1001-d1",
        ),
        _inbound("b1", "sB", at(9, 30), "+12125550111", "1001", answered=False, ring_s=20),
        _outbound("c1", "sC", at(10), "1002", "+442079460011", ring_s=10, billsec=120),
    ]


def late_legs() -> list[dict[str, Any]]:
    """Calls E (two legs) and G, loaded late."""
    return [
        _inbound("e1", "sE", at(15), "+13055550123", "1002", answered=False, ring_s=20),
        _inbound(
            "e2",
            "sE",
            at(15, 0, 20),
            "+13055550123",
            "1002",
            ring_s=0,
            billsec=15,
            lastapp="VoiceMail",
            action_type="VM",
            answered_by=None,
            dstchannel=None,
        ),
        _outbound("g1", "sG", at(16), "1002", "+13055550123", ring_s=5, billsec=60),
    ]
