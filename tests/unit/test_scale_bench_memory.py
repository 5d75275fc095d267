"""The scale bench lowers its PBXs' live-call rate where their live streams would not fit in memory.

The simulator generates a PBX's day of live calls at once; 1,000 PBXs at the default rate early in
the UTC day were ~30 GB and the kernel killed the run (issue 13's 1,000-tenant measurement).
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
GIB = 2**30


def _bench(monkeypatch: pytest.MonkeyPatch, available: float) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    module = importlib.import_module("scale_bench")
    monkeypatch.setattr(module, "_available_memory", lambda: available)
    return module


def test_a_thousand_pbxs_early_in_the_day_get_a_rate_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench(monkeypatch, available=20 * GIB)
    early = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    rate = bench.affordable_live_rate(10.0, 1000, early)
    need = 1000 * rate * (23 * 60) * bench.LIVE_CALL_BYTES
    assert 0 < rate < 10.0 and need <= bench.LIVE_MEMORY_SHARE * 20 * GIB * 1.001


def test_a_rate_that_fits_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench(monkeypatch, available=20 * GIB)
    assert bench.affordable_live_rate(10.0, 2, datetime(2026, 12, 8, 1, 0, tzinfo=UTC)) == 10.0
    assert bench.affordable_live_rate(10.0, 1000, datetime(2026, 12, 8, 23, 30, tzinfo=UTC)) == 10.0
