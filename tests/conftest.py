"""Shared fixtures: the throwaway Postgres started by `make test` and a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.prefect_service_support import PrefectServicesStuck, release_prefect_services

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
