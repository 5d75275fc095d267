"""Which Prefect API the CLI talks to, and that `audiapro api` leaves no process behind.

Both run the real `audiapro` command in a subprocess, in a scratch PREFECT_HOME / AUDIAPRO_HOME and
without PREFECT_API_URL. The `make up` stack is stood in for by its run-directory file and a real
small HTTP server on loopback (starting a whole stack here would take minutes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audiapro.ops import processes, stack
from audiapro.ops.processes import Tracked

#: The temporary Prefect API migrates a fresh database first: slow on a busy 2-core machine.
API_START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.5
AUDIAPRO = [sys.executable, "-m", "audiapro.cli"]


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh machine: no Prefect API or warehouse configured, state in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AUDIAPRO_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        AUDIAPRO_HOME=str(tmp_path / "home"),  # the embedded SQLite warehouse lives here
        AUDIAPRO_RUN_DIR=str(tmp_path / "run"),
    )
    return env


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` (any status: the admin API says 503 while degraded)."""
    try:
        with urllib.request.urlopen(url, timeout=60):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def alive(family: set[tuple[int, int]]) -> set[int]:
    return {pid for pid, ticks in family if processes.is_running(Tracked("child", "x", pid, ticks))}


def test_api_stops_its_temporary_prefect_server_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    argv = [*AUDIAPRO, "api", "--port", str(port)]
    tracked, popen = processes.spawn("api", "api", argv, env=scratch_env(tmp_path), log_path=log)
    family: set[tuple[int, int]] = set()
    try:
        deadline = time.monotonic() + API_START_TIMEOUT_S
        while not answers(f"http://127.0.0.1:{port}/api/health"):
            assert popen.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(POLL_S)
        family = processes.descendants(tracked.pid)
        assert family, "the temporary Prefect API should run as a child process"
        # The push receiver and the upload page are served too (built once the warehouse is known).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/upload", timeout=10) as page:
            assert page.status == 200 and b"drop" in page.read()
        push = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/push/ucm/nobody", data=b"{}", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(push, timeout=10)
        assert refused.value.code == 401

        popen.send_signal(signal.SIGTERM)
        popen.wait(timeout=STOP_TIMEOUT_S)
        survivors = alive(family)
        assert not survivors, f"still running after SIGTERM: {survivors}\n{log.read_text()}"
        assert "temporary Prefect API on http://127.0.0.1:" in log.read_text()
    finally:
        processes.stop(tracked, processes.StopPlan((signal.SIGKILL,), 5.0), popen=popen)
        for pid in alive(family):
            os.kill(pid, signal.SIGKILL)


class FakePrefect(BaseHTTPRequestHandler):
    """A Prefect API that only knows its health check (404 for everything else); records paths."""

    seen: list[str]

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.seen.append(self.path)
        found = self.path == "/api/health"
        body = json.dumps(True if found else {"detail": "Not Found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``seen``."""


@pytest.fixture
def fake_stack(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A stack API on loopback, recorded in the run directory as `make up` records it."""
    seen: list[str] = []
    handler = type("Handler", (FakePrefect,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    stack.record_api_url(stack.StackConfig(prefect_port=server.server_address[1], run_dir=tmp_path / "run"))
    try:
        yield url, seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_finds_the_api_of_a_running_make_up_stack(
    tmp_path: Path, fake_stack: tuple[str, list[str]]
) -> None:
    url, seen = fake_stack
    done = subprocess.run([*AUDIAPRO, "status", "--json"], env=scratch_env(tmp_path), capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert "PREFECT_API_URL is not set" not in done.stderr
    asked = [path for path in seen if path != "/api/health"]
    assert asked, f"status never asked the stack's API: {done.stdout}{done.stderr}"
    assert stack.running_api_url(tmp_path / "run") == url
