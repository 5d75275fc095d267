"""Where tasks get their warehouse engine: resolved from env/block, migrated once per process."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from audiapro.warehouse import get_engine, upgrade
from blocks.warehouse import resolve_database_url

if TYPE_CHECKING:
    import sqlalchemy as sa


@functools.cache
def _migrated_engine(url: str) -> sa.Engine:
    engine = get_engine(url)
    upgrade(engine)
    return engine


def warehouse_engine() -> sa.Engine:
    """Engine of the configured warehouse, schema at head (alembic upgrade runs once per process)."""
    return _migrated_engine(resolve_database_url())
