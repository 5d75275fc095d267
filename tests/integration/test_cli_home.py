"""One state home: the real `audiapro` command, run from different directories, sees the same state.

Runs the command in subprocesses, as a user would, with ``HOME`` pointing at a scratch directory and
neither ``AUDIAPRO_HOME`` nor ``PREFECT_HOME`` set: the defaults are what is under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audiapro.ops import prefect_store

#: The first command migrates a fresh Prefect database in its temporary server (slow on a busy machine).
COMMAND_TIMEOUT_S = 280


def fresh_user(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with nothing configured: no Prefect or AudiaPro variable, own HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AUDIAPRO_"))}
    env.update(HOME=str(tmp_path / "user"), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")  # fmt: skip
    return env


#: Runs the CLI like its entry point, then reports on stderr which heavy libraries the command loaded.
REPORTING_CLI = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('LOADED', sorted(m for m in ('prefect', 'pandas') if m in sys.modules),"
    " file=sys.stderr))\n"
    "from audiapro.cli import app\n"
    "sys.argv[0] = 'audiapro'\n"
    "app()\n"
)


def run(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", REPORTING_CLI, *args], cwd=cwd, env=env, input=stdin, capture_output=True,
        text=True, timeout=COMMAND_TIMEOUT_S, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_tenant_added_in_one_directory_is_listed_and_reported_from_another(tmp_path: Path) -> None:
    env = fresh_user(tmp_path)
    home = tmp_path / "user" / ".audiapro"
    add = ["tenant", "add", "acme", "--host", "pbx.acme.example", "--timezone", "America/Chicago",
           "--password-stdin", "--no-check"]  # fmt: skip
    added = run(env, tmp_path / "project", *add, stdin="Sup3r-Secret\n")
    assert added.returncode == 0, added.stderr

    listed = run(env, tmp_path / "elsewhere", "tenant", "list")
    assert listed.returncode == 0, listed.stderr
    assert (
        "acme" in listed.stdout and "pbx.acme.example" in listed.stdout and "America/Chicago" in listed.stdout
    )
    assert "Sup3r-Secret" not in listed.stdout + listed.stderr

    status = run(env, tmp_path / "elsewhere", "status")
    assert status.returncode == 1, status.stderr  # degraded: nothing is deployed without a server
    assert f"home      {home}" in status.stdout
    assert f"warehouse sqlite:///{home / 'warehouse.sqlite'}" in status.stdout
    assert "prefect   none running" in status.stdout and "acme" in status.stdout
    assert "Traceback" not in status.stderr
    # Neither read needed Prefect (so no temporary Prefect server) nor pandas.
    assert "LOADED []" in listed.stderr and "LOADED []" in status.stderr

    # Everything lives in the home; no directory the command ran from got state of its own.
    assert (home / "prefect" / "prefect.db").is_file() and (home / "warehouse.sqlite").is_file()
    assert not any(
        (tmp_path / d / s).exists() for d in ("project", "elsewhere") for s in (".audiapro", ".prefect")
    )
    assert not (tmp_path / "user" / ".prefect").exists()

    # The block reader gives what Prefect stored: the fields, and the secret only when asked for.
    db = home / "prefect" / prefect_store.PREFECT_DB_FILE
    [without] = prefect_store._from_database(db, "clouducm", include_secrets=False) or []
    [with_secret] = prefect_store._from_database(db, "clouducm", include_secrets=True) or []
    assert (without.name, without.data["host"], without.data["port"]) == ("acme", "pbx.acme.example", 8443)
    assert "password" not in without.data and with_secret.data["password"] == "Sup3r-Secret"
