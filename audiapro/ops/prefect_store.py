"""Read Prefect block documents (the tenants, the warehouse URL) without importing Prefect.

Commands that only read blocks (``tenant list``, ``status``) used to import Prefect's client
(seconds) and, without ``PREFECT_API_URL``, start a temporary Prefect server for each call (10-30 s)
just to read a few rows. The blocks stay the one home of the tenants; this module reads them
faster where it can prove it reads what Prefect would:

* **a Prefect API on loopback over HTTP** (the `make up` stack, found by ``use_local_stack_api``,
  or any local server in ``PREFECT_API_URL``): one REST call with the standard library;
* **no Prefect API configured**: Prefect would start a temporary server on its own SQLite database
  in ``$PREFECT_HOME``; that database is read directly, read-only, decrypting the block data the way
  Prefect's server does (Fernet, key from ``PREFECT_SERVER_ENCRYPTION_KEY`` or the database).

Anything else (Prefect already imported in this process, a remote or authenticated API, a
Postgres-backed Prefect database, settings in a Prefect profile or project file that could change
the answer, a database layout this Prefect version does not write) returns None, and the caller
asks Prefect's own client as before.
``tests/integration/test_prefect_store.py`` checks this reader against blocks saved by Prefect.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from audiapro import home
from audiapro.ops import prefect_rest

API_URL_ENV: Final = "PREFECT_API_URL"
#: Variables that send Prefect's client or its temporary server elsewhere than the defaults read here.
_REDIRECTING_ENV: Final = (
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_PROFILES_PATH",
)
#: Key prefixes in a Prefect profile that can change where blocks are read from.
_REDIRECTING_PROFILE_PREFIXES: Final = (
    "PREFECT_API_",
    "PREFECT_SERVER_DATABASE",
    "PREFECT_SERVER_ENCRYPTION",
)
#: Project file Prefect reads settings from in the current directory (besides ``.env`` and
#: ``pyproject.toml``, which count only when they mention Prefect).
_PROJECT_SETTINGS_FILE: Final = "prefect.toml"
PREFECT_DB_FILE: Final = "prefect.db"
ENCRYPTION_KEY_ENV: Final = "PREFECT_SERVER_ENCRYPTION_KEY"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: Seconds a REST read of the local API may take before the caller falls back to Prefect's client.
REST_TIMEOUT_S: Final = 5.0

_DOCUMENTS_SQL: Final = """
SELECT d.name, d.data, s.fields
FROM block_document AS d
JOIN block_type AS t ON t.id = d.block_type_id
JOIN block_schema AS s ON s.id = d.block_schema_id
WHERE t.slug = ? AND NOT d.is_anonymous
ORDER BY d.name
"""
_KEY_SQL: Final = "SELECT value FROM configuration WHERE key = 'ENCRYPTION_KEY'"


@dataclass(frozen=True)
class BlockDocument:
    """A block document as stored: its name and field values.

    Attributes:
        name: The document's name (a tenant's name for CloudUCM blocks).
        data: Field values; secret fields are left out unless they were asked for.
    """

    name: str
    data: dict[str, Any]


def block_documents(type_slug: str, *, include_secrets: bool = False) -> list[BlockDocument] | None:
    """The named documents of a block type, sorted by name, read without importing Prefect.

    Args:
        type_slug: Block type slug (``clouducm``, ``audiapro-warehouse``...).
        include_secrets: Keep secret fields (e.g. the warehouse URL); else they are left out.

    Returns:
        The documents (none when the type or the database does not exist yet), or None when only
        Prefect's client can answer reliably (see the module docstring).
    """
    api_url = os.environ.get(API_URL_ENV)
    if _prefect_loaded() or any(os.environ.get(name) for name in _REDIRECTING_ENV):
        return None
    if api_url:
        return _from_local_api(api_url, type_slug, include_secrets) if _is_local_http(api_url) else None
    if _settings_elsewhere():
        return None
    return _from_database(home.prefect_home() / PREFECT_DB_FILE, type_slug, include_secrets)


def _prefect_loaded() -> bool:
    """Whether Prefect runs in this process: its settings may then differ from the environment.

    (``prefect_test_harness`` and ``temporary_settings`` change them in-process only.) The `audiapro`
    command reads blocks before anything imports Prefect, so this costs it nothing.
    """
    return "prefect" in sys.modules


def _is_local_http(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def _from_local_api(api_url: str, slug: str, include_secrets: bool) -> list[BlockDocument] | None:
    path = f"/block_types/slug/{urllib.parse.quote(slug)}/block_documents"
    query = "?include_secrets=true" if include_secrets else ""
    try:
        found = prefect_rest.call(api_url, "GET", path + query, attempts=1, timeout=REST_TIMEOUT_S)
    except prefect_rest.ApiError as exc:
        return [] if exc.status == 404 else None  # 404: the block type is not registered yet
    except (OSError, ValueError):
        return None
    documents = []
    for found_document in found or []:
        if not found_document.get("name"):
            continue
        data = dict(found_document.get("data") or {})
        if not include_secrets:  # the API shows them obfuscated: leave them out like the database path
            fields = (found_document.get("block_schema") or {}).get("fields") or {}
            data = _without_secrets(data, fields)
        documents.append(BlockDocument(str(found_document["name"]), data))
    return sorted(documents, key=lambda d: d.name)


def _without_secrets(values: dict[str, Any], schema_fields: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the fields the block schema lists as secret."""
    # A nested secret ("a.b") hides its whole top-level field: never show more than Prefect would.
    secret = {str(field).split(".")[0] for field in schema_fields.get("secret_fields", [])}
    return {key: value for key, value in values.items() if key not in secret}


def _settings_elsewhere() -> bool:
    """Whether a Prefect profile or project file may point Prefect elsewhere than ``$PREFECT_HOME``."""
    if Path(_PROJECT_SETTINGS_FILE).exists():
        return True
    try:
        if "PREFECT_" in Path(".env").read_text(errors="replace"):
            return True
    except FileNotFoundError:
        pass
    except OSError:
        return True
    try:
        with Path("pyproject.toml").open("rb") as file:
            if "prefect" in tomllib.load(file).get("tool", {}):
                return True
    except FileNotFoundError:
        pass
    except (OSError, tomllib.TOMLDecodeError):
        return True
    return _profile_redirects(home.prefect_home() / "profiles.toml")


def _profile_redirects(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            profiles = tomllib.load(file)
    except FileNotFoundError:
        return False
    except (OSError, tomllib.TOMLDecodeError):
        return True
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    keys = (profiles.get("profiles") or {}).get(active) or {}
    return any(str(key).startswith(_REDIRECTING_PROFILE_PREFIXES) for key in keys)


def _from_database(path: Path, slug: str, include_secrets: bool) -> list[BlockDocument] | None:
    """Read the documents from Prefect's SQLite database (read-only; nothing is created)."""
    if not path.exists():
        return []  # Prefect never ran with this home: no block at all
    from cryptography.fernet import Fernet, InvalidToken

    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            rows = conn.execute(_DOCUMENTS_SQL, (slug,)).fetchall()
            key = os.environ.get(ENCRYPTION_KEY_ENV) or _stored_key(conn)
    except sqlite3.Error:
        return None  # a layout this reader does not know (another Prefect version): ask Prefect
    if not rows:
        return []
    if key is None:
        return None
    try:
        fernet = Fernet(key.encode())
        return [_document(fernet, name, data, fields, include_secrets) for name, data, fields in rows]
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None


def _stored_key(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(_KEY_SQL).fetchone()
    return str(json.loads(row[0])["fernet_key"]) if row else None


def _document(fernet: Any, name: str, data: str, fields: str, include_secrets: bool) -> BlockDocument:
    """Decrypt one document's data; leave out its secret fields unless asked for."""
    token = json.loads(data)  # the column holds the Fernet token as a JSON string
    values: dict[str, Any] = json.loads(fernet.decrypt(token.encode()))
    return BlockDocument(name, values if include_secrets else _without_secrets(values, json.loads(fields)))
