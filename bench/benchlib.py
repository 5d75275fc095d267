"""Helpers the benchmarks share: throwaway databases, child processes with their peak RSS, machine facts.

Every measured method runs in a child process of its own (the bench script re-invoked with ``--run``),
so the parent's memory (data generation) never counts, and the child's peak RSS is read from the
kernel's accounting for exactly that child (``os.wait4``) after it exits.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

#: Environment variables a database URL is taken from, in order (``make bench`` sets the first).
URL_VARIABLES = ("TEST_DATABASE_URL", "AUDIAPRO_DATABASE_URL")
#: Prefix of the JSON line a child process prints as its last line.
RESULT_PREFIX = "RESULT "
#: The tenant every bench loads as, and its time zone (the simulator's and the import's).
TENANT_NAME = "bench"
TIMEZONE = "America/New_York"

#: A measured method run in a child process: the parsed options in, its figures out.
ChildRunner = Callable[[argparse.Namespace], dict[str, Any]]


@dataclass(frozen=True)
class BenchServer:
    """The Postgres server a bench measures on, and the load average when the bench began."""

    url: str
    load_start: float

    @classmethod
    def from_option(cls, explicit: str | None) -> BenchServer:
        """The server of ``--database-url`` (or the environment, see :func:`admin_url`), load noted now."""
        return cls(admin_url(explicit), load_average())

    def machine(self) -> dict[str, Any]:
        """:func:`machine` facts for the figures, with the load average at the start and now."""
        return machine(self.url, self.load_start)


def admin_url(explicit: str | None) -> str:
    """The Postgres server URL to create the bench databases on.

    Raises:
        SystemExit: No Postgres URL was given or found in the environment.
    """
    url = explicit or next((os.environ[name] for name in URL_VARIABLES if os.environ.get(name)), None)
    if not url or not url.startswith("postgresql"):
        raise SystemExit(
            "a Postgres URL is needed: run through `make bench` (starts a throwaway cluster), pass "
            "--database-url or set TEST_DATABASE_URL"
        )
    return url


@dataclass(frozen=True)
class ChildResult:
    """What a child process reported, and its peak resident set size."""

    figures: dict[str, Any]
    peak_rss_mb: float

    def figures_with_rss(self) -> dict[str, Any]:
        """The reported figures plus ``peak_rss_mb`` (rounded to 0.1 MB)."""
        return {**self.figures, "peak_rss_mb": round(self.peak_rss_mb, 1)}


def run_child(script: Path, args: Sequence[str], *, python: str | None = None) -> ChildResult:
    """Run ``script --run ...`` in a fresh interpreter; return its result line and its peak RSS.

    The child's stderr passes through (progress); its stdout is scanned for the result line.

    Args:
        script: The script to run.
        args: Its arguments.
        python: The interpreter (default: this one); e.g. a benchmark-only virtualenv's.

    Raises:
        RuntimeError: The child failed or printed no result line.
    """
    cmd = [python or sys.executable, str(script), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    # wait4 reports the resource usage of exactly this child (ru_maxrss: KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed with exit code {proc.returncode}")
    lines = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd[1:])} printed no result line")
    return ChildResult(json.loads(lines[-1][len(RESULT_PREFIX) :]), usage.ru_maxrss / 1024)


def run_child_logged(
    script: Path, args: Sequence[str], *, show_rss: bool = True, python: str | None = None
) -> ChildResult:
    """:func:`run_child`, then log the child's timed seconds (and its peak RSS) as progress."""
    result = run_child(script, args, python=python)
    rss = f", peak RSS {result.peak_rss_mb:.0f} MB" if show_rss else ""
    log(f"  {result.figures['seconds']} s{rss}")
    return result


def report_child(figures: dict[str, Any]) -> None:
    """Print a child's result line (read by :func:`run_child`)."""
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


def child_main(args: argparse.Namespace, runners: Mapping[str, ChildRunner]) -> None:
    """Child mode: run the method ``--run`` names and print its result line.

    Raises:
        SystemExit: ``--run`` names no method of this bench.
    """
    runner = runners.get(args.run)
    if runner is None:
        raise SystemExit(f"unknown --run {args.run!r}")
    report_child(runner(args))


def bench_main(
    args: argparse.Namespace,
    runners: Mapping[str, ChildRunner],
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    table_lines: Callable[[dict[str, Any]], Iterable[str]],
) -> None:
    """A bench's entry point: as a child, the method ``--run`` names; as the parent, the measurement
    and its report (:func:`print_report`)."""
    if args.run:
        child_main(args, runners)
        return
    figures = measure(args)
    print_report(figures, table_lines(figures))


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every bench has: the server URL, and the hidden child-mode ones.

    Called after a bench's own options, so that ``--help`` lists those first.
    """
    parser.add_argument("--database-url", help="Postgres server URL (default: $TEST_DATABASE_URL)")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--url", help=argparse.SUPPRESS)


def print_report(figures: dict[str, Any], table_lines: Iterable[str]) -> None:
    """Print a bench's table, the machine line, and the figures as the last line (one JSON object)."""
    for line in table_lines:
        print(line)
    print(machine_line(figures["machine"]))
    print(json.dumps(figures), flush=True)


def machine_line(m: dict[str, Any]) -> str:
    """The table line describing the machine (the ``machine`` figures of :func:`machine`)."""
    return (
        f"  machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}, "
        f"PostgreSQL {m['postgres']} (fsync={m['fsync']}, synchronous_commit={m['synchronous_commit']}), "
        f"load average {m['load_avg_1m_start']} -> {m['load_avg_1m']}"
    )


def log(message: str) -> None:
    """Progress on stderr (stdout carries the figures)."""
    print(message, file=sys.stderr, flush=True)


def load_average() -> float:
    """The 1-minute load average, rounded (taken before measuring, passed to :func:`machine`)."""
    return round(os.getloadavg()[0], 2)


def machine(database_url: str, load_start: float) -> dict[str, Any]:
    """Facts about the machine and the database server the figures come from.

    Args:
        database_url: The server the figures were measured on.
        load_start: :func:`load_average` when the bench began (the current one is added too).
    """
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            server = str(conn.scalar(sa.text("SHOW server_version")))
            fsync = str(conn.scalar(sa.text("SHOW fsync")))
            commit = str(conn.scalar(sa.text("SHOW synchronous_commit")))
    finally:
        engine.dispose()
    facts = host_facts(load_start)
    return {
        **{key: facts[key] for key in ("cpus", "memory_gib", "os", "python")},
        "postgres": server.split()[0],
        "fsync": fsync,
        "synchronous_commit": commit,
        **{key: facts[key] for key in ("load_avg_1m", "load_avg_1m_start")},
    }


def host_facts(load_start: float) -> dict[str, Any]:
    """Facts about the machine alone (benches without a database): CPUs, memory, OS, Python, load."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(_memory_bytes() / 2**30, 1),
        "os": _os_name(),
        "python": platform.python_version(),
        # Other work on the machine slows every method; the figures are only comparable within a run.
        "load_avg_1m": load_average(),
        "load_avg_1m_start": load_start,
    }


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return platform.platform()
    return release.get("PRETTY_NAME", platform.platform())


def migrated_engine(url: str) -> sa.Engine:
    """A warehouse engine on ``url`` (a scratch database), migrated to the head revision."""
    from audiapro.warehouse import get_engine, upgrade

    engine = get_engine(url)
    upgrade(engine)
    return engine


def measure_export(
    args: argparse.Namespace,
    *,
    prefix: str,
    generate: Callable[[Path, int], int],
    measure: Callable[[argparse.Namespace, Path, int, Path], dict[str, Any]],
) -> dict[str, Any]:
    """The figures of a bench that loads one CSV export: ``--csv`` where that file exists, else a file
    of ``--rows`` legs written by ``generate`` (not timed) in a scratch directory.

    Args:
        args: The bench's options (``csv``, ``rows``).
        prefix: Name prefix of the scratch directory (``measure``'s working directory).
        generate: Writes ``rows`` legs to the path; returns the rows written.
        measure: The measurement: options, export, its rows, the scratch directory.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        csv_path = Path(args.csv).resolve() if args.csv else workdir / "legs.csv"
        if csv_path.exists():
            with open(csv_path, newline="") as fh:
                rows = sum(1 for _ in csv.reader(fh)) - 1  # the header line is not a leg
            log(f"using {csv_path} ({rows:,} rows)")
        else:
            log(f"generating {args.rows:,} legs (not timed) ...")
            began = time.perf_counter()
            rows = generate(csv_path, args.rows)
            log(f"  {rows:,} rows in {time.perf_counter() - began:.1f} s -> {csv_path}")
        return measure(args, csv_path, rows, workdir)


def listed(names: str) -> list[str]:
    """A comma-separated option as its non-empty items: ``"ours, naive"`` -> ``["ours", "naive"]``."""
    return [name.strip() for name in names.split(",") if name.strip()]


def tenant_settings() -> Any:
    """The tenant the benches load as (imported late: the parent need not load the pipeline)."""
    from audiapro.tenants import TenantSettings

    return TenantSettings(name=TENANT_NAME, timezone=TIMEZONE, region="US")


def count_rows(engine: sa.Engine, *tables: str) -> list[int]:
    """The row count of each table, in one query."""
    counts = ", ".join(f"(SELECT count(*) FROM {table})" for table in tables)
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT {counts}")).one())


def rate(rows: int, seconds: float) -> float:
    """Rows per second, rounded (0 for an empty interval)."""
    return round(rows / seconds, 1) if seconds > 0 else 0.0
