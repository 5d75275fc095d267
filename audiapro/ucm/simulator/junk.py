"""Malformed cdrapi items (fault ``malformed_item_rate``): junk that occupies result slots, not legs.

A junk item is inserted *before* a real item when a hash of (``fault_seed``, the real item's first
AcctId) falls under the rate, so the same query always yields the same junk at the same offsets,
page after page and request after request (an RNG drawn per request could not promise that). Each
junk item takes exactly one slot whichever unit ``offset`` counts (items or legs), so a client that
advances by what it received, counting a malformed entry as one, still gets every real leg. Junk has
no legs: the ground truth is unchanged.

Kinds (one each, by hash):

- ``scalar``: the item is not an object (a string or a number);
- ``bad_sub_cdr``: a grouped item whose ``sub_cdr_1`` is a string;
- ``main_only``: a grouped item with ``main_cdr`` and no ``sub_cdr_N`` at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from audiapro.ucm.simulator.legs import Leg

JunkKind = Literal["scalar", "bad_sub_cdr", "main_only"]
JUNK_KINDS: tuple[JunkKind, ...] = ("scalar", "bad_sub_cdr", "main_only")
_HASH_BYTES = 8
_HASH_RANGE = float(1 << (8 * _HASH_BYTES))
#: Text of the broken ``sub_cdr`` entry and of string junk items.
BROKEN_TEXT = "<cdr unavailable>"
SUMMARY_FIELDS = ("AcctId", "src", "dst", "start", "disposition", "session")


@dataclass(frozen=True)
class JunkItem:
    """One injected malformed cdr_root item.

    Attributes:
        kind: What is wrong with it (see module docstring).
        token: Deterministic number that varies the rendering.
    """

    kind: JunkKind
    token: int

    @property
    def session(self) -> str:
        """Never equal to a real leg's session, so leg-unit paging keeps it an item of its own."""
        return f"junk-{self.token}"

    def render(self) -> Any:
        """The JSON value served in ``cdr_root``."""
        summary = dict.fromkeys(SUMMARY_FIELDS, "")
        if self.kind == "scalar":
            return BROKEN_TEXT if self.token % 2 else self.token % 1000
        if self.kind == "bad_sub_cdr":
            return {"cdr": "", "main_cdr": summary, "sub_cdr_1": BROKEN_TEXT}
        return {"cdr": "", "main_cdr": summary}


#: One cdr_root entry before rendering: a call's legs, or junk.
Entry = list[Leg] | JunkItem


def _draw(seed: int, acct: int) -> tuple[float, int]:
    digest = hashlib.blake2b(f"junk:{seed}:{acct}".encode(), digest_size=2 * _HASH_BYTES).digest()
    draw = int.from_bytes(digest[:_HASH_BYTES], "big") / _HASH_RANGE
    return draw, int.from_bytes(digest[_HASH_BYTES:], "big")


def with_junk(items: Sequence[list[Leg]], rate: float, seed: int) -> list[Entry]:
    """``items`` with junk inserted before each item whose hash falls under ``rate``.

    Args:
        items: The query's cdr_root items in order (each a non-empty list of legs).
        rate: Share of real items preceded by a junk item (0 = none).
        seed: ``fault_seed``.
    """
    entries: list[Entry] = []
    for item in items:
        if rate > 0:
            draw, token = _draw(seed, item[0].acct)
            if draw < rate:
                entries.append(JunkItem(JUNK_KINDS[token % len(JUNK_KINDS)], token))
        entries.append(item)
    return entries


def entry_parts(entry: Entry) -> Iterator[Leg | JunkItem]:
    """The slots an entry takes when paging counts legs: one per leg, one for junk."""
    if isinstance(entry, JunkItem):
        yield entry
    else:
        yield from entry


def junk_count(entries: Sequence[Entry]) -> int:
    """How many junk items ``entries`` hold."""
    return sum(1 for entry in entries if isinstance(entry, JunkItem))
