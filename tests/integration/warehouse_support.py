"""Canonical frames and load helpers shared by the ``test_warehouse_*`` and import tests (no tests here)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from audiapro.cdr.schema import LEG_COLUMN_NAMES, LEG_COLUMNS, REJECT_COLUMNS
from audiapro.warehouse import LoadResult, RunInfo, calls, cdr_legs, load_batch

TENANT = "acme"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
_DTYPES = {"utc": "datetime64[us, UTC]", "int": "Int64", "str": object, "json": object}


def leg(
    key: str,
    *,
    session: str | None = "s1",
    start: datetime = T0,
    ring_s: int = 5,
    billsec: int = 30,
    answered: bool = True,
    tenant: str = TENANT,
    **overrides: Any,
) -> dict[str, Any]:
    """One valid canonical leg as a dict (override any column by name)."""
    answer_at = start + timedelta(seconds=ring_s) if answered else None
    end_at = start + timedelta(seconds=ring_s + (billsec if answered else 0))
    row: dict[str, Any] = {
        "tenant": tenant,
        "leg_key": key,
        "acct_id": str(zlib.crc32(key.encode()) % 100_000),
        "uniqueid": f"{int(start.timestamp())}.{len(key)}",
        "session": session,
        "start_local": start.strftime("%Y-%m-%d %H:%M:%S"),
        "start_at": start,
        "answer_at": answer_at,
        "end_at": end_at,
        "duration_s": int((end_at - start).total_seconds()),
        "billsec_s": billsec if answered else 0,
        "disposition": "ANSWERED" if answered else "NO ANSWER",
        "direction": "inbound",
        "src_raw": "2125550100",
        "dst_raw": "6500",
        "src_e164": "+12125550100",
        "dst_e164": None,
        "caller_name": "Alice",
        "answered_by": "1001" if answered else None,
        "action_type": "QUEUE[6500]",
        "action_owner": "6500",
        "src_trunk": "carrier",
        "dst_trunk": None,
        "channel": "PJSIP/trunk_1-0001",
        "dstchannel": f"PJSIP/{key}-0002",
        "dcontext": "from-trunk",
        "lastapp": "Dial",
        "recording_files": "[]",
        "recording_count": 0,
        "raw": json.dumps({"uniqueid": key, "disposition": "ANSWERED" if answered else "NO ANSWER"}),
    }
    unknown = set(overrides) - set(row)
    if unknown:
        raise KeyError(f"not canonical columns: {sorted(unknown)}")
    row.update(overrides)
    return row


def make_legs(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A canonical frame from leg dicts, with the dtypes normalization produces."""
    frame = pd.DataFrame(list(rows), columns=list(LEG_COLUMN_NAMES))
    for name, kind in LEG_COLUMNS.items():
        if kind == "utc":
            frame[name] = pd.to_datetime(frame[name], utc=True).astype(_DTYPES[kind])
        elif kind == "int":
            frame[name] = frame[name].astype("Int64")
        else:
            series = frame[name].astype(object)
            frame[name] = series.where(series.notna(), None)
    return frame


def bulk_legs(n: int, *, tenant: str = TENANT, legs_per_call: int = 3, seed: int = 7) -> pd.DataFrame:
    """``n`` valid legs built column-wise (fast enough for 100k+ rows)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    start = pd.Series(pd.Timestamp(T0) + pd.to_timedelta(idx * 7, unit="s")).astype("datetime64[us, UTC]")
    billsec = pd.Series(rng.integers(0, 600, n)).astype("Int64")
    answered = billsec.gt(0).to_numpy(dtype=bool)
    answer_at = (start + pd.Timedelta(seconds=4)).where(answered)
    end_at = start + pd.to_timedelta(billsec.astype("int64") + 4, unit="s")
    text = pd.Series(idx).astype(str)
    frame = pd.DataFrame(
        {
            "tenant": tenant,
            "leg_key": "k" + text,
            "acct_id": text,
            "uniqueid": (1_770_000_000 + idx // legs_per_call).astype(str),
            "session": "s" + pd.Series(idx // legs_per_call).astype(str),
            "start_local": start.dt.strftime("%Y-%m-%d %H:%M:%S"),
            "start_at": start,
            "answer_at": answer_at,
            "end_at": end_at,
            "duration_s": (billsec + 4).astype("Int64"),
            "billsec_s": billsec,
            "disposition": np.where(answered, "ANSWERED", "NO ANSWER"),
            "direction": "inbound",
            "src_raw": "212555" + (idx % 10_000).astype(str),
            "dst_raw": "6500",
            "src_e164": "+1212555" + (idx % 10_000).astype(str),
            "dst_e164": None,
            "caller_name": 'Caller, "quoted"',
            "answered_by": pd.Series("1001", index=idx).where(answered, None),
            "action_type": "QUEUE[6500]",
            "action_owner": "6500",
            "src_trunk": "carrier",
            "dst_trunk": None,
            "channel": "PJSIP/trunk_1-" + text,
            "dstchannel": "PJSIP/1001-" + text,
            "dcontext": "from-trunk",
            "lastapp": "Dial",
            "recording_files": '["2026-03/auto-' + text + '.wav"]',
            "recording_count": pd.Series(np.ones(n, dtype="int64")).astype("Int64"),
            "raw": '{"AcctId":"' + text + '","userfield":"Inbound"}',
        }
    )
    for name, kind in LEG_COLUMNS.items():
        if kind in ("str", "json"):
            series = frame[name].astype(object)
            frame[name] = series.where(series.notna(), None)
    return frame[list(LEG_COLUMN_NAMES)]


def make_rejects(*rows: tuple[str, int | None, str, str | None]) -> pd.DataFrame:
    """A reject frame from ``(source, position, reason, raw)`` tuples."""
    frame = pd.DataFrame(list(rows), columns=list(REJECT_COLUMNS))
    frame["position"] = frame["position"].astype("Int64")
    return frame


NO_REJECTS = make_rejects()


# --- loading and reading back ------------------------------------------------------------------

POLL = RunInfo(kind="poll")


def load(engine: sa.Engine, rows: list[dict[str, Any]], **kwargs: Any) -> LoadResult:
    """Load canonical leg dicts of :data:`TENANT` as one poll batch (no rejects unless given)."""
    kwargs.setdefault("rejects", NO_REJECTS)
    kwargs.setdefault("run", POLL)
    return load_batch(engine, tenant=TENANT, legs=make_legs(rows), **kwargs)


def counts(result: LoadResult) -> tuple[int, int, int]:
    """``(inserted, updated, unchanged)`` of a load."""
    return result.inserted, result.updated, result.unchanged


def stored_legs(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every stored leg by ``leg_key``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cdr_legs).order_by(cdr_legs.c.leg_key)).mappings().all()
    return {row["leg_key"]: dict(row) for row in rows}


def stored_calls(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every stored call by ``session``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(calls)).mappings().all()
    return {row["session"]: dict(row) for row in rows}


def union_seconds(intervals: list[tuple[int, int]]) -> int:
    """Reference: length of the union of closed intervals, by merging them in start order."""
    total, reach = 0, None
    for begin, end in sorted(intervals):
        if reach is None or begin > reach:
            total += end - begin
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total
