"""The one state home (``audiapro.home``) and the block reader that spares commands a Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audiapro import home
from audiapro.commands.tenants import TENANT_LIST_DEFAULTS
from audiapro.ops import prefect_store


def _python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return what it printed."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _state_dir_seen_from(cwd: Path, env: dict[str, str]) -> str:
    code = "from audiapro import settings; print(settings.STATE_DIR, settings.DEFAULT_DATABASE_URL)"
    return _python(code, cwd=cwd, env=env).strip()


def test_the_warehouse_path_does_not_depend_on_the_current_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDIAPRO_HOME", "PREFECT_HOME")}
    env["HOME"] = str(tmp_path / "user")
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    seen = _state_dir_seen_from(first, env)
    assert seen == _state_dir_seen_from(second, env)
    assert seen.split()[0] == str(tmp_path / "user" / ".audiapro")
    assert seen.split()[1] == f"sqlite:///{tmp_path / 'user' / '.audiapro' / 'warehouse.sqlite'}"


def test_use_home_exports_absolute_homes_and_keeps_a_users_prefect_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIAPRO_HOME", "relative/state")
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    assert home.use_home() == tmp_path / "relative" / "state"
    assert os.environ["AUDIAPRO_HOME"] == str(tmp_path / "relative" / "state")
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "relative" / "state" / "prefect")
    assert (tmp_path / "relative" / "state" / "prefect").is_dir()  # Prefect would not create the parent
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "own"))
    home.use_home()
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "own")


def test_tenant_list_defaults_are_the_blocks_defaults() -> None:
    from blocks.clouducm import CloudUCM

    assert {key: CloudUCM.model_fields[key].default for key in TENANT_LIST_DEFAULTS} == TENANT_LIST_DEFAULTS


@pytest.fixture
def outside_prefect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The reader as the CLI runs it: Prefect not yet imported, nothing configured, cwd without settings."""
    monkeypatch.setattr(prefect_store, "_prefect_loaded", lambda: False)
    for name in ("PREFECT_API_URL", *prefect_store._REDIRECTING_ENV, "PREFECT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_prefect_database_yet_means_no_tenants(outside_prefect: Path) -> None:
    assert prefect_store.block_documents("clouducm") == []
    assert not (outside_prefect / "prefect").exists()  # reading creates nothing


@pytest.mark.parametrize(
    "setting",
    [
        {"PREFECT_API_URL": "https://api.prefect.cloud/api/accounts/a/workspaces/w"},
        {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_API_KEY": "pnu_x"},
        {"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://u@db/prefect"},
    ],
)
def test_configurations_only_prefect_can_read_are_left_to_prefect(
    outside_prefect: Path, monkeypatch: pytest.MonkeyPatch, setting: dict[str, str]
) -> None:
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    assert prefect_store.block_documents("clouducm") is None


def test_a_profile_pointing_prefect_elsewhere_is_left_to_prefect(outside_prefect: Path) -> None:
    (outside_prefect / "prefect").mkdir()
    profiles = outside_prefect / "prefect" / "profiles.toml"
    profiles.write_text('active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "https://x.example/api"\n')
    assert prefect_store.block_documents("clouducm") is None
    profiles.write_text('active = "local"\n[profiles.local]\nPREFECT_LOGGING_LEVEL = "DEBUG"\n')
    assert prefect_store.block_documents("clouducm") == []


def test_project_settings_in_the_current_directory_are_left_to_prefect(outside_prefect: Path) -> None:
    (outside_prefect / "prefect.toml").write_text('[api]\nurl = "https://x.example/api"\n')
    assert prefect_store.block_documents("clouducm") is None


def test_an_api_that_does_not_answer_is_left_to_prefect(
    outside_prefect: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    assert prefect_store.block_documents("clouducm") is None  # Prefect's client then says what is wrong


def test_an_unknown_database_layout_is_left_to_prefect(outside_prefect: Path) -> None:
    import sqlite3

    (outside_prefect / "prefect").mkdir()
    with sqlite3.connect(outside_prefect / "prefect" / "prefect.db") as conn:
        conn.execute("CREATE TABLE other (x)")
    assert prefect_store.block_documents("clouducm") is None


def test_the_warehouse_package_loads_pandas_only_for_what_needs_it() -> None:
    """`audiapro status` reads sync state through ``audiapro.warehouse``: no pandas for that."""
    code = (
        "import sys\n"
        "from audiapro.warehouse import list_sync_states, recent_reconcile_days, list_login_blocks\n"
        "light = 'pandas' not in sys.modules\n"
        "import audiapro.warehouse.calls, audiapro.warehouse.login_blocks\n"
        "from audiapro.warehouse import calls, login_blocks, load_batch\n"
        "print(light, calls.name, login_blocks.name, 'pandas' in sys.modules)\n"
    )
    # The tables keep their names although two submodules share them.
    assert _python(code).split() == ["True", "calls", "login_blocks", "True"]


def test_every_exported_warehouse_name_has_a_home_and_resolves() -> None:
    """``__all__``, the lazy loader's ``_HOMES`` and the modules agree: a name added to one list and
    not the other fails here, not at a caller's first use."""
    code = (
        "import audiapro.warehouse as w\n"
        "assert sorted(w._HOMES) == sorted(w.__all__), set(w._HOMES) ^ set(w.__all__)\n"
        "missing = [name for name in w.__all__ if getattr(w, name, None) is None]\n"
        "assert not missing, missing\n"
    )
    _python(code)


def test_a_dotenv_counts_only_when_it_sets_prefect(outside_prefect: Path) -> None:
    (outside_prefect / ".env").write_text("DJANGO_DEBUG=1\n")
    assert prefect_store.block_documents("clouducm") == []
    (outside_prefect / ".env").write_text("PREFECT_API_URL=https://x.example/api\n")
    assert prefect_store.block_documents("clouducm") is None
