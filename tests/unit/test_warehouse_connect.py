"""Database URLs: the schemes Postgres hosts hand out, and one-line reasons that never show a password."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from audiapro.warehouse.connect import WarehouseUnavailable, check_warehouse, describe_error, safe_url
from audiapro.warehouse.engine import canonical_url, get_engine, resolve_url
from blocks.warehouse import resolve_database_url

PASSWORD = "p@ss:w0rd/%41"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("postgresql://u@db.example/calls", "postgresql+psycopg2://u@db.example/calls"),
        ("postgres://u:pw@db.example:6543/calls?sslmode=require",
         "postgresql+psycopg2://u:pw@db.example:6543/calls?sslmode=require"),
        ("POSTGRES://u@db.example/calls", "postgresql+psycopg2://u@db.example/calls"),
        ("postgresql+psycopg2://u@db.example/calls", "postgresql+psycopg2://u@db.example/calls"),
        ("postgresql+psycopg://u@db.example/calls", "postgresql+psycopg://u@db.example/calls"),
        ("sqlite:///warehouse.sqlite", "sqlite:///warehouse.sqlite"),
    ],
)  # fmt: skip
def test_bare_postgres_schemes_name_the_shipped_driver(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_every_resolver_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIAPRO_DATABASE_URL", "postgres://u@db.example/calls")
    assert resolve_url() == resolve_database_url() == "postgresql+psycopg2://u@db.example/calls"
    assert get_engine().dialect.driver == "psycopg2"  # no connection is opened


def test_the_password_is_kept_byte_for_byte_and_never_shown() -> None:
    url = f"postgresql://ops:{urllib.parse.quote(PASSWORD, safe='')}@db/calls"
    assert sa.make_url(canonical_url(url)).password == PASSWORD
    assert "w0rd" not in safe_url(canonical_url(url))


def test_a_failed_login_names_the_user_not_the_password() -> None:
    orig = psycopg2.OperationalError(
        'connection to server at "db.example" (192.0.2.7), port 5432 failed: FATAL:  password '
        'authentication failed for user "ops"\n'
    )
    error = sa.exc.OperationalError("SELECT 1", {}, orig)
    message = describe_error(error, "postgresql+psycopg2://ops:Secret-1@db.example/calls")
    assert message == (
        "warehouse postgresql+psycopg2://ops@db.example/calls (AUDIAPRO_DATABASE_URL or the Warehouse "
        "block): authentication failed for user 'ops': check the user and password"
    )


def test_an_unusable_sqlite_file_is_one_line(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("plain text, not SQLite\n" * 100)
    with pytest.raises(WarehouseUnavailable, match="is not a SQLite database: check the path"):
        check_warehouse(f"sqlite:///{not_a_database}")
