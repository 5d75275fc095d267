"""Headless Debian Chromium driven by Playwright, for the page and artifact screenshot tests.

The browser is the operating system's (`apt-get install chromium`, done by `scripts/ensure-browser.sh`
from `make test`); Playwright's own browser download is never used. Screenshots land in
`tests/artifacts/` (ignored by git) so a CI run keeps them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

# Flags that keep Chromium quiet on a machine with no outside network and no display: without the
# background-networking ones it retries Google's hosts on every start.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """Where Debian's Chromium is; fails the test with what to install when it is missing.

    Returns:
        The executable's path (``$AUDIAPRO_CHROMIUM`` when set).
    """
    import pytest

    found = os.environ.get("AUDIAPRO_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Debian's chromium is not installed: run scripts/ensure-browser.sh (make test does)")
    return found


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A fresh headless page in Debian's Chromium, closed afterwards.

    Args:
        width: Viewport width in CSS pixels.
        height: Viewport height in CSS pixels.

    Yields:
        A Playwright page.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    """Path of a kept screenshot under ``tests/artifacts/``, its folder created.

    Args:
        name: File name, e.g. ``"upload-page.png"``.

    Returns:
        The path to pass to ``page.screenshot(path=...)``.
    """
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR / name
