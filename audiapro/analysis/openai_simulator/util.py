"""Small shared helpers: seeded ids, stable hashing, token estimates."""

from __future__ import annotations

import hashlib
import json
import math
import random
import string
import threading
from typing import Any

_ALNUM = string.ascii_letters + string.digits


class IdFactory:
    """Seeded, thread-safe generator of OpenAI-looking ids (`resp_…`, `file-…`, `req_…`)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")
        self._lock = threading.Lock()

    def hex(self, prefix: str, length: int = 32) -> str:
        """`prefix` followed by `length` lowercase hex digits."""
        with self._lock:
            return prefix + "".join(self._rng.choice("0123456789abcdef") for _ in range(length))

    def alnum(self, prefix: str, length: int = 24) -> str:
        """`prefix` followed by `length` letters and digits."""
        with self._lock:
            return prefix + "".join(self._rng.choice(_ALNUM) for _ in range(length))


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON, so equal requests hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(*parts: str | bytes) -> str:
    """SHA-256 over the parts, each length-prefixed so boundaries cannot collide."""
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


def seeded_rng(*parts: str | bytes | int) -> random.Random:
    """A `random.Random` seeded from a stable hash of the parts (not Python's salted `hash`)."""
    digest = sha256_hex(*(str(p) if isinstance(p, int) else p for p in parts))
    return random.Random(int(digest[:32], 16))


def estimate_tokens(text: str, chars_per_token: int) -> int:
    """Tokens ≈ characters / `chars_per_token`, at least 1 for non-empty text."""
    return math.ceil(len(text) / chars_per_token) if text else 0
