"""Start detached background processes, remember them in PID files, and stop them for sure.

``prefect worker start`` ignores SIGTERM and its flow runs live in their own sessions, so "stop" means:
the right signal sequence with a grace period after each signal, SIGKILL as the last resort, and
then every descendant that outlived its parent. A PID file also records the process's start time
(``/proc/<pid>/stat`` field 22), so a recycled PID is never mistaken for ours. Linux only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

#: How often the stop loop looks whether a process is gone.
POLL_SECONDS = 0.1
#: Grace for descendants that outlived their parent (flow runs of a killed worker), after SIGTERM.
ORPHAN_GRACE_SECONDS = 3.0
PID_SUFFIX = ".pid.json"


@dataclass(frozen=True)
class StopPlan:
    """How to stop one kind of process.

    Attributes:
        signals: Signals sent in order; each is followed by up to ``grace_seconds`` of waiting.
        grace_seconds: How long to wait for an exit after each signal before the next one.
    """

    signals: tuple[signal.Signals, ...]
    grace_seconds: float


#: Workers ignore SIGTERM; a first SIGINT starts a graceful shutdown, a second one makes the worker
#: kill itself (Prefect 3.9, see docs/environment.md).
WORKER_STOP = StopPlan(signals=(signal.SIGINT, signal.SIGINT), grace_seconds=5.0)
#: The API server (uvicorn) shuts down on SIGTERM within a few seconds.
SERVER_STOP = StopPlan(signals=(signal.SIGTERM,), grace_seconds=15.0)
#: A Postgres cluster (the Prefect server's, AUDIAPRO_PREFECT_DB=postgres): SIGINT is its fast shutdown.
DATABASE_STOP = StopPlan(signals=(signal.SIGINT,), grace_seconds=30.0)
#: `audiapro simulate` stops on Ctrl-C (KeyboardInterrupt).
SIMULATOR_STOP = StopPlan(signals=(signal.SIGINT, signal.SIGTERM), grace_seconds=5.0)


@dataclass(frozen=True)
class Tracked:
    """A background process we started.

    Attributes:
        name: Unique name within a run directory (e.g. ``worker-1``).
        kind: ``server``, ``worker`` or ``simulator``: decides the stop plan.
        pid: Process id.
        start_ticks: Start time in clock ticks since boot; tells our process from a recycled PID.
    """

    name: str
    kind: str
    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 = state), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces or ')': split at the last one.
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int, ticks: int) -> bool:
    fields = _stat_fields(pid)
    if fields is None:
        return False
    # A zombie has exited; only its parent's wait() is missing.
    return fields[0] != "Z" and int(fields[19]) == ticks


def is_running(process: Tracked) -> bool:
    """Whether the tracked process still runs (same PID *and* same start time, not a zombie)."""
    return _alive(process.pid, process.start_ticks)


def descendants(pid: int) -> set[tuple[int, int]]:
    """Every live descendant of ``pid`` as ``(pid, start_ticks)``, found through ``/proc``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append((int(entry.name), int(fields[19])))
    found: set[tuple[int, int]] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child[0])
    return found


def spawn(
    name: str,
    kind: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
) -> tuple[Tracked, subprocess.Popen[bytes]]:
    """Start ``argv`` detached (own session, stdin closed, output appended to ``log_path``).

    Secrets must travel in ``env``, never in ``argv`` (the process list is world-readable).

    Returns:
        The tracking record and the Popen handle (callers that outlive the child should ``wait()``).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal that ran `make up` must not reach it
        )
    ticks = start_ticks(proc.pid)
    return Tracked(name=name, kind=kind, pid=proc.pid, start_ticks=ticks or 0), proc


def save(run_dir: Path, process: Tracked) -> None:
    """Write the process's PID file into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{process.name}{PID_SUFFIX}").write_text(json.dumps(asdict(process)))


def load_all(run_dir: Path) -> list[Tracked]:
    """Every process recorded in ``run_dir`` (unreadable PID files are skipped)."""
    if not run_dir.is_dir():
        return []
    found: list[Tracked] = []
    for path in sorted(run_dir.glob(f"*{PID_SUFFIX}")):
        try:
            found.append(Tracked(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return found


def forget(run_dir: Path, process: Tracked) -> None:
    """Remove the process's PID file."""
    (run_dir / f"{process.name}{PID_SUFFIX}").unlink(missing_ok=True)


def _wait_gone(targets: Iterable[tuple[int, int]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    pending = set(targets)
    while True:
        pending = {t for t in pending if _alive(*t)}
        if not pending or time.monotonic() >= deadline:
            return not pending
        time.sleep(POLL_SECONDS)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(process: Tracked, plan: StopPlan, *, popen: subprocess.Popen[bytes] | None = None) -> bool:
    """Stop ``process`` and everything it started; SIGKILL whatever ignores the polite signals.

    Args:
        process: The process to stop.
        plan: Signals and grace period for its kind.
        popen: Its Popen handle when it is our child, so the exit is reaped (no zombie is left).

    Returns:
        True when the process and all its descendants are gone.
    """
    target = (process.pid, process.start_ticks)
    # Flow runs start in their own sessions and are re-parented when the worker dies, so collect
    # the tree before and during the shutdown, not after it.
    family = descendants(process.pid) if _alive(*target) else set()
    for sig in plan.signals:
        if not _alive(*target):
            break
        _signal(process.pid, sig)
        if _wait_gone([target], plan.grace_seconds):
            break
        family |= descendants(process.pid)
    if _alive(*target):
        family |= descendants(process.pid)
        _signal(process.pid, signal.SIGKILL)
        _wait_gone([target], plan.grace_seconds)
    survivors = {t for t in family if _alive(*t)}
    for pid, _ in survivors:
        _signal(pid, signal.SIGTERM)
    if not _wait_gone(survivors, ORPHAN_GRACE_SECONDS):
        for pid, ticks in survivors:
            if _alive(pid, ticks):
                _signal(pid, signal.SIGKILL)
        _wait_gone(survivors, ORPHAN_GRACE_SECONDS)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=plan.grace_seconds)
    return not _alive(*target) and not any(_alive(*t) for t in family)


def plan_for(kind: str) -> StopPlan:
    """The stop plan of a process kind (``worker``, ``server``, ``simulator``; others: SIGTERM)."""
    return {
        "worker": WORKER_STOP,
        "server": SERVER_STOP,
        "simulator": SIMULATOR_STOP,
        "database": DATABASE_STOP,
    }.get(kind, StopPlan(signals=(signal.SIGTERM,), grace_seconds=5.0))
