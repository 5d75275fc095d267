"""`make up` / `make down` logic that needs no server: configuration, demo tenant rule, empty down."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from audiapro.ops import processes, stack
from audiapro.ops.stack import StackConfig


def test_config_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"AUDIAPRO_PREFECT_PORT": "4311", "AUDIAPRO_SIM_PORT": "18089",
                        "AUDIAPRO_WORKERS": "2", "AUDIAPRO_RUN_DIR": str(tmp_path)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    cfg = StackConfig.from_env()
    assert (cfg.prefect_port, cfg.sim_port, cfg.workers, cfg.run_dir) == (4311, 18089, 2, tmp_path)
    assert cfg.api_url == "http://127.0.0.1:4311/api"


def test_children_talk_to_the_local_api_and_never_inherit_the_simulator_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(stack.SIM_PASSWORD_ENV, "leaked?")
    monkeypatch.setenv("PREFECT_API_URL", "http://somewhere-else/api")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AUDIAPRO_HOME", raising=False)
    env = stack.child_env(StackConfig(prefect_port=4999))
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4999/api"
    assert stack.SIM_PASSWORD_ENV not in env
    assert Path(env["AUDIAPRO_HOME"]).is_absolute() and env["DO_NOT_TRACK"] == "1"


def test_the_stack_keeps_its_state_in_the_clis_home_wherever_make_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Prefect's database (the tenants) and the run files live in $AUDIAPRO_HOME, not the checkout."""
    monkeypatch.setenv("AUDIAPRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    monkeypatch.delenv("AUDIAPRO_RUN_DIR", raising=False)
    env = stack.child_env(StackConfig())
    assert env["PREFECT_HOME"] == str(tmp_path / "home" / "prefect")
    assert StackConfig.from_env().run_dir == tmp_path / "home" / "run" == StackConfig().run_dir
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))  # a user's own choice is kept
    assert stack.child_env(StackConfig())["PREFECT_HOME"] == str(tmp_path / "mine")


@pytest.mark.parametrize(
    ("tenants", "wanted"),
    [
        ([], True),
        ([{"name": "demo", "data": {"host": "127.0.0.1"}}], True),  # left by `make demo` or an earlier up
        ([{"name": "demo", "data": {"host": "071ffb.c.myucm.cloud"}}], False),
        ([{"name": "acme", "data": {"host": "071ffb.c.myucm.cloud"}}], False),
    ],
)
def test_demo_tenant_only_when_there_is_no_real_one(tenants: list[dict[str, object]], wanted: bool) -> None:
    assert stack.wants_demo_tenant(tenants) is wanted


def test_down_and_status_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = StackConfig(run_dir=tmp_path)
    assert stack.down(cfg) == 0
    assert stack.status(cfg) == 1
    processes.save(tmp_path, processes.Tracked(name="worker-1", kind="worker", pid=1, start_ticks=-1))
    assert stack.down(cfg) == 0  # a stale PID file (process long gone) is just removed
    assert processes.load_all(tmp_path) == []
    assert "nothing to stop" in capsys.readouterr().out
    assert stack.main(["sideways"]) == 2


def test_the_cli_ignores_the_api_file_of_a_stopped_stack(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = StackConfig(prefect_port=port, run_dir=tmp_path / "run")
    stack.record_api_url(cfg)  # left behind by a stack that died without `make down`
    assert (cfg.run_dir / stack.API_URL_FILE).read_text().strip() == f"http://127.0.0.1:{port}/api"
    assert stack.running_api_url(cfg.run_dir) is None
    assert stack.running_api_url(tmp_path / "nothing-here") is None
    assert stack.down(cfg) == 0
    assert not (cfg.run_dir / stack.API_URL_FILE).exists()


def test_the_push_demo_password_reaches_no_other_child_and_its_port_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(stack.PUSH_PASSWORD_ENV, "leaked?")
    monkeypatch.setenv("AUDIAPRO_API_PORT", "18123")
    assert stack.PUSH_PASSWORD_ENV not in stack.child_env(StackConfig())
    assert StackConfig.from_env().api_port == 18123


def test_a_busy_api_port_skips_the_push_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = StackConfig(api_port=busy.getsockname()[1], run_dir=tmp_path)
        assert stack.start_push_demo(cfg) is None
    assert "no push demo" in capsys.readouterr().out
    assert processes.load_all(tmp_path) == []


def test_workers_ask_for_runs_every_two_seconds_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spawned: list[dict[str, str]] = []

    def spawn(
        name: str, kind: str, argv: list[str], *, env: dict[str, str], **_kw: object
    ) -> tuple[str, None]:
        spawned.append(env)
        return name, None

    monkeypatch.setattr(stack.processes, "spawn", spawn)
    monkeypatch.setattr(stack.processes, "save", lambda *_args: None)
    monkeypatch.delenv("PREFECT_WORKER_QUERY_SECONDS", raising=False)
    stack.spawn_workers(StackConfig(workers=2, run_dir=tmp_path))
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "5")
    stack.spawn_workers(StackConfig(workers=1, run_dir=tmp_path))
    assert [env["PREFECT_WORKER_QUERY_SECONDS"] for env in spawned] == ["2", "2", "5"]
