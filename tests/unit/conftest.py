"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from audiapro.ucm.simulator import UcmSimulator
from tests.unit.simulator_support import Session


@pytest.fixture(scope="module")
def session(sim: UcmSimulator) -> Iterator[Session]:
    """A logged-in API session against the module's ``sim`` fixture, served for the whole module."""
    with sim.serve() as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        yield Session(client)
