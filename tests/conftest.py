"""Shared fixtures: the throwaway Postgres of `make test`, a fresh database per test, the import spool."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports audiapro.settings or Prefect (both read these once): the tests' state home
# is a scratch directory, never the user's ~/.audiapro or ~/.prefect, even when the shell exports them.
_TEST_HOME = tempfile.mkdtemp(prefix="audiapro-test-home-")
atexit.register(shutil.rmtree, _TEST_HOME, ignore_errors=True)
os.environ["AUDIAPRO_HOME"] = _TEST_HOME
os.environ["PREFECT_HOME"] = os.path.join(_TEST_HOME, "prefect")

import pytest  # noqa: E402

from audiapro import settings  # noqa: E402
from audiapro.warehouse.scratch import scratch_database  # noqa: E402
from tests.prefect_service_support import PrefectServicesStuck, release_prefect_services  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a brand-new, empty Postgres database (dropped afterwards)."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set: run through `make test` (starts Postgres)")
    with scratch_database(TEST_DATABASE_URL, "t") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    """URL of a fresh embedded SQLite warehouse file."""
    return f"sqlite:///{os.path.join(tmp_path, 'warehouse.sqlite')}"


@pytest.fixture(params=["postgres", "sqlite"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Both warehouse back ends: Postgres (production) and SQLite (embedded default)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API for the session (temporary server on SQLite), heartbeats off.

    The heartbeat thread adds about a second to every flow run and tells tests nothing. Prefect's
    event and log services are released before the harness starts (a service still bound to another
    API would keep sending there) and before it ends, with a timeout: the harness's own drain has none,
    so a backlog that cannot be delivered fails the session here instead of hanging it
    (``tests/prefect_service_support.py``).
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    release_prefect_services()
    stuck: PrefectServicesStuck | None = None
    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
        try:
            release_prefect_services()
        except PrefectServicesStuck as exc:  # raised once the harness has stopped its server
            stuck = exc
    if stuck is not None:
        raise stuck


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The import spool under a state dir of its own; no import roots from the environment."""
    path = tmp_path / "state" / "spool"
    path.mkdir(parents=True)
    monkeypatch.setattr(settings, "IMPORT_SPOOL_DIR", path)
    monkeypatch.delenv(settings.IMPORT_ROOTS_ENV, raising=False)
    return path
