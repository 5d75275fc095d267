"""The warehouse block: the database URL, kept as a secret (it usually embeds a password)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar, cast

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from audiapro import settings
from audiapro.prefect_names import DEFAULT_BLOCK, WAREHOUSE_BLOCK_TYPE
from audiapro.warehouse import get_engine
from audiapro.warehouse.engine import canonical_url

if TYPE_CHECKING:
    import sqlalchemy as sa

#: Name of the block document `resolve_database_url` looks for.
DEFAULT_WAREHOUSE_BLOCK = DEFAULT_BLOCK


class Warehouse(Block):
    """Where CDRs are loaded: a database URL (postgresql://user:pass@host/db in production)."""

    _block_type_name: ClassVar[str] = "AudiaPro Warehouse"
    _block_type_slug: ClassVar[str] = WAREHOUSE_BLOCK_TYPE
    _description: ClassVar[str] = "Database URL of the AudiaPro CDR warehouse (Postgres; SQLite for demos)."

    url: SecretStr = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg2://user:pass@host/db")

    def engine(self) -> sa.Engine:
        """Return an engine for this warehouse."""
        return get_engine(self.url.get_secret_value())


def resolve_database_url(block_name: str = DEFAULT_WAREHOUSE_BLOCK) -> str:
    """The warehouse URL: AUDIAPRO_DATABASE_URL, else the Warehouse block, else embedded SQLite.

    Returned in ``canonical_url`` form (``postgres://`` and ``postgresql://`` name the shipped
    psycopg2 driver), the same URL ``audiapro.warehouse.get_engine`` would use.
    """
    from_env = os.environ.get(settings.DATABASE_URL_ENV)
    if from_env:
        return canonical_url(from_env)
    try:
        block = cast(Warehouse, Warehouse.load(block_name))
    except ValueError:  # no such block document
        return settings.DEFAULT_DATABASE_URL
    return canonical_url(block.url.get_secret_value())
