"""Pickup benchmark: one UI export of N legs (default 1,000,000) imported locally, by SFTP, by e-mail.

Measured in one run, each method in its own child process and its own fresh database on the same
server:

* **local**: ``audiapro.importing.import_file`` of the file on disk (what ``audiapro import`` does).
* **sftp**: ``audiapro.pickup.sftp.pickup_sftp`` against asyncssh's SFTP server on loopback (run by
  this process, in a thread): connect with the pinned host key, list, stream the file into the spool
  with SHA-256, check it did not change, import it, record it in the ledger.
* **imap**: ``audiapro.pickup.imap.pickup_imap`` against pymap's IMAP server on loopback (a
  subprocess): the file zipped and attached to one e-mail (put there before the timing), fetched,
  the attachment written to the spool, the zip opened as a stream, the CSV imported.

Generating, zipping and mailing the file are not timed. Peak RSS is the child's (``os.wait4``). The
last line of the output is one JSON object with the figures. Targets (issue 11): each pickup within
10 % of the local import's time, with the same memory bound (peak RSS < 500 MB).

Usage::

    scripts/with-postgres.sh .venv/bin/python bench/pickup_bench.py [--rows 1000000] [--csv legs.csv]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import (
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
from import_bench import generate_csv

from audiapro.warehouse.scratch import scratch_database

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
DEFAULT_ROWS = 1_000_000
METHODS = ("local", "sftp", "imap")
TARGET_MAX_SLOWDOWN = 1.10
TARGET_RSS_MB = 500.0
NOW = datetime(2026, 3, 4, 9, tzinfo=UTC)
MAIL_FOLDER = "CDR"
SENDER = "pbx@bench.example"


def _servers() -> Any:
    """The loopback test servers (tests/integration/pickup_support.py), importable from the checkout."""
    sys.path.insert(0, str(ROOT))
    from tests.integration import pickup_support

    return pickup_support


# --- child processes -------------------------------------------------------------------------------


def _spool(workdir: str) -> None:
    """Point the import spool at the bench's scratch directory (pickups write there)."""
    from audiapro import settings

    settings.IMPORT_SPOOL_DIR = Path(workdir) / "spool"


def _finish(engine: Any, began: float, figures: dict[str, Any]) -> dict[str, Any]:
    seconds = time.perf_counter() - began
    legs, rejected = count_rows(engine, "cdr_legs", "rejected_rows")
    engine.dispose()
    return {"seconds": round(seconds, 3), **figures, "legs_in_db": legs, "rejected_in_db": rejected}


def run_local(args: argparse.Namespace) -> dict[str, Any]:
    """The file import of the file on disk."""
    from audiapro.importing import import_file

    engine = migrated_engine(args.url)
    began = time.perf_counter()
    summary = import_file(Path(args.csv), engine, tenant_settings())
    return _finish(engine, began, {"new": summary.new, "rejected": summary.rejected})


def _target(engine: Any) -> Any:
    from audiapro.pickup.core import ImportTarget

    return ImportTarget(engine=engine, tenant=tenant_settings())


def run_sftp(args: argparse.Namespace) -> dict[str, Any]:
    """The SFTP pickup of the file from the parent's server."""
    from audiapro.pickup.sftp import SftpSettings, pickup_sftp

    _spool(args.workdir)
    engine = migrated_engine(args.url)
    config = SftpSettings(host="127.0.0.1", port=args.port, user=args.user, password=args.secret,
                          host_key=args.host_key, directory="/drop", settle_seconds=0)  # fmt: skip
    began = time.perf_counter()
    report = pickup_sftp("bench-sftp", config, _target(engine), now=NOW)
    return _finish(engine, began, {"new": report.new_legs, "imported": report.imported})


def run_imap(args: argparse.Namespace) -> dict[str, Any]:
    """The e-mail pickup of the zipped file from the parent's server."""
    from audiapro.pickup.imap import ImapSettings, pickup_imap

    _spool(args.workdir)
    engine = migrated_engine(args.url)
    config = ImapSettings(host="127.0.0.1", port=args.port, user=args.user, password=args.secret,
                          security="plain", folder=MAIL_FOLDER, senders=(SENDER,), rescan_days=0)  # fmt: skip
    began = time.perf_counter()
    report = pickup_imap("bench-imap", config, _target(engine), now=NOW)
    return _finish(engine, began, {"new": report.new_legs, "imported": report.imported})


def run_mail(args: argparse.Namespace) -> dict[str, Any]:
    """Helper (not measured): mail the zipped export to the parent's IMAP server."""
    support = _servers()
    began = time.perf_counter()
    message = support.cdr_mail(SENDER, {"cdr.zip": Path(args.archive).read_bytes()})
    support.append_mail(args.port, MAIL_FOLDER, message)
    return {"seconds": round(time.perf_counter() - began, 3)}


def run_generate(args: argparse.Namespace) -> dict[str, Any]:
    """Helper (not measured): write the export (the simulator's year would raise the parent's peak)."""
    began = time.perf_counter()
    rows = generate_csv(Path(args.csv), args.rows)
    return {"seconds": round(time.perf_counter() - began, 1), "rows": rows}


RUNNERS = {"local": run_local, "sftp": run_sftp, "imap": run_imap, "mail": run_mail, "generate": run_generate}


# --- parent ----------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, csv_path: Path, rows: int, workdir: Path) -> dict[str, Any]:
    server = BenchServer.from_option(args.database_url)
    methods = listed(args.methods)
    support = _servers()
    results: dict[str, Any] = {}
    common = ["--workdir", str(workdir)]
    if "local" in methods:
        log(f"local: import_file of {rows:,} rows ...")
        with scratch_database(server.url, "bench_pickup_local") as url:
            result = run_child_logged(SCRIPT, ["--run", "local", "--csv", str(csv_path), "--url", url])
        results["local"] = result.figures_with_rss()
    if "sftp" in methods:
        root = workdir / "sftp-root"
        (root / "drop").mkdir(parents=True)
        _place(csv_path, root / "drop" / csv_path.name)
        log("sftp: pickup over SFTP (asyncssh server on loopback) ...")
        with support.sftp_server(root) as sftp, scratch_database(server.url, "bench_pickup_sftp") as url:
            result = run_child_logged(SCRIPT, ["--run", "sftp", "--url", url, "--port", str(sftp.port),
                                               "--user", support.SFTP_USER, "--secret", support.SFTP_PASSWORD,
                                               "--host-key", sftp.host_key_line, *common])  # fmt: skip
        results["sftp"] = result.figures_with_rss()
    if "imap" in methods:
        results["imap"] = _measure_imap(support, server.url, csv_path, workdir, common)
    figures = summarize(results, rows)
    figures["machine"] = server.machine()
    figures["csv_bytes"] = csv_path.stat().st_size
    return figures


def _place(source: Path, target: Path) -> None:
    """Put the export into the server's directory: a hard link (no copy) where the file system allows.

    Not a symbolic link: the chrooted server would not follow it out of its root.
    """
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _measure_imap(
    support: Any, server: str, csv_path: Path, workdir: Path, common: list[str]
) -> dict[str, Any]:
    archive = workdir / "cdr.zip"
    log("imap: zipping the export and mailing it to pymap (not timed) ...")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(csv_path, "cdr.csv")
    imap = support.ImapTestServer()
    try:
        # Mailed by a helper process: a child inherits its parent's peak RSS as its own starting
        # point (Linux keeps the high-water mark across fork and exec), so the parent must never
        # hold the message, or the pickup's measured peak would be the parent's.
        run_child(SCRIPT, ["--run", "mail", "--archive", str(archive), "--port", str(imap.port)])
        log(f"imap: pickup of a {archive.stat().st_size / 2**20:.0f} MiB zip attachment ...")
        with scratch_database(server, "bench_pickup_imap") as url:
            result = run_child_logged(SCRIPT, ["--run", "imap", "--url", url, "--port", str(imap.port),
                                               "--user", support.IMAP_USER, "--secret", support.IMAP_PASSWORD,
                                               *common])  # fmt: skip
    finally:
        imap.close()
    return {**result.figures_with_rss(), "zip_bytes": archive.stat().st_size}


def summarize(results: dict[str, Any], rows: int) -> dict[str, Any]:
    """Rows/s of each method, each pickup's time over the local import's, peak RSS, targets."""
    seconds: dict[str, float | None] = {name: results[name]["seconds"] if name in results else None
                                        for name in METHODS}  # fmt: skip
    local = seconds["local"]
    ratios = {f"{name}_vs_local": round(value / local, 3) if value and local else None
              for name, value in seconds.items() if name != "local"}  # fmt: skip
    rss = {f"{name}_peak_rss_mb": results.get(name, {}).get("peak_rss_mb") for name in METHODS}
    targets: dict[str, float | bool | None] = {
        "max_vs_local": TARGET_MAX_SLOWDOWN,
        "rss_max_mb": TARGET_RSS_MB,
    }
    for name in ("sftp", "imap"):
        ratio, peak = ratios[f"{name}_vs_local"], rss[f"{name}_peak_rss_mb"]
        targets[f"met_{name}_time"] = None if ratio is None else ratio <= TARGET_MAX_SLOWDOWN
        targets[f"met_{name}_rss"] = None if peak is None else peak < TARGET_RSS_MB
    return {
        "bench": "pickup",
        "rows": rows,
        **{f"{name}_seconds": seconds[name] for name in METHODS},
        **{f"{name}_rows_per_s": rate(rows, value) if value else None for name, value in seconds.items()},
        **ratios,
        **rss,
        "targets": targets,
        "details": results,
    }


def table_lines(figures: dict[str, Any]) -> Iterator[str]:
    """The human-readable table above the machine line and the JSON line."""
    size = f"{figures['csv_bytes'] / 2**20:.0f} MiB"
    yield f"pickup benchmark: {figures['rows']:,} legs, UI CSV export ({size})"
    labels = {"local": "local import_file", "sftp": "SFTP pickup", "imap": "e-mail pickup (zip)"}
    for name, label in labels.items():
        if figures[f"{name}_seconds"] is not None:
            ratio = figures.get(f"{name}_vs_local")
            versus = f"  x{ratio:.3f} of local" if ratio is not None else ""
            timing = f"{figures[f'{name}_seconds']:>9.2f} s {figures[f'{name}_rows_per_s']:>10,.0f} rows/s"
            yield f"  {label:<22} {timing}  peak RSS {figures[f'{name}_peak_rss_mb']:.0f} MB{versus}"
    yield f"  targets: pickup <= x{TARGET_MAX_SLOWDOWN} of local, peak RSS < {TARGET_RSS_MB:.0f} MB"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="legs in the generated file")
    parser.add_argument("--csv", help="use this export (generated there first if it does not exist)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of local,sftp,imap")
    add_common_options(parser)
    for hidden in ("--workdir", "--port", "--user", "--secret", "--host-key", "--archive"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.port = int(args.port) if args.port else 0
    return args


def main() -> None:
    bench_main(parse_args(), RUNNERS, measure_generated, table_lines)


def measure_generated(args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the export (generated by a helper process: see :func:`run_generate`)."""
    return measure_export(args, prefix="audiapro-pickup-bench-", generate=_generate_in_child, measure=measure)


def _generate_in_child(csv_path: Path, rows: int) -> int:
    made = run_child(SCRIPT, ["--run", "generate", "--csv", str(csv_path), "--rows", str(rows)])
    return int(made.figures["rows"])


if __name__ == "__main__":
    main()
