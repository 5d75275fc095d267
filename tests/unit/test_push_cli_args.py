"""`audiapro api --push-tcp/--push-tcp-allow` and `audiapro tenant push`: bad input is one line, before
anything starts (no Prefect API, no warehouse touched)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from audiapro.cli import app
from audiapro.commands.push import settings_lines

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push-tcp", "acme"], "expected TENANT:PORT"),
        (["--push-tcp", "acme:99999"], "expected TENANT:PORT"),
        (["--push-tcp", ":9500"], "expected TENANT:PORT"),
        (["--push-tcp", "acme:9500", "--push-tcp-allow", "not-a-network"], "--push-tcp-allow"),
    ],
)
def test_bad_tcp_push_options_fail_in_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["api", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_the_ucm_settings_lines() -> None:
    lines = settings_lines("https://cdr.example.net", "acme", "ucm-acme", None, "load")
    assert lines == ["url: https://cdr.example.net/api/push/ucm/acme", "user: ucm-acme", "format: JSON",
                     "mode: load"]  # fmt: skip
    assert "password: pw" in settings_lines("http://h", "acme", "u", "pw", "capture")
