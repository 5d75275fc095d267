"""Ask a tenant's PBX what it really is: can we log in, what does its clock say, do its CDRs agree
with the zone we were told? Used by ``audiapro tenant test`` and when ``tenant add/set`` changes how
the PBX is reached or read.

Two independent witnesses for the zone: the PBX clock (``getSystemStatus`` reports local time with
its UTC offset) and the UTC epochs inside the CDRs themselves (``audiapro.cdr.zonecheck``). Either
one contradicting the tenant's zone means every leg would be stored hours off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from audiapro.cdr.zonecheck import check_zone, format_offset
from audiapro.ucm.client import UcmClient
from audiapro.ucm.errors import UcmError, UcmTlsError, UcmTransportError

#: The CDR page of the check covers the last day (a quiet PBX may have had no call for hours).
CHECK_SPAN = timedelta(days=1)
#: A PBX clock further off than this is mentioned (calls still load: their times come from the PBX).
CLOCK_DRIFT_S = 60


@dataclass
class TenantCheck:
    """What the PBX said, one line per finding.

    Attributes:
        lines: ``(label, text, ok)`` in the order checked.
        unreachable: The PBX could not be reached at all (no verdict about the settings).
    """

    lines: list[tuple[str, str, bool]] = field(default_factory=list)
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        """Every finding agrees with the tenant's settings."""
        return all(ok for _, _, ok in self.lines)

    def add(self, label: str, text: str, ok: bool) -> None:
        """Record one finding."""
        self.lines.append((label, text, ok))


def check_tenant(client: UcmClient, timezone: str, *, now: datetime) -> TenantCheck:
    """Log in, compare the PBX clock and one page of the PBX's last day of CDRs with ``timezone``.

    Never raises for PBX trouble: a failed step becomes a line (later steps that need it are skipped).

    Args:
        client: A client for the tenant (its login guard decides whether a login may be tried).
        timezone: The tenant's IANA zone.
        now: Current time (aware).
    """
    result = TenantCheck()
    conn = client.connection
    try:
        client.login()
    except UcmError as exc:
        result.unreachable = isinstance(exc, UcmTransportError) and not isinstance(exc, UcmTlsError)
        result.add("login", _one_line(exc), False)
        return result
    result.add("login", f"ok: API user {conn.api_user} at {conn.scheme}://{conn.host}:{conn.port}", True)
    zone = ZoneInfo(timezone)
    pbx_now = now
    try:
        clock = client.system_time()
    except UcmError as exc:
        result.add("PBX clock", f"not readable ({_one_line(exc)})", True)  # an older firmware: no verdict
    else:
        pbx_now = clock
        seen = clock.utcoffset() or timedelta(0)
        # The zone's offset at the PBX's own instant: right even when our clock and the PBX's differ.
        expected = clock.astimezone(zone).utcoffset() or timedelta(0)
        said = f"{clock:%Y-%m-%d %H:%M:%S} {format_offset(seen)}"
        text = f"{said}; zone {timezone} is {format_offset(expected)} then"
        if seen != expected:
            result.add("PBX clock", f"{text}: the PBX runs at another offset, set the tenant's zone", False)
        else:
            drift = abs((clock - now).total_seconds())
            late = f" (clock {drift:.0f} s off ours)" if drift > CLOCK_DRIFT_S else ""
            result.add("PBX clock", f"{text}: agrees{late}", True)
    try:
        page = next(iter(client.iter_cdr_pages(pbx_now - CHECK_SPAN, pbx_now)), None)
    except UcmError as exc:
        result.add("CDRs", f"cdrapi failed ({_one_line(exc)})", False)
        return result
    legs = page.legs if page is not None else []
    verdict = check_zone(legs, timezone)
    if not verdict.decided or verdict.seen is None or verdict.expected is None:
        result.add("CDRs", f"{len(legs)} leg(s) in the last day: too few to check the zone", True)
    elif verdict.mismatch:
        result.add(
            "CDRs",
            f"{len(legs)} leg(s): their UTC epochs say {format_offset(verdict.seen)}, zone {timezone} says "
            f"{format_offset(verdict.expected)}: set the tenant's zone",
            False,
        )
    else:
        result.add("CDRs", f"{len(legs)} leg(s) on the first page: times agree with {timezone}", True)
    return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
