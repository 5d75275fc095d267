"""The upload endpoints behind the page: streamed into the spool, imported as an import-cdr-file run
(in-process here), the same file recognised by its hash, and refusals that write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from audiapro.api import uploads
from audiapro.api.fake import InMemoryOrchestrator
from audiapro.ucm.simulator import write_ui_export
from audiapro.warehouse import cdr_legs
from tests.integration.import_support import file_with_bad_rows
from tests.integration.pipeline_support import TENANT, simulator, table_count
from tests.integration.upload_support import AUTH, upload_app

Api = tuple[TestClient, InMemoryOrchestrator]

URL = f"/api/admin/uploads/{TENANT.name}"


@pytest.fixture
def api(engine: sa.Engine, spool: Path) -> Iterator[Api]:
    app, orchestrator = upload_app(engine)
    with TestClient(app) as client:
        yield client, orchestrator


@pytest.fixture
def export(tmp_path: Path) -> tuple[Path, int]:
    legs = simulator(days=1).ground_truth()
    path = tmp_path / "Call Report 2026-03-02.csv"
    write_ui_export(legs, path)
    return path, len(legs)


def _files(spool: Path) -> list[Path]:
    return sorted(p for p in spool.rglob("*") if p.is_file())


def test_an_upload_is_spooled_under_its_hash_and_imported(
    api: Api, export: tuple[Path, int], engine: sa.Engine, spool: Path
) -> None:
    client, orchestrator = api
    path, legs = export
    # A hostile name: shown back, never a path.
    headers = {**AUTH, "X-File-Name": "..%2F..%2Fetc%2Fpasswd"}
    answer = client.put(URL, content=path.read_bytes(), headers=headers)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["file"] == "passwd" and not body["already_imported"]
    assert body["flow_run_url"] == f"http://prefect.test/runs/flow-run/{body['flow_run_id']}"
    spooled = Path(orchestrator.imports[0][1])
    assert spooled.parent == spool / "uploads" / TENANT.name
    assert spooled.name == f"upload-{body['sha256'][:16]}.csv"
    status = client.get(body["status_url"], headers=AUTH).json()
    assert (status["state"], status["read"], status["new"], status["duplicates"]) == ("done", legs, legs, 0)
    assert table_count(engine, cdr_legs) == legs


def test_an_import_run_that_fails_before_reading_the_file_is_reported(
    engine: sa.Engine, spool: Path, tmp_path: Path, export: tuple[Path, int]
) -> None:
    # Spooled where the import run may not read (outside every import root): the run fails unread.
    app, orchestrator = upload_app(engine, spool_dir=tmp_path / "elsewhere")
    with TestClient(app) as client:
        body = client.put(URL, content=export[0].read_bytes(), headers=AUTH).json()
        assert "?run=" in body["status_url"]
        status = client.get(body["status_url"], headers=AUTH).json()
        queued = client.get(body["status_url"].split("?")[0], headers=AUTH).json()
    assert (status["state"], status["run_state"]) == ("failed", "FAILED")
    assert "before reading the file" in status["error"]
    assert queued["state"] == "queued"  # without the run, only the warehouse is asked
    assert table_count(engine, cdr_legs) == 0 and len(orchestrator.imports) == 1


def test_the_same_file_twice_is_recognised_by_its_hash(
    api: Api, export: tuple[Path, int], spool: Path
) -> None:
    client, orchestrator = api
    content = export[0].read_bytes()
    first = client.put(URL, content=content, headers=AUTH).json()
    again = client.put(URL, content=content, headers={**AUTH, "X-File-Name": "renamed.csv"})
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert again.json()["sha256"] == first["sha256"]
    assert len(orchestrator.imports) == 1
    assert len(_files(spool)) == 1  # the second copy was not kept


def test_rejected_rows_are_reported_with_their_lines(api: Api, tmp_path: Path) -> None:
    client, _ = api
    path, expected, good = file_with_bad_rows(simulator(days=1).ground_truth(), tmp_path / "bad.csv")
    body = client.put(URL, content=path.read_bytes(), headers=AUTH).json()
    status = client.get(body["status_url"], headers=AUTH).json()
    assert (status["new"], status["rejected"]) == (good, len(expected))
    assert [(r["line"], r["reason"]) for r in status["rejects"]] == expected


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789abcdef"}])
def test_without_the_admin_token_nothing_is_written(
    api: Api,
    export: tuple[Path, int],
    spool: Path,
    headers: dict[str, str],
) -> None:
    client, orchestrator = api
    answer = client.put(URL, content=export[0].read_bytes(), headers=headers)
    assert answer.status_code == 401
    assert _files(spool) == [] and orchestrator.imports == []
    assert client.get(f"{URL}/{'0' * 64}", headers=headers).status_code == 401


def test_too_large_uploads_are_refused_before_or_while_reading(
    engine: sa.Engine, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "UPLOAD_MAX_BYTES", 10_000)
    app, orchestrator = upload_app(engine)
    with TestClient(app) as client:
        declared = client.put(URL, content=b"x", headers={**AUTH, "Content-Length": "10001"})
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:  # chunked, no declared size: the running cap stops it
            for _ in range(20):
                yield b"a,b,c\n" * 200

        streamed = client.put(URL, content=chunks(), headers=AUTH)
        assert streamed.status_code == 413
    assert _files(spool) == [] and orchestrator.imports == []


def test_unknown_tenant_and_files_that_are_no_cdr_export(api: Api, spool: Path) -> None:
    client, orchestrator = api
    assert client.put("/api/admin/uploads/nobody", content=b"x", headers=AUTH).status_code == 404
    assert client.put(URL, content=b"", headers=AUTH).status_code == 422
    assert client.put(URL, content=b" \n", headers=AUTH).status_code == 422
    not_cdrs = client.put(URL, content=b"name,colour\nann,red\n", headers={**AUTH, "X-File-Name": "pets.csv"})
    assert not_cdrs.status_code == 422 and not_cdrs.json()["detail"].startswith("pets.csv: ")
    assert _files(spool) == [] and orchestrator.imports == []


def test_the_page_is_served_without_anything_from_elsewhere(
    api: Api,
) -> None:
    client, _ = api
    page = client.get("/upload")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    assert client.get("/api/admin/tenants", headers=AUTH).json() == {"tenants": ["acme", "other"]}
