"""The upload page in a real browser (headless Debian Chromium via tests/browser_support.py).

A UI export is dropped on the page (a ``drop`` event carrying a ``DataTransfer``, as a user's drag
does), the page uploads it with a progress bar, shows the import's final counts, and the legs are in
the warehouse. The screenshot is kept in tests/artifacts/upload-page.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiapro.api.serve import served_in_thread
from audiapro.ucm.simulator import write_ui_export
from audiapro.warehouse import cdr_legs
from tests.browser_support import chromium_page, screenshot_path
from tests.integration.import_support import file_with_bad_rows
from tests.integration.pipeline_support import simulator, table_count
from tests.integration.upload_support import TOKEN, upload_app

#: Milliseconds the page may take for each step (upload and import of a small file take well under 1 s).
STEP_MS = 30_000
#: Drops ``text`` as a file named ``name`` on the drop zone, the way a drag from the desktop arrives.
DROP_JS = """([text, name]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/csv" }));
  const zone = document.getElementById("drop");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
}"""


@pytest.fixture
def served(engine: sa.Engine, spool: Path) -> Iterator[str]:
    """The admin API with the upload page under uvicorn on a free loopback port."""
    app, _ = upload_app(engine)
    with served_in_thread(app) as url:
        yield url


@pytest.mark.parametrize("any_db_url", ["postgres"], indirect=True)
def test_a_dropped_export_is_uploaded_imported_and_counted(
    served: str, engine: sa.Engine, tmp_path: Path
) -> None:
    legs = simulator(days=1).ground_truth()
    export, expected_rejects, good = file_with_bad_rows(legs, tmp_path / "bad.csv")
    full = tmp_path / "Call Report.csv"
    write_ui_export(legs, full)
    with chromium_page() as page:
        page.goto(f"{served}/upload")
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        page.wait_for_selector("#tenant option[value=acme]", state="attached", timeout=STEP_MS)
        page.select_option("#tenant", "acme")

        page.evaluate(DROP_JS, [full.read_text(encoding="utf-8"), full.name])
        page.wait_for_function("document.getElementById('state').textContent === 'done'", timeout=STEP_MS)
        assert page.eval_on_selector("#progress", "p => p.value") == 100
        assert page.text_content("#read") == str(len(legs))
        assert page.text_content("#new") == str(len(legs))
        assert page.text_content("#duplicates") == "0"
        assert "Prefect UI" in (page.text_content("#run") or "")
        assert table_count(engine, cdr_legs) == len(legs)

        # A second file with bad rows: the legs already stored count as duplicates, the bad rows
        # are listed with their lines. The screenshot shows this richer state.
        page.evaluate(DROP_JS, [export.read_text(encoding="utf-8"), "export with bad rows.csv"])
        page.wait_for_function(
            f"document.querySelectorAll('#rejects li').length === {len(expected_rejects)}", timeout=STEP_MS
        )
        page.wait_for_function("document.getElementById('state').textContent === 'done'", timeout=STEP_MS)
        assert page.text_content("#new") == "0"
        assert page.text_content("#duplicates") == str(good)
        assert page.text_content("#rejected") == str(len(expected_rejects))
        lines = page.eval_on_selector_all("#rejects li", "items => items.map(i => i.textContent)")
        assert lines == [f"line {line}: {reason}" for line, reason in expected_rejects]
        shot = screenshot_path("upload-page.png")
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    assert table_count(engine, cdr_legs) == len(legs)
