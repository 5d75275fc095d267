"""Shared fixtures: the throwaway Postgres started by `make test` and a fresh database per test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

# Before anything imports audiapro.settings or Prefect (both read these once): the tests' state home
# is a scratch directory, never the user's ~/.audiapro or ~/.prefect, even when the shell exports them.
_TEST_HOME = tempfile.mkdtemp(prefix="audiapro-test-home-")
atexit.register(shutil.rmtree, _TEST_HOME, ignore_errors=True)
os.environ["AUDIAPRO_HOME"] = _TEST_HOME
os.environ["PREFECT_HOME"] = os.path.join(_TEST_HOME, "prefect")

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a brand-new, empty Postgres database (dropped afterwards)."""
    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL not set: run through `make test` (starts Postgres)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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

    The heartbeat thread adds about a second to every flow run and tells tests nothing.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
