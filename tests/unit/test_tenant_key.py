"""Tenant names as operators type them map to one valid Prefect block name, deterministically."""

from __future__ import annotations

import re

import pytest

from audiapro.tenants import MAX_TENANT_KEY_CHARS, tenant_key


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("acme", "acme"),
        ("acme-corp", "acme-corp"),
        ("a--b", "a--b"),  # already a valid block name: existing tenants never change name
        ("Acme", "acme"),
        ("acme_corp", "acme-corp"),
        ("Acme_Corp", "acme-corp"),
        ("  ACME  corp. ", "acme-corp"),
        ("acme__corp..eu", "acme-corp-eu"),
        ("Café Zürich", "cafe-zurich"),
        ("_acme_", "acme"),
        ("x" * MAX_TENANT_KEY_CHARS, "x" * MAX_TENANT_KEY_CHARS),
    ],
)
def test_names_map_to_block_names(typed: str, stored: str) -> None:
    assert tenant_key(typed) == stored
    assert tenant_key(stored) == stored  # mapping twice changes nothing
    assert re.fullmatch(r"[a-z0-9-]+", stored)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "has no letter or digit"),
        ("___", "has no letter or digit"),
        (" . - ", "has no letter or digit"),
        ("acme/corp", "characters that are not allowed"),
        ("acme:1", "characters that are not allowed"),
        ("東京", "has no letter or digit"),
        ("Acme_" + "x" * MAX_TENANT_KEY_CHARS, "too long"),
    ],
)
def test_names_that_cannot_be_mapped_say_what_is_allowed(typed: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        tenant_key(typed)
    message = str(caught.value)
    assert reason in message and "lowercase letters, digits and dashes" in message
    assert "\n" not in message
