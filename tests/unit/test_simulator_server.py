"""UCM simulator transport: TLS with its own CA, loopback only, clean stop, control endpoints, tenants."""

from __future__ import annotations

import hashlib
import ssl
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator, serve_forever


def config(**overrides: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {"seed": 2, "calls_per_day": 60, "start": date(2026, 3, 2), "days": 1}
    settings.update(overrides)
    return SimulatorConfig(**settings)


def challenge(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.post(
        "/api", json={"request": {"action": "challenge", "user": "cdrapi"}}
    ).json()
    return body


def test_tls_verifies_against_the_simulators_ca(tmp_path: Path) -> None:
    sim = UcmSimulator(config(tls=True, cert_dir=tmp_path / "certs"))
    assert sim.ca_file == tmp_path / "certs" / "ca.pem" and sim.ca_file.exists()
    with sim.serve() as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=base_url, verify=ssl.create_default_context(cafile=sim.ca_file)) as client:
            assert challenge(client)["status"] == 0
        port = base_url.rsplit(":", 1)[1]
        with httpx.Client(
            base_url=f"https://localhost:{port}", verify=ssl.create_default_context(cafile=sim.ca_file)
        ) as client:
            assert challenge(client)["status"] == 0
        with pytest.raises(httpx.ConnectError), httpx.Client(base_url=base_url) as client:
            challenge(client)  # not a publicly trusted certificate
        # A failed handshake does not take the server down.
        with httpx.Client(base_url=base_url, verify=ssl.create_default_context(cafile=sim.ca_file)) as client:
            assert challenge(client)["status"] == 0


def test_default_tls_dir_is_temporary() -> None:
    sim = UcmSimulator(config(tls=True))
    assert sim.ca_file is not None and sim.ca_file.exists()
    assert UcmSimulator(config()).ca_file is None


def test_refuses_non_loopback_hosts() -> None:
    sim = UcmSimulator(config())
    with pytest.raises(ValueError, match="non-loopback"), sim.serve(host="0.0.0.0"):
        pass


def test_stop_closes_kept_alive_connections() -> None:
    sim = UcmSimulator(config())
    with httpx.Client(timeout=2) as client:
        with sim.serve() as base_url:
            client.base_url = httpx.URL(base_url)
            assert challenge(client)["status"] == 0
        with pytest.raises(httpx.TransportError):
            challenge(client)


def test_two_tenants_side_by_side() -> None:
    first = UcmSimulator(config(password="one"))
    second = UcmSimulator(config(seed=3, password="two", tz="Europe/London"))
    with first.serve() as url_a, second.serve() as url_b:
        assert url_a != url_b
        for url, password in ((url_a, "one"), (url_b, "two")):
            with httpx.Client(base_url=url) as client:
                value = challenge(client)["response"]["challenge"]
                token = hashlib.md5((value + password).encode()).hexdigest()
                login = client.post(
                    "/api", json={"request": {"action": "login", "user": "cdrapi", "token": token}}
                )
                assert login.json()["status"] == 0
    assert first.ground_truth() != second.ground_truth()


def test_control_endpoints_truth_and_clock() -> None:
    sim = UcmSimulator(config())
    with sim.serve() as base_url, httpx.Client(base_url=base_url) as client:
        truth = client.get("/__sim__/truth").json()
        assert truth["legs"] == sim.ground_truth() and datetime.fromisoformat(truth["now"]) == sim.clock.now()
        noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
        assert client.post("/__sim__/clock", json={"set": noon.isoformat()}).json()["now"] == noon.isoformat()
        partial = client.get("/__sim__/truth").json()["legs"]
        client.post("/__sim__/clock", json={"advance": 3600})
        assert sim.clock.now() == noon.replace(hour=18)
        assert len(client.get("/__sim__/truth").json()["legs"]) > len(partial)
        window = client.get("/__sim__/truth", params={"start": "2026-03-02T15:00:00+00:00"}).json()["legs"]
        assert 0 < len(window) < len(sim.ground_truth())
        assert client.post("/__sim__/clock", json={"jump": 1}).status_code == 400
        assert client.get("/__sim__/nothing").status_code == 404


def test_serve_forever_prints_banner_without_password() -> None:
    lines: list[str] = []
    stop = threading.Event()
    cfg = config(tls=True, password="do-not-print-me")
    worker = threading.Thread(
        target=serve_forever, args=(cfg,), kwargs={"port": 0, "echo": lines.append, "stop": stop}
    )
    worker.start()
    try:
        for _ in range(100):
            if any("Ctrl-C" in line for line in lines):
                break
            threading.Event().wait(0.05)
        text = "\n".join(lines)
        assert "https://127.0.0.1:" in text and "cdrapi" in text and "ca.pem" in text
        assert "do-not-print-me" not in text
    finally:
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive()
