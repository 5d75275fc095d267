"""File imports into a real warehouse: every export variant, bad rows, idempotence, polled overlap, resume.

The files are the simulator's own legs, written the way the UCM web UI exports them (or saved the way the
cdrapi answers), so the warehouse can be compared with the legs the API path produces.
"""

from __future__ import annotations

import codecs
import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import audiapro.importing as importing
from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.cdr.readers import ImportFormatError
from audiapro.importing import import_file
from audiapro.ingest import ingest_window
from audiapro.tenants import TenantSettings
from audiapro.ucm.client import build_cdr_query
from audiapro.ucm.simulator import UcmSimulator, write_ui_export
from audiapro.ucm.timewindow import local_window
from audiapro.warehouse import cdr_legs, imported_files, rejected_rows
from tests.integration.import_support import KEY_HEADERS, file_with_bad_rows
from tests.integration.pipeline_support import TENANT, TZ, make_client, simulator, table_count

DAY_START, DAY_END = datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 3, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> UcmSimulator:
    """One settled day of calls (the manual clock stands after the last call ended)."""
    return simulator(seed=21, calls_per_day=60, days=1)


@pytest.fixture(scope="module")
def truth(sim: UcmSimulator) -> list[dict[str, str]]:
    return sim.ground_truth()


@pytest.fixture(scope="module")
def api_keys(truth: list[dict[str, str]]) -> set[str]:
    """The leg keys the API path gives the same legs."""
    batch = normalize_legs(truth, NormalizeContext(tenant=TENANT.name, timezone=TZ))
    assert len(batch.rejects) == 0
    return set(batch.legs["leg_key"])


def leg_rows(engine: sa.Engine, tenant: str = TENANT.name) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cdr_legs).where(cdr_legs.c.tenant == tenant)).mappings().all()
    return {row["leg_key"]: dict(row) for row in rows}


# --- files ---------------------------------------------------------------------------------------


def redelimit(source: Path, target: Path, delimiter: str, *, sep_line: bool = False) -> Path:
    with source.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with target.open("w", newline="", encoding="utf-8") as out:
        if sep_line:
            out.write(f"sep={delimiter}\r\n")
        csv.writer(out, delimiter=delimiter).writerows(rows)
    return target


def api_style_csv(legs: list[dict[str, str]], target: Path) -> Path:
    """A CSV whose headers are the cdrapi field names (as API-based export tools write them)."""
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(legs[0]))
        writer.writeheader()
        writer.writerows(legs)
    return target


def csv_variant(variant: str, legs: list[dict[str, str]], directory: Path) -> Path:
    """The legs as one of the CSV layouts seen in the wild."""
    modern = write_ui_export(legs, directory / "modern.csv")
    if variant == "modern":
        return modern
    if variant == "legacy+hms":
        return write_ui_export(legs, directory / "legacy.csv", header_style="legacy", durations="hms")
    if variant == "bom":
        return write_ui_export(legs, directory / "bom.csv", bom=True)
    if variant == "key-columns-only":
        return write_ui_export(legs, directory / "keys.csv", columns=[*KEY_HEADERS, "End Time"])
    if variant == "semicolon+sep-line":
        return redelimit(modern, directory / "semi.csv", ";", sep_line=True)
    if variant == "tab":
        return redelimit(modern, directory / "tab.csv", "\t")
    assert variant == "api-field-names"
    return api_style_csv(legs, directory / "api.csv")


CSV_VARIANTS = (
    "modern",
    "legacy+hms",
    "bom",
    "key-columns-only",
    "semicolon+sep-line",
    "tab",
    "api-field-names",
)


def saved_reply(sim: UcmSimulator, target: Path, *, wrap: bool = False) -> Path:
    """The cdrapi reply for the day as the PBX sends it (grouped calls: main_cdr + sub_cdr_N)."""
    with sim.serve() as url, make_client(sim, url, attempts=3) as client:
        query = build_cdr_query(
            local_window(DAY_START, DAY_END, sim.zone), offset=0, page_size=1000, time_filter="Start"
        )
        reply = client.call("cdrapi", query)
    assert any("main_cdr" in item for item in reply["cdr_root"]), "the day must have grouped calls"
    target.write_text(
        json.dumps({"status": 0, "response": reply} if wrap else reply, indent=1), encoding="utf-8"
    )
    return target


def json_lines(legs: list[dict[str, str]], target: Path) -> Path:
    target.write_text("".join(json.dumps(leg) + "\n" for leg in legs), encoding="utf-8")
    return target


# --- every variant end to end --------------------------------------------------------------------


@pytest.mark.parametrize("variant", CSV_VARIANTS)
def test_every_csv_export_variant_loads_the_same_legs_as_the_api(
    pg_engine: sa.Engine, truth: list[dict[str, str]], api_keys: set[str], variant: str, tmp_path: Path
) -> None:
    path = csv_variant(variant, truth, tmp_path)
    summary = import_file(path, pg_engine, TENANT, chunk_rows=40)
    assert (summary.status, summary.format) == ("imported", "csv")
    assert (summary.read, summary.new, summary.duplicate, summary.rejected) == (len(truth), len(truth), 0, 0)
    assert summary.chunks >= 2
    stored = leg_rows(pg_engine)
    assert set(stored) == api_keys
    with_acct = {row["acct_id"] for row in stored.values()} - {None}
    assert with_acct == ({leg["AcctId"] for leg in truth} if variant == "api-field-names" else set())


@pytest.mark.parametrize("shape", ["cdrapi reply (grouped)", "wrapped reply", "json lines (flat legs)"])
def test_saved_json_shapes_load_the_same_legs_as_the_api(
    pg_engine: sa.Engine,
    sim: UcmSimulator,
    truth: list[dict[str, str]],
    api_keys: set[str],
    shape: str,
    tmp_path: Path,
) -> None:
    if shape == "json lines (flat legs)":
        path = json_lines(truth, tmp_path / "legs.jsonl")
    else:
        path = saved_reply(sim, tmp_path / "reply.json", wrap=shape == "wrapped reply")
    summary = import_file(path, pg_engine, TENANT, chunk_rows=25)
    assert (summary.format, summary.read, summary.new, summary.rejected) == (
        "json",
        len(truth),
        len(truth),
        0,
    )
    stored = leg_rows(pg_engine)
    assert set(stored) == api_keys
    assert sorted(row["acct_id"] for row in stored.values()) == sorted(leg["AcctId"] for leg in truth)


# --- bad rows --------------------------------------------------------------------------------------


def test_bad_rows_are_quarantined_with_line_and_reason_while_good_rows_load(
    engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path, expected, good = file_with_bad_rows(truth, tmp_path / "bad.csv")
    summary = import_file(path, engine, TENANT, chunk_rows=3)
    assert (summary.read, summary.new, summary.duplicate, summary.rejected) == (good + 4, good, 0, 4)
    assert summary.first_rejects == expected
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(
                rejected_rows.c.position, rejected_rows.c.reason, rejected_rows.c.source, rejected_rows.c.raw
            ).order_by(rejected_rows.c.position)
        ).all()
        listed = conn.execute(sa.text(summary.rejects_sql)).all()
    assert [(r.position, r.reason) for r in stored] == expected
    assert {r.source for r in stored} == {"csv"}
    assert json.loads(stored[0].raw) == {
        "Account Code": "only",
        "Caller Number": "three",
        "Callee Number": "fields",
    }
    assert [(r.line, r.reason) for r in listed] == expected
    assert table_count(engine, cdr_legs) == good


def test_a_byte_that_is_not_utf8_costs_one_row_not_the_file(
    engine: sa.Engine, truth: list[dict[str, str]], api_keys: set[str], tmp_path: Path
) -> None:
    path = write_ui_export(truth, tmp_path / "export.csv")
    lines = path.read_bytes().split(b"\n")
    line = len(lines) // 2  # 1-based number of the physical line lines[line - 1]
    name = truth[line - 2]["caller_name"] or truth[line - 2]["uniqueid"]
    assert name.encode() in lines[line - 1]
    # Someone fixed a name in a text editor that saved it as Latin-1: one byte 0xE9.
    lines[line - 1] = lines[line - 1].replace(name.encode(), name.encode() + b"\xe9", 1)
    path.write_bytes(b"\n".join(lines))
    summary = import_file(path, engine, TENANT, chunk_rows=20)
    assert (summary.read, summary.new, summary.rejected) == (len(truth), len(truth) - 1, 1)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(rejected_rows)).mappings().one()
    assert stored["position"] == line and stored["source"] == "csv"
    assert stored["reason"].startswith("invalid UTF-8 byte 0xE9 in column ")
    assert json.loads(stored["raw"]) == {
        "__unparsed__": lines[line - 1].rstrip(b"\r").decode("utf-8", "backslashreplace")
    }
    assert len(set(leg_rows(engine)) - api_keys) == 0  # every other leg loaded, as the API gives it


def test_a_utf16_export_is_refused_before_anything_is_written(
    engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    utf8 = write_ui_export(truth, tmp_path / "export.csv")
    path = tmp_path / "utf16.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + utf8.read_text(encoding="utf-8").encode("utf-16-le"))
    with pytest.raises(ImportFormatError, match=r"utf16\.csv is UTF-16 text; .* save it as 'CSV UTF-8'"):
        import_file(path, engine, TENANT)
    assert table_count(engine, imported_files) == 0 and table_count(engine, cdr_legs) == 0


def test_file_without_leg_identity_columns_is_refused_before_anything_is_written(
    engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path = write_ui_export(truth, tmp_path / "no-lastapp.csv", columns=KEY_HEADERS[:-1])
    with pytest.raises(
        ImportFormatError, match=r"lacks columns needed to identify a leg: Last app\. \(lastapp\)"
    ):
        import_file(path, engine, TENANT)
    assert table_count(engine, imported_files) == 0 and table_count(engine, cdr_legs) == 0


# --- idempotence -----------------------------------------------------------------------------------


def test_importing_the_same_file_again_adds_nothing(
    engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path, _expected, good = file_with_bad_rows(truth, tmp_path / "bad.csv")
    first = import_file(path, engine, TENANT)
    before = (leg_rows(engine), table_count(engine, rejected_rows))
    again = import_file(path, engine, TENANT)
    renamed = import_file(shutil.copy(path, tmp_path / "renamed.csv"), engine, TENANT)
    for summary in (again, renamed):
        assert summary.status == "already imported"
        assert (summary.read, summary.new, summary.duplicate, summary.rejected) == (0, 0, 0, 0)
        assert summary.first_rejects == first.first_rejects  # where the rejects are is still shown
    assert (leg_rows(engine), table_count(engine, rejected_rows)) == before
    with engine.connect() as conn:
        record = conn.execute(sa.select(imported_files)).mappings().one()
    assert (record["status"], record["inserted"], record["rejected"], record["filename"]) == (
        "done",
        good,
        4,
        "bad.csv",
    )
    # The same file for another tenant is that tenant's own import.
    other = import_file(path, engine, TenantSettings(name="other", timezone=TZ))
    assert (other.status, other.new) == ("imported", good)


def test_import_after_polling_adds_nothing_and_leaves_api_rows_untouched(
    pg_engine: sa.Engine, sim: UcmSimulator, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    with sim.serve() as url, make_client(sim, url, attempts=3) as client:
        polled = ingest_window(
            client, pg_engine, TENANT, DAY_START, DAY_END, kind="poll", advance_cursor=True
        )
    assert polled.inserted == len(truth)
    before = leg_rows(pg_engine)
    path = write_ui_export(truth, tmp_path / "export.csv")
    summary = import_file(path, pg_engine, TENANT, chunk_rows=50)
    assert (summary.read, summary.new, summary.duplicate, summary.rejected) == (len(truth), 0, len(truth), 0)
    after = leg_rows(pg_engine)
    assert after == before  # acct_id, raw, run ids, timestamps: not one column changed
    assert sorted(row["acct_id"] for row in after.values()) == sorted(leg["AcctId"] for leg in truth)


# --- resume ----------------------------------------------------------------------------------------


def test_a_crashed_import_resumes_after_its_last_committed_chunk(
    pg_engine: sa.Engine,
    truth: list[dict[str, str]],
    api_keys: set[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_ui_export(truth, tmp_path / "export.csv")
    real = importing.normalize_frame
    calls = {"n": 0}

    def crash_on_third_chunk(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "normalize_frame", crash_on_third_chunk)
    with pytest.raises(RuntimeError, match="worker killed"):
        import_file(path, pg_engine, TENANT, chunk_rows=20)
    with pg_engine.connect() as conn:
        failed = conn.execute(sa.select(imported_files)).mappings().one()
    assert (failed["status"], failed["chunks_done"]) == ("failed", 2) and "worker killed" in failed["error"]
    assert table_count(pg_engine, cdr_legs) == failed["rows_read"] == failed["inserted"] > 0

    resumed = import_file(path, pg_engine, TENANT, chunk_rows=33)  # a different chunk size is fine
    assert (resumed.status, resumed.resumed_from_row) == ("resumed", failed["rows_read"])
    assert resumed.read == len(truth) - failed["rows_read"] and resumed.duplicate == 0
    assert set(leg_rows(pg_engine)) == api_keys
    with pg_engine.connect() as conn:
        done = conn.execute(sa.select(imported_files)).mappings().one()
    assert (done["status"], done["rows_read"], done["inserted"], done["error"]) == (
        "done",
        len(truth),
        len(truth),
        None,
    )


# --- memory ----------------------------------------------------------------------------------------

#: Rows of the generated file, and the chunk size it is imported with.
BIG_FILE_ROWS = 12_000
BIG_FILE_CHUNK_ROWS = 1_500
#: Generous bound on the import's peak memory growth. Chunked, it grows by about 20 MiB; the same file
#: loaded as one chunk grows the process by about 110 MiB (measured), so the bound still tells them apart.
MAX_PEAK_GROWTH_BYTES = 60 << 20


def big_export(legs: list[dict[str, str]], target: Path, rows: int) -> Path:
    """A UI export of ``rows`` distinct legs: the day's legs repeated under new uniqueids."""
    from audiapro.ucm.simulator.export import COLUMNS, DEFAULT_FIELDS

    headers = {field: header for field, header, _legacy in COLUMNS}
    uniqueid = DEFAULT_FIELDS.index("uniqueid")
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([headers[field] for field in DEFAULT_FIELDS])
        for i in range(rows):
            row = [legs[i % len(legs)].get(field, "") for field in DEFAULT_FIELDS]
            row[uniqueid] += f"{i // len(legs)}"
            writer.writerow(row)
    return target


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def test_memory_stays_bounded_by_the_chunk_size_on_a_large_file(
    pg_engine: sa.Engine, truth: list[dict[str, str]], tmp_path: Path
) -> None:
    path = big_export(truth, tmp_path / "big.csv", BIG_FILE_ROWS)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        pytest.skip("this system cannot reset a process's peak RSS")
    before = _status_bytes("VmRSS")
    summary = import_file(path, pg_engine, TENANT, chunk_rows=BIG_FILE_CHUNK_ROWS)
    growth = _status_bytes("VmHWM") - before
    assert (summary.read, summary.new, summary.rejected) == (BIG_FILE_ROWS, BIG_FILE_ROWS, 0)
    assert growth < MAX_PEAK_GROWTH_BYTES, f"peak RSS grew by {growth >> 20} MiB"
