"""Re-importing a nearly identical file: idempotent, and only the chunk that differs is loaded again.

A file differing from an imported one by one byte has a new SHA-256, so it is a new import; its
chunks whose raw rows an earlier import of the tenant committed are counted without being normalized
or merged (``ImportSummary.chunks_known``), with the same counts the merge would give.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audiapro.importing import ImportSummary, import_file
from audiapro.ucm.simulator import UcmSimulator, write_ui_export
from audiapro.warehouse import calls, cdr_legs, imported_chunks, imported_files, purge_rows, rejected_rows
from tests.integration.import_support import file_with_bad_rows
from tests.integration.pipeline_support import TENANT, simulator, table_count

CHUNK_ROWS = 20


@pytest.fixture(scope="module")
def sim() -> UcmSimulator:
    """One settled day of calls."""
    return simulator(seed=23, calls_per_day=60, days=1)


@pytest.fixture(scope="module")
def truth(sim: UcmSimulator) -> list[dict[str, str]]:
    return sim.ground_truth()


def table_rows(engine: sa.Engine, table: sa.Table, key: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.tenant == TENANT.name)).mappings().all()
    return {row[key]: dict(row) for row in rows}


def one_byte_changed(source: Path, target: Path, *, from_row: int) -> Path:
    """``source`` with one letter of one Caller Name (at or after data row ``from_row``) changed."""
    header, *rows = list(csv.reader(source.open(newline="", encoding="utf-8")))
    column = header.index("Caller Name")
    row = next(i for i in range(from_row, len(rows)) if rows[i][column][:1].isalpha())
    name = rows[row][column]
    rows[row][column] = chr(ord(name[0]) ^ 1) + name[1:]  # another ASCII letter: one byte differs
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    target.write_text(buffer.getvalue(), encoding="utf-8")
    assert len(target.read_bytes()) == len(source.read_bytes().replace(b"\r\n", b"\n"))
    return target


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.read, summary.new, summary.duplicate, summary.rejected


def test_a_file_differing_by_one_byte_loads_only_the_chunk_holding_it(
    engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    first_file = write_ui_export(truth, tmp_path / "export.csv")
    first = import_file(first_file, engine, TENANT, chunk_rows=CHUNK_ROWS)
    assert counts(first) == (len(truth), len(truth), 0, 0) and first.chunks_known == 0
    assert first.chunks > 3
    legs_before = table_rows(engine, cdr_legs, "leg_key")
    calls_before = table_rows(engine, calls, "session")

    second_file = one_byte_changed(first_file, tmp_path / "export-fixed.csv", from_row=len(truth) // 2)
    second = import_file(second_file, engine, TENANT, chunk_rows=CHUNK_ROWS)

    assert second.sha256 != first.sha256 and second.status == "imported"
    # The same counts a full merge gives (every leg already stored), with one chunk merged.
    assert counts(second) == (len(truth), 0, len(truth), 0)
    assert (second.chunks, second.chunks_known) == (first.chunks, first.chunks - 1)
    # Idempotent: not one column of a leg or a call changed.
    assert table_rows(engine, cdr_legs, "leg_key") == legs_before
    assert table_rows(engine, calls, "session") == calls_before
    with engine.connect() as conn:
        record = (
            conn.execute(sa.select(imported_files).where(imported_files.c.sha256 == second.sha256))
            .mappings()
            .one()
        )
    assert (record["status"], record["rows_read"], record["inserted"], record["duplicates"]) == (
        "done",
        len(truth),
        0,
        len(truth),
    )


def test_known_chunks_report_their_quarantined_rows_without_storing_them_again(
    pg_engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path, expected, good = file_with_bad_rows(truth, tmp_path / "bad.csv")
    first = import_file(path, pg_engine, TENANT, chunk_rows=3)
    assert counts(first) == (good + len(expected), good, 0, len(expected))
    changed = one_byte_changed(path, tmp_path / "bad-fixed.csv", from_row=0)
    second = import_file(changed, pg_engine, TENANT, chunk_rows=3)
    assert counts(second) == (good + len(expected), 0, good, len(expected))
    assert second.chunks_known == second.chunks - 1 > 0
    assert table_count(pg_engine, rejected_rows) == len(expected)
    assert table_count(pg_engine, cdr_legs) == good


def test_a_purge_forgets_the_digests_so_purged_legs_load_again(
    pg_engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    first_file = write_ui_export(truth, tmp_path / "export.csv")
    import_file(first_file, pg_engine, TENANT, chunk_rows=CHUNK_ROWS)
    assert table_count(pg_engine, imported_chunks) > 0
    purge_rows(pg_engine, TENANT.name, None, batch_rows=1000)
    assert table_count(pg_engine, imported_chunks) == table_count(pg_engine, cdr_legs) == 0

    again = import_file(
        one_byte_changed(first_file, tmp_path / "export-fixed.csv", from_row=0),
        pg_engine,
        TENANT,
        chunk_rows=CHUNK_ROWS,
    )
    assert (again.new, again.chunks_known) == (len(truth), 0)
    assert table_count(pg_engine, cdr_legs) == len(truth)
