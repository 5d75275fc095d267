"""Stopping background processes for sure: stubborn parents, orphaned children, recycled PIDs."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audiapro.ops import processes
from audiapro.ops.processes import StopPlan, Tracked

#: Behaves like `prefect worker start` at its worst: ignores SIGTERM and SIGINT, and has a child in
#: its own session (like a flow run) that ignores SIGTERM too.
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
    print("ready", flush=True)
    time.sleep(300)
    """
)
FAST = StopPlan(signals=(signal.SIGINT, signal.SIGINT), grace_seconds=0.5)


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[list[Tracked]]:
    """Processes a test starts; killed in teardown whatever happened."""
    started: list[Tracked] = []
    yield started
    for process in started:
        for pid, ticks in {(process.pid, process.start_ticks), *processes.descendants(process.pid)}:
            if processes.is_running(Tracked("x", "x", pid, ticks)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_for_line(log: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.05)


def test_stop_escalates_to_sigkill_and_takes_the_orphans_too(
    tmp_path: Path, spawned: list[Tracked], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "ORPHAN_GRACE_SECONDS", 0.5)
    log = tmp_path / "stubborn.log"
    tracked, popen = processes.spawn(
        "stubborn", "worker", [sys.executable, "-c", STUBBORN], env={}, log_path=log
    )
    spawned.append(tracked)
    wait_for_line(log, "ready")
    family = processes.descendants(tracked.pid)
    assert len(family) == 1

    assert processes.stop(tracked, FAST, popen=popen) is True
    assert not processes.is_running(tracked)
    assert not any(processes.is_running(Tracked("child", "x", pid, ticks)) for pid, ticks in family)
    assert popen.returncode == -signal.SIGKILL


def test_a_recycled_pid_is_never_signalled(tmp_path: Path, spawned: list[Tracked]) -> None:
    log = tmp_path / "sleeper.log"
    tracked, popen = processes.spawn(
        "sleeper", "simulator", [sys.executable, "-c", "import time; time.sleep(60)"], env={}, log_path=log
    )
    spawned.append(tracked)
    impostor = Tracked(name="old", kind="worker", pid=tracked.pid, start_ticks=tracked.start_ticks - 1)
    assert not processes.is_running(impostor)
    processes.stop(impostor, FAST)
    assert processes.is_running(tracked)  # untouched
    assert processes.stop(tracked, processes.SIMULATOR_STOP, popen=popen)


def test_pid_files_round_trip(tmp_path: Path) -> None:
    first = Tracked(name="server", kind="server", pid=123, start_ticks=456)
    second = Tracked(name="worker-1", kind="worker", pid=789, start_ticks=1011)
    for process in (first, second):
        processes.save(tmp_path, process)
    (tmp_path / f"broken{processes.PID_SUFFIX}").write_text("{not json")
    assert processes.load_all(tmp_path) == [first, second]
    processes.forget(tmp_path, first)
    assert processes.load_all(tmp_path) == [second]
    assert processes.load_all(tmp_path / "missing") == []
    assert processes.plan_for("worker") is processes.WORKER_STOP
