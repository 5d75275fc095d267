"""Shared helpers for the UCM simulator API tests over plain httpx (no tests here).

Each test module defines its own ``sim`` fixture (its own data); ``tests/unit/conftest.py`` logs a
module-wide ``session`` in to it.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import httpx

from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator

PASSWORD = "pw"
FIRST_DAY = date(2026, 3, 2)


class Session:
    """Plain-httpx session against the simulator (challenge, login, cookie in every body)."""

    def __init__(self, client: httpx.Client) -> None:
        """Log in as ``cdrapi`` with the test password."""
        self.client = client
        self.cookie: str | None = None
        value = self.post(action="challenge", user="cdrapi")["response"]["challenge"]
        token = hashlib.md5((value + PASSWORD).encode()).hexdigest()
        self.cookie = self.post(action="login", user="cdrapi", token=token)["response"]["cookie"]

    def post(self, **request: Any) -> dict[str, Any]:
        """One API action; its JSON reply."""
        body: dict[str, Any] = self.raw(**request).json()
        return body

    def raw(self, **request: Any) -> httpx.Response:
        """One API action (with the session cookie once logged in); the HTTP reply, always 200."""
        if self.cookie is not None:
            request["cookie"] = self.cookie
        reply = self.client.post("/api", json={"request": request})
        assert reply.status_code == 200
        return reply

    def cdr(self, **params: Any) -> list[dict[str, Any]]:
        """One cdrapi page (JSON unless ``params`` say otherwise): its ``cdr_root`` items."""
        params.setdefault("format", "json")
        body = self.post(action="cdrapi", **params)
        assert set(body) == {"cdr_root"}, body  # no status, no response wrapper
        items: list[dict[str, Any]] = body["cdr_root"]
        return items

    def all_pages(self, size: int = 100, **params: Any) -> tuple[list[dict[str, str]], int]:
        """Page until the empty page; returns (legs in order, page count)."""
        legs: list[dict[str, str]] = []
        offset, pages = 0, 0
        while True:
            items = self.cdr(numRecords=str(size), offset=str(offset), **params)
            pages += 1
            if not items:
                return legs, pages
            legs += [leg for item in items for leg in item_legs(item)]
            offset += len(items)


def item_legs(item: dict[str, Any]) -> list[dict[str, str]]:
    """The legs of one cdr_root item (sub_cdr_N in numeric order, or the flat item minus ``cdr``)."""
    if "main_cdr" not in item:
        return [{k: v for k, v in item.items() if k != "cdr"}]
    subs = sorted((k for k in item if k.startswith("sub_cdr_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    return [item[k] for k in subs]


def simulator(**settings: Any) -> UcmSimulator:
    """A simulator with the test password, its history starting on ``FIRST_DAY`` unless ``settings`` say."""
    return UcmSimulator(SimulatorConfig(password=PASSWORD, **{"start": FIRST_DAY, **settings}))
