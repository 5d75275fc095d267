"""`tenant add/set/test` ask the PBX: a Chicago PBX entered as UTC is refused before it is saved, a
wrong password pauses logins and a rotated one lifts the pause at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner, Result

from audiapro.cli import app
from audiapro.warehouse import get_engine, read_login_block
from blocks.clouducm import CloudUCM, load_tenant
from tests.integration.pipeline_support import simulator

pytestmark = pytest.mark.usefixtures("prefect_api")

runner = CliRunner()
PASSWORD = "Ch1cago-Pa55word"
TENANT = "chicago-check"


@pytest.fixture
def chicago() -> Iterator[str]:
    """A Chicago PBX (UTC−06:00 in January), its clock pinned; yields its port."""
    sim = simulator(
        seed=4,
        calls_per_day=80,
        start=date(2026, 1, 12),
        tz="America/Chicago",
        password=PASSWORD,
        now=datetime(2026, 1, 13, 23, tzinfo=UTC),
    )
    with sim.serve() as url:
        yield url.rsplit(":", 1)[1]
    CloudUCM.delete(TENANT)


def tenant(*args: str, password: str | None = None) -> Result:
    flags = ["--password-stdin"] if password is not None else []
    return runner.invoke(app, ["tenant", *args, *flags], input=f"{password}\n" if password else None)


def where(port: str) -> list[str]:
    return ["--host", "127.0.0.1", "--port", port, "--scheme", "http"]


def test_a_pbx_entered_in_the_wrong_zone_is_not_saved(chicago: str, warehouse_url: str) -> None:
    result = tenant("add", TENANT, *where(chicago), "--timezone", "UTC", password=PASSWORD)
    assert result.exit_code == 2, result.output
    assert "UTC−06:00; zone UTC is UTC+00:00 then: the PBX runs at another offset" in result.output
    assert "their UTC epochs say UTC−06:00" in result.output
    assert "not saved" in result.output and PASSWORD not in result.output
    with pytest.raises(ValueError):
        load_tenant(TENANT)

    saved = tenant("add", TENANT, *where(chicago), "--timezone", "America/Chicago", password=PASSWORD)
    assert saved.exit_code == 0, saved.output
    assert "times agree with America/Chicago" in saved.output
    tested = tenant("test", TENANT)
    assert tested.exit_code == 0 and tested.output.count("ok  ") == 3, tested.output


def test_a_wrong_password_pauses_logins_until_it_is_rotated(chicago: str, warehouse_url: str) -> None:
    added = tenant(
        "add", TENANT, *where(chicago), "--timezone", "America/Chicago", "--no-check", password="old"
    )
    assert added.exit_code == 0, added.output
    first = tenant("test", TENANT)
    assert first.exit_code == 1 and "status -37" in first.output and "password" in first.output
    engine = get_engine(warehouse_url)
    assert read_login_block(engine, TENANT) is not None
    rotated = tenant("set", TENANT, password=PASSWORD)
    assert rotated.exit_code == 0, rotated.output
    assert "login pause lifted" in rotated.output
    assert read_login_block(engine, TENANT) is None
    assert tenant("test", TENANT).exit_code == 0


@pytest.mark.parametrize(("host", "scheme"), [("127.0.0.1", "http"), ("no-such-pbx.invalid", "https")])
def test_an_unreachable_pbx_is_one_finding_line_after_one_attempt(
    host: str, scheme: str, warehouse_url: str
) -> None:
    """Closed port or unknown host: `tenant add` saves with a hint, `tenant test` says so in one line."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    name = "unreachable-check"
    added = tenant("add", name, "--host", host, "--port", port, "--scheme", scheme, "--timezone", "UTC",
                   password=PASSWORD)  # fmt: skip
    assert added.exit_code == 0, added.output
    try:
        assert (
            f"could not reach the PBX to verify: saved anyway; run `audiapro tenant test {name}`"
            in added.output
        )
        tested = tenant("test", name)
        assert tested.exit_code == 1, tested.output
        assert tested.exception is None or isinstance(tested.exception, SystemExit)  # no crash
        failures = [line for line in tested.output.splitlines() if line.startswith("FAIL")]
        assert len(failures) == 1 and host in failures[0] and "after 1 attempt(s)" in failures[0], (
            tested.output
        )
        assert "Traceback" not in tested.output and PASSWORD not in tested.output + added.output
    finally:
        CloudUCM.delete(name)
