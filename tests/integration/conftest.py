"""Fixtures the integration tests share: freshly migrated warehouses, the flows' warehouse URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from audiapro.warehouse import get_engine, upgrade


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    """A migrated warehouse on each back end: Postgres (production) and SQLite (embedded default)."""
    yield from _migrated(any_db_url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    """A migrated warehouse on Postgres only."""
    yield from _migrated(pg_url)


@pytest.fixture
def warehouse_url(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Postgres warehouse, also set as ``AUDIAPRO_DATABASE_URL`` for flows and tasks to find."""
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", pg_url)
    return pg_url


def _migrated(url: str) -> Iterator[sa.Engine]:
    engine = get_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
