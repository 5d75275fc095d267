"""Import benchmark: a UI-style CSV export of N legs (default 1,000,000) into Postgres, three ways.

Measured in one run, each method in its own child process and its own fresh database on the same
server (default durability settings):

* **ours**: ``audiapro.importing.import_file`` exactly as the CLI and the flow call it (format
  detection, hashing, claim, streamed reading, normalization, an optimistic COPY straight into
  ``cdr_legs`` with its indexes and its statement-level run-reference checks (migration 0010; a
  chunk holding a stored leg falls back to COPY into a TEMP staging table and
  ``INSERT ... ON CONFLICT (tenant, leg_key) DO NOTHING``), the calls rebuild, the import record and
  chunk digest, one transaction per chunk) into a freshly migrated warehouse.
* **ours again**: a copy of the file with one byte changed (one Caller Name letter after the middle
  of the file) imported into the warehouse the first import filled: only the chunk holding that
  byte is normalized and merged (``reimport_one_byte_seconds``, ``reimport_vs_first``).
* **(a) naive**: ``pandas.read_csv(path)`` then ``DataFrame.to_sql(..., index=False)`` (defaults:
  SQLAlchemy + psycopg2, multi-row INSERTs) into a new plain table: what people write first. No
  normalization, no keys, no conflict handling, no indexes.
* **(b) ceiling**: the database side of our write alone. The canonical frame is prepared *before*
  the timing (same reader, normalization and COPY rendering as ours) into a file; the timing
  covers one transaction: ``COPY`` of that file into a TEMP staging table plus ``INSERT ... SELECT
  ... ON CONFLICT (tenant, leg_key) DO NOTHING`` into a freshly migrated ``cdr_legs`` (all indexes
  and the run-reference triggers), and the commit.

* **dlt** (the tool a data engineer would reach for instead), pinned in ``bench/dlt-requirements.txt``
  and installed only into ``bench/.dlt-venv`` by ``bench/setup_dlt_venv.sh`` (the product's
  dependencies stay lean), run as a child process (``bench/dlt_load.py``) on the same file and
  server, ``merge`` on the leg's natural key, two paths: ``dlt_merge`` (pandas chunks; dlt loads
  them with text ``COPY``, its default path) and ``dlt_arrow`` (Arrow tables written as parquet and
  loaded through ADBC: dlt's fastest path). ``--no-dlt`` leaves it out (the smoke test does, so
  ``make test`` never installs dlt).

Generating the file is not timed. Peak RSS is each child's (``os.wait4``). The last line of the
output is one JSON object with the figures. Targets: ours >= dlt's default merge path in the same
run (issue 17), ours >= 50 % of (b) and peak RSS < 400 MB; >= 5x (a) (issue 5, not reachable: see
docs/benchmarks.md).

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/import_bench.py [--rows 1000000] [--csv legs.csv]
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from benchlib import (
    TENANT_NAME,
    TIMEZONE,
    BenchServer,
    add_common_options,
    bench_main,
    count_rows,
    listed,
    log,
    measure_export,
    migrated_engine,
    rate,
    run_child,
    run_child_logged,
    tenant_settings,
)

from audiapro.warehouse.scratch import scratch_database

SCRIPT = Path(__file__).resolve()
DLT_SCRIPT = SCRIPT.parent / "dlt_load.py"
DLT_SETUP = SCRIPT.parent / "setup_dlt_venv.sh"
#: dlt's two paths: name in the figures -> ``dlt_load.py --path``.
DLT_PATHS = {"dlt_merge": "pandas", "dlt_arrow": "arrow"}
DEFAULT_ROWS = 1_000_000
SEED = 2026
#: Average legs per generated call-day (weekends included) of the simulator's default mix.
LEGS_PER_CALL_DAY = 1.83
#: Days of history generated per simulator query (bounded memory while generating).
PIECE_DAYS = 7
TARGET_VS_CEILING = 0.5
TARGET_VS_NAIVE = 5.0
TARGET_RSS_MB = 400.0
TARGET_VS_DLT_MERGE = 1.0
METHODS = ("ours", "naive", "ceiling", "dlt")


# --- data ------------------------------------------------------------------------------------------


def generate_csv(path: Path, rows: int, seed: int = SEED) -> int:
    """Write ``rows`` distinct simulator legs as one UI export (modern headers), sorted by start.

    The simulator is queried a week at a time and each week is written with the simulator's own UI
    export writer; its header line is kept once. Returns the number of rows written.
    """
    from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator, write_ui_export

    calls_per_day = max(10, math.ceil(rows / (365 * LEGS_PER_CALL_DAY) * 1.1))
    config = SimulatorConfig(
        seed=seed,
        calls_per_day=calls_per_day,
        start=datetime(2025, 1, 1).date(),
        days=365,
        tz=TIMEZONE,
        day_cache_size=PIECE_DAYS + 3,
    )
    sim = UcmSimulator(config)
    written = 0
    piece_start = datetime(2025, 1, 1, 5, tzinfo=UTC)  # local midnight in New York
    with tempfile.TemporaryDirectory(prefix="bench-piece-") as tmp, open(path, "w", newline="") as out:
        piece_file = Path(tmp) / "piece.csv"
        while written < rows:
            if piece_start >= sim.history_end_utc:
                raise RuntimeError(f"the simulated year holds fewer than {rows} legs")
            piece_end = piece_start + timedelta(days=PIECE_DAYS)
            # ground_truth bounds are inclusive and leg starts are whole seconds: no leg twice.
            legs = sim.ground_truth(start=piece_start, end=piece_end - timedelta(seconds=1))
            legs.sort(key=lambda leg: (leg["start"], int(leg["AcctId"])))
            legs = legs[: rows - written]
            write_ui_export(legs, piece_file)
            with open(piece_file, newline="") as piece:
                header = piece.readline()
                if written == 0:
                    out.write(header)
                shutil.copyfileobj(piece, out)
            written += len(legs)
            piece_start = piece_end
    return written


# --- child processes -------------------------------------------------------------------------------


def run_ours(csv_path: Path, url: str, chunk_rows: int | None) -> dict[str, Any]:
    """The real import into a freshly migrated warehouse."""
    from audiapro.importing import import_file

    engine = migrated_engine(url)
    began = time.perf_counter()
    if chunk_rows is None:  # the import's own default
        summary = import_file(csv_path, engine, tenant_settings())
    else:
        summary = import_file(csv_path, engine, tenant_settings(), chunk_rows=chunk_rows)
    seconds = time.perf_counter() - began
    legs, calls, rejected = count_rows(engine, "cdr_legs", "calls", "rejected_rows")
    engine.dispose()
    return {
        "seconds": round(seconds, 3),
        "read": summary.read,
        "new": summary.new,
        "duplicate": summary.duplicate,
        "rejected": summary.rejected,
        "chunks": summary.chunks,
        "legs_in_db": legs,
        "calls_in_db": calls,
        "rejected_in_db": rejected,
    }


def one_byte_changed(source: Path, target: Path) -> int:
    """Copy ``source`` with one letter of one Caller Name (first named row after the middle) changed.

    Returns:
        The byte offset changed.
    """
    shutil.copyfile(source, target)
    with open(source, newline="", encoding="utf-8") as fh:
        column = next(csv.reader(fh)).index("Caller Name")
    with open(target, "r+b") as fh:
        fh.seek(target.stat().st_size // 2)
        fh.readline()  # to the next line start (exports have no multi-line fields)
        while line := fh.readline():
            name = next(csv.reader([line.decode("utf-8")]))[column]
            at = line.rfind(name.encode("utf-8")) if name[:1].isascii() and name[:1].isalpha() else -1
            if at >= 0:
                offset = fh.tell() - len(line) + at
                fh.seek(offset)
                fh.write(bytes([line[at] ^ 0x20]))  # the same letter in the other case
                return offset
    raise RuntimeError("no row with a caller name after the middle of the file")


def run_reimport(csv_path: Path, url: str, chunk_rows: int | None) -> dict[str, Any]:
    """Import a copy of the file differing by one byte into the warehouse ``ours`` filled."""
    from audiapro.importing import import_file
    from audiapro.warehouse import get_engine

    engine = get_engine(url)
    changed = csv_path.with_name(f"{csv_path.stem}-one-byte{csv_path.suffix}")
    offset = one_byte_changed(csv_path, changed)
    try:
        began = time.perf_counter()
        if chunk_rows is None:
            summary = import_file(changed, engine, tenant_settings())
        else:
            summary = import_file(changed, engine, tenant_settings(), chunk_rows=chunk_rows)
        seconds = time.perf_counter() - began
    finally:
        changed.unlink(missing_ok=True)
    (legs,) = count_rows(engine, "cdr_legs")
    engine.dispose()
    return {
        "seconds": round(seconds, 3),
        "changed_offset": offset,
        "read": summary.read,
        "new": summary.new,
        "duplicate": summary.duplicate,
        "chunks": summary.chunks,
        "chunks_known": summary.chunks_known,
        "legs_in_db": legs,
    }


def run_naive(csv_path: Path, url: str) -> dict[str, Any]:
    """(a) ``read_csv`` + ``to_sql`` with defaults into a new plain table."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    began = time.perf_counter()
    frame = pd.read_csv(csv_path)
    frame.to_sql("cdr_naive", engine, index=False)
    seconds = time.perf_counter() - began
    (stored,) = count_rows(engine, "cdr_naive")
    engine.dispose()
    return {"seconds": round(seconds, 3), "rows": len(frame), "rows_in_db": stored}


def run_prepare(csv_path: Path, out_path: Path, chunk_rows: int | None) -> dict[str, Any]:
    """Untimed preparation for (b): the canonical frame rendered exactly as our COPY renders it."""
    from audiapro.cdr.normalize import NormalizeContext, normalize_frame
    from audiapro.cdr.readers import DEFAULT_CHUNK_ROWS, iter_cdr_file
    from audiapro.warehouse.frames import copy_text_pieces, prepare_legs

    ctx = NormalizeContext(tenant=TENANT_NAME, timezone=TIMEZONE, region="US", source="csv")
    legs = 0
    began = time.perf_counter()
    with open(out_path, "w", newline="") as out:
        for chunk in iter_cdr_file(csv_path, chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS):
            batch = normalize_frame(chunk.frame, ctx, positions=chunk.positions, raw_json=chunk.raw_json)
            frame = prepare_legs(batch.legs, TENANT_NAME)
            out.writelines(copy_text_pieces(frame))
            legs += len(frame)
    return {"seconds": round(time.perf_counter() - began, 3), "legs": legs}


def run_ceiling(prepared: Path, url: str) -> dict[str, Any]:
    """(b) COPY of the prepared file into TEMP staging + INSERT ... ON CONFLICT DO NOTHING, one commit."""
    from typing import cast

    from audiapro.cdr.schema import LEG_COLUMN_NAMES
    from audiapro.warehouse import RunInfo, begin_write
    from audiapro.warehouse.runs import insert_run, utcnow
    from audiapro.warehouse.tables import RUN_SUCCEEDED
    from audiapro.warehouse.upsert import stage

    engine = migrated_engine(url)
    now = utcnow()
    with begin_write(engine) as conn:  # the FK target of the loaded rows, as in a real load
        run_id = insert_run(
            conn, tenant=TENANT_NAME, run=RunInfo(kind="import"), status=RUN_SUCCEEDED, now=now
        )
    columns = ", ".join(LEG_COLUMN_NAMES)
    copy_sql = f"COPY {stage.name} ({columns}) FROM STDIN"  # text format, as the load path sends
    merge_sql = (
        f"INSERT INTO cdr_legs ({columns}, ingest_run_id, last_ingest_run_id, loaded_at, updated_at) "
        f"SELECT {columns}, %(run)s, %(run)s, %(now)s, %(now)s FROM {stage.name} "
        "ON CONFLICT (tenant, leg_key) DO NOTHING"
    )
    began = time.perf_counter()
    with engine.connect() as conn, conn.begin():
        stage.create(conn)
        dbapi = cast(Any, conn.connection.dbapi_connection)
        with dbapi.cursor() as cursor, open(prepared, newline="") as fh:
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")  # as in the load path: naive UTC timestamps
            cursor.copy_expert(copy_sql, fh)
            cursor.execute(merge_sql, {"run": run_id, "now": now})
            inserted = cursor.rowcount
    seconds = time.perf_counter() - began
    (stored,) = count_rows(engine, "cdr_legs")
    engine.dispose()
    return {"seconds": round(seconds, 3), "inserted": inserted, "legs_in_db": stored}


#: The methods a child process runs, by their ``--run`` name.
RUNNERS = {
    "ours": lambda args: run_ours(Path(args.csv), args.url, args.chunk_rows),
    "naive": lambda args: run_naive(Path(args.csv), args.url),
    "reimport": lambda args: run_reimport(Path(args.csv), args.url, args.chunk_rows),
    "prepare": lambda args: run_prepare(Path(args.csv), Path(args.out), args.chunk_rows),
    "ceiling": lambda args: run_ceiling(Path(args.csv), args.url),
}


# --- parent ----------------------------------------------------------------------------------------


#: Clock ticks per second of ``/proc/<pid>/stat``'s CPU fields.
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Fields of ``/proc/<pid>/stat`` after the command: parent pid, then user and system CPU of the
#: process and of its waited-for children (0-based, counted after the closing parenthesis).
_STAT_PPID, _STAT_UTIME, _STAT_CUTIME = 1, 11, 13
_T = TypeVar("_T")


def _stat_fields(pid: int | str) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def postmaster_pid(url: str) -> int | None:
    """The pid of the server's postmaster when it runs on this machine (None otherwise)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            backend = int(conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0)
            fields = _stat_fields(backend)  # read while the backend lives
    finally:
        engine.dispose()
    return int(fields[_STAT_PPID]) if fields is not None else None


def cluster_cpu_s(postmaster: int | None) -> float | None:
    """CPU seconds the Postgres cluster has used so far: its postmaster, the backends and workers
    alive now, and those that exited (reaped by the postmaster: its children's CPU)."""
    if postmaster is None:
        return None
    own = _stat_fields(postmaster)
    if own is None:
        return None
    ticks = sum(int(value) for value in own[_STAT_UTIME : _STAT_CUTIME + 2])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None and int(fields[_STAT_PPID]) == postmaster:
                ticks += int(fields[_STAT_UTIME]) + int(fields[_STAT_UTIME + 1])
    return ticks / _CLOCK_TICKS


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_cpu(postmaster: int | None, run: Callable[[], _T]) -> tuple[_T, dict[str, float | None]]:
    """``run()`` (which starts and waits for one child) and the CPU seconds it cost: the child's own
    (``client``, from the rusage of waited-for children) and the local Postgres cluster's
    (``server``; None on a remote server). CPU time moves far less with the box's load than wall time.
    """
    client, server = _children_cpu_s(), cluster_cpu_s(postmaster)
    result = run()
    client = _children_cpu_s() - client
    server_after = cluster_cpu_s(postmaster)
    spent = None if server is None or server_after is None else server_after - server
    total = None if spent is None else client + spent
    return result, {
        "client": round(client, 2),
        "server": None if spent is None else round(spent, 2),
        "total": None if total is None else round(total, 2),
    }


def measure(args: argparse.Namespace, csv_path: Path, rows: int, workdir: Path) -> dict[str, Any]:
    server = BenchServer.from_option(args.database_url)
    chunk = [] if args.chunk_rows is None else ["--chunk-rows", str(args.chunk_rows)]
    methods = listed(args.methods)
    postmaster = postmaster_pid(server.url)
    results: dict[str, Any] = {}
    if "ours" in methods:
        log(f"ours: import_file of {rows:,} rows ...")
        with scratch_database(server.url, "bench_ours") as url:
            ours, ours_cpu = with_cpu(
                postmaster,
                lambda: run_child_logged(
                    SCRIPT, ["--run", "ours", "--csv", str(csv_path), "--url", url, *chunk]
                ),
            )
            log("ours again: the same file with one byte changed, into that warehouse ...")
            reimport, reimport_cpu = with_cpu(
                postmaster,
                lambda: run_child_logged(
                    SCRIPT, ["--run", "reimport", "--csv", str(csv_path), "--url", url, *chunk]
                ),
            )
        results["ours"] = {**ours.figures_with_rss(), "cpu_s": ours_cpu}
        results["reimport"] = {**reimport.figures_with_rss(), "cpu_s": reimport_cpu}
    if "naive" in methods:
        log("(a) naive read_csv + to_sql ...")
        with scratch_database(server.url, "bench_naive") as url:
            naive = run_child_logged(
                SCRIPT, ["--run", "naive", "--csv", str(csv_path), "--url", url], show_rss=False
            )
        results["naive"] = naive.figures_with_rss()
    if "ceiling" in methods:
        prepared = workdir / "prepared-copy.txt"
        log("(b) preparing the canonical COPY file (not timed) ...")
        prep = run_child(SCRIPT, ["--run", "prepare", "--csv", str(csv_path), "--out", str(prepared), *chunk])
        log(f"  prepared {prep.figures['legs']:,} legs in {prep.figures['seconds']} s")
        log("(b) ceiling: COPY into staging + INSERT ... ON CONFLICT ...")
        with scratch_database(server.url, "bench_ceiling") as url:
            ceiling = run_child_logged(
                SCRIPT, ["--run", "ceiling", "--csv", str(prepared), "--url", url], show_rss=False
            )
        results["ceiling"] = {**ceiling.figures, "prepared_legs": prep.figures["legs"]}
        prepared.unlink(missing_ok=True)
    if "dlt" in methods and not args.no_dlt:
        results.update(measure_dlt(server.url, csv_path, postmaster))
    figures = summarize(results, rows)
    figures["machine"] = server.machine()
    figures["csv_bytes"] = csv_path.stat().st_size
    return figures


def dlt_python() -> str:
    """The dlt virtualenv's interpreter, created on first use (``bench/setup_dlt_venv.sh``).

    Raises:
        RuntimeError: The environment could not be created (the one-line reason from pip/uv).
    """
    done = subprocess.run([str(DLT_SETUP)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"bench/setup_dlt_venv.sh failed: {last}")
    return done.stdout.strip().splitlines()[-1]


def measure_dlt(server: str, csv_path: Path, postmaster: int | None = None) -> dict[str, Any]:
    """dlt's two paths, each into its own fresh database; ``dlt_error`` says why when it cannot run.

    ``postmaster`` (a local server's, see :func:`postmaster_pid`) adds the server's CPU seconds.
    """
    try:
        python = dlt_python()
    except RuntimeError as exc:
        log(f"dlt skipped: {exc}")
        return {"dlt_error": str(exc)}
    results: dict[str, Any] = {}
    for name, path in DLT_PATHS.items():
        log(f"{name}: dlt, {path} path, merge on the natural key ...")
        with scratch_database(server, f"bench_{name}") as url:
            args = ["--csv", str(csv_path), "--url", url, "--path", path]
            try:
                child = functools.partial(run_child_logged, DLT_SCRIPT, args, python=python)
                done, cpu = with_cpu(postmaster, child)
                results[name] = {**done.figures_with_rss(), "cpu_s": cpu}
            except RuntimeError as exc:
                log(f"  failed: {exc}")
                results[name] = {"error": str(exc)}
    return results


def summarize(results: dict[str, Any], rows: int) -> dict[str, Any]:
    """The figures: rows/s of each method, ratios, peak RSS and whether the targets are met."""
    per_s = {name: rate(rows, results[name]["seconds"]) if name in results else None for name in METHODS}
    ours, naive, ceiling = per_s["ours"], per_s["naive"], per_s["ceiling"]
    vs_ceiling = round(ours / ceiling, 3) if ours and ceiling else None
    vs_naive = round(ours / naive, 2) if ours and naive else None
    rss = _figure(results, "ours", "peak_rss_mb")
    dlt = {name: _rate(results, name, rows) for name in DLT_PATHS}
    dlt_merge = dlt["dlt_merge"]
    dlt_fastest = max((value for value in dlt.values() if value), default=None)
    vs_dlt = round(ours / dlt_merge, 3) if ours and dlt_merge else None
    return {
        "bench": "import",
        "rows": rows,
        "ours_rows_per_s": ours,
        "naive_rows_per_s": naive,
        "ceiling_rows_per_s": ceiling,
        "ours_vs_ceiling": vs_ceiling,
        "ours_vs_naive": vs_naive,
        "ours_peak_rss_mb": rss,
        "ours_seconds": _figure(results, "ours"),
        "naive_seconds": _figure(results, "naive"),
        "ceiling_seconds": _figure(results, "ceiling"),
        "reimport_one_byte_seconds": _figure(results, "reimport"),
        "reimport_vs_first": (
            round(results["reimport"]["seconds"] / results["ours"]["seconds"], 3)
            if "reimport" in results and results["ours"]["seconds"]
            else None
        ),
        "dlt_merge_rows_per_s": dlt_merge,
        "dlt_arrow_rows_per_s": dlt["dlt_arrow"],
        "dlt_fastest_rows_per_s": dlt_fastest,
        "ours_vs_dlt_merge": vs_dlt,
        "dlt_merge_seconds": _figure(results, "dlt_merge"),
        "dlt_arrow_seconds": _figure(results, "dlt_arrow"),
        "ours_cpu_s": _cpu(results, "ours"),
        "dlt_merge_cpu_s": _cpu(results, "dlt_merge"),
        "dlt_arrow_cpu_s": _cpu(results, "dlt_arrow"),
        "ours_vs_dlt_merge_cpu": _cpu_ratio(results, "dlt_merge", "ours"),
        "dlt_merge_peak_rss_mb": _figure(results, "dlt_merge", "peak_rss_mb"),
        "dlt_arrow_peak_rss_mb": _figure(results, "dlt_arrow", "peak_rss_mb"),
        "targets": {
            "vs_dlt_merge_min": TARGET_VS_DLT_MERGE,
            "met_vs_dlt_merge": None if vs_dlt is None else vs_dlt >= TARGET_VS_DLT_MERGE,
            "vs_ceiling_min": TARGET_VS_CEILING,
            "vs_naive_min": TARGET_VS_NAIVE,
            "rss_max_mb": TARGET_RSS_MB,
            "met_vs_ceiling": None if vs_ceiling is None else vs_ceiling >= TARGET_VS_CEILING,
            "met_vs_naive": None if vs_naive is None else vs_naive >= TARGET_VS_NAIVE,
            "met_rss": None if rss is None else rss < TARGET_RSS_MB,
        },
        "details": results,
    }


def _figure(results: dict[str, Any], name: str, key: str = "seconds") -> Any:
    """One figure of a method (None where the method did not run or did not report it)."""
    return results.get(name, {}).get(key)


def _cpu(results: dict[str, Any], name: str) -> float | None:
    """A method's CPU seconds, its child's and the server's (None where either was not measured)."""
    cpu = results.get(name, {}).get("cpu_s") or {}
    return cpu.get("total")


def _cpu_ratio(results: dict[str, Any], numerator: str, denominator: str) -> float | None:
    """``numerator``'s CPU seconds over ``denominator``'s: > 1 when ``denominator`` costs less."""
    above, below = _cpu(results, numerator), _cpu(results, denominator)
    return round(above / below, 3) if above and below else None


def _rate(results: dict[str, Any], name: str, rows: int) -> float | None:
    seconds = _figure(results, name)
    return rate(rows, seconds) if seconds else None


def table_lines(figures: dict[str, Any]) -> Iterator[str]:
    """The human-readable table above the machine line and the JSON line."""
    rows = figures["rows"]
    yield f"import benchmark: {rows:,} legs, UI CSV export ({figures['csv_bytes'] / 2**20:.0f} MiB)"
    labels = {
        "ours": "ours (import_file)",
        "naive": "(a) read_csv + to_sql",
        "ceiling": "(b) COPY + ON CONFLICT",
        "dlt_merge": "dlt merge (pandas, COPY)",
        "dlt_arrow": "dlt merge (Arrow, ADBC)",
    }
    for name, label in labels.items():
        value = figures[f"{name}_rows_per_s"]
        seconds = figures[f"{name}_seconds"]
        if value is not None:
            yield f"  {label:<24} {seconds:>9.2f} s {value:>12,.0f} rows/s"
    if figures["reimport_one_byte_seconds"] is not None:
        known = figures["details"]["reimport"]
        yield (
            f"  ours, same file with one byte changed: {figures['reimport_one_byte_seconds']:.2f} s "
            f"({figures['reimport_vs_first']:.2f} of the first import; "
            f"{known['chunks_known']} of {known['chunks']} chunks known)"
        )
    if figures["ours_vs_dlt_merge"] is not None:
        yield f"  ours / dlt merge = {figures['ours_vs_dlt_merge']:.2f}   (target >= {TARGET_VS_DLT_MERGE})"
    if figures["ours_vs_dlt_merge_cpu"] is not None:
        yield (
            f"  CPU seconds (process + Postgres): ours {figures['ours_cpu_s']:.1f}, dlt merge "
            f"{figures['dlt_merge_cpu_s']:.1f}: dlt merge / ours = {figures['ours_vs_dlt_merge_cpu']:.2f} "
            "(steadier than wall time on a busy box)"
        )
    if figures["ours_vs_ceiling"] is not None:
        yield f"  ours / (b) = {figures['ours_vs_ceiling']:.2f}   (target >= {TARGET_VS_CEILING})"
    if figures["ours_vs_naive"] is not None:
        yield f"  ours / (a) = {figures['ours_vs_naive']:.2f}x  (target >= {TARGET_VS_NAIVE}x)"
    if figures["ours_peak_rss_mb"] is not None:
        yield f"  peak RSS of the import: {figures['ours_peak_rss_mb']:.0f} MB (target < {TARGET_RSS_MB:.0f})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="legs in the generated file")
    parser.add_argument("--csv", help="use this export (generated there first if it does not exist)")
    parser.add_argument(
        "--chunk-rows", type=int, default=None, help="import chunk size (default: the import's)"
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of ours,naive,ceiling,dlt")
    parser.add_argument(
        "--no-dlt", action="store_true", help="leave out the dlt comparator (never creates its virtualenv)"
    )
    add_common_options(parser)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    bench_main(parse_args(), RUNNERS, measure_generated, table_lines)


def measure_generated(args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the export (generated in this process: the import runs in children)."""
    return measure_export(args, prefix="audiapro-import-bench-", generate=generate_csv, measure=measure)


if __name__ == "__main__":
    main()
