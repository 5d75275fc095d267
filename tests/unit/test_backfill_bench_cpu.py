"""The backfill bench's CPU accounting: per thread by name, and the idle-machine ceiling it implies."""

from __future__ import annotations

import hashlib
import importlib
import threading
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("backfill_bench")


def _burn(rounds: int) -> None:
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="per-thread CPU comes from /proc")
def test_threads_are_counted_by_name_and_the_main_thread_exactly(bench: ModuleType) -> None:
    burned, release = threading.Event(), threading.Event()

    def work() -> None:
        _burn(400_000)
        burned.set()
        release.wait(30)  # alive until the sampler has seen it: no race with its interval

    with bench.ThreadCpu() as cpu:
        worker = threading.Thread(target=work, name="backfill-prepare")
        worker.start()
        assert burned.wait(30)
        cpu._sample()
        release.set()
        worker.join()
        _burn(100_000)
    threads = cpu.figures["threads_s"]
    # Other threads of the test process (e.g. Prefect's, left by earlier tests) are counted too.
    assert {"main", "backfill-prepare"} <= set(threads)
    assert threads["backfill-prepare"] > 0 and threads["main"] > 0
    assert cpu.figures["process_s"] >= sum(threads.values()) - 0.05


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="per-thread CPU comes from /proc")
def test_a_thread_already_running_counts_only_what_it_spends_inside_the_block(bench: ModuleType) -> None:
    burned, release = threading.Event(), threading.Event()

    def earlier() -> None:
        _burn(400_000)  # before the block: not the block's CPU
        burned.set()
        release.wait(30)

    thread = threading.Thread(target=earlier, name="started-before")
    thread.start()
    assert burned.wait(30)
    try:
        with bench.ThreadCpu() as cpu:
            _burn(50_000)
    finally:
        release.set()
        thread.join()
    assert cpu.figures["threads_s"].get("started-before", 0.0) < 0.05
    assert cpu.figures["process_s"] >= sum(cpu.figures["threads_s"].values()) - 0.05


def test_the_ceiling_names_the_client_interpreter_when_its_threads_need_the_most(
    bench: ModuleType,
) -> None:
    fetch = {"process_s": 14.0, "simulator_s": 16.0}
    backfill = {
        "process_s": 58.0,
        "simulator_s": 18.0,
        "postgres_s": 32.0,
        "threads_s": {"backfill-fetch": 18.0, "backfill-prepare": 34.0, "main": 6.0},
    }
    ceiling = bench.idle_ceiling(fetch, backfill, cores=2)
    assert ceiling["bound"] == "client_interpreter" and ceiling["fetch_only_s"] == 30.0
    assert ceiling["backfill_floor_s"] == {"client_interpreter": 58.0, "cores": 54.0, "pager_chain": 36.0}
    assert ceiling["ratio"] == pytest.approx(30.0 / 58.0, abs=1e-3)
    # One core: everything's CPU on it is the floor.
    assert bench.idle_ceiling(fetch, backfill, cores=1)["bound"] == "cores"


def test_no_ceiling_without_the_pager_thread_seen(bench: ModuleType) -> None:
    backfill = {"process_s": 1.0, "simulator_s": 1.0, "threads_s": {"main": 1.0}}
    assert bench.idle_ceiling({"process_s": 1.0, "simulator_s": 1.0}, backfill) == {}
