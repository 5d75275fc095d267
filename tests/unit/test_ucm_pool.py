"""The client pool: threads borrow at most `size` clients, each holding a slot until the pool closes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from audiapro.ucm.pool import ClientPool


class Client:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.in_use = threading.Lock()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.log.append("close")


def test_many_threads_share_at_most_size_clients_one_borrower_each() -> None:
    log: list[str] = []
    made: list[Client] = []
    slots = {"held": 0, "peak": 0}
    guard = threading.Lock()
    start = threading.Barrier(8)

    @contextlib.contextmanager
    def slot() -> Iterator[None]:
        with guard:
            slots["held"] += 1
            slots["peak"] = max(slots["peak"], slots["held"])
        try:
            yield
        finally:
            with guard:
                slots["held"] -= 1

    def factory() -> Client:
        made.append(Client(log))
        return made[-1]

    pool = ClientPool(factory, size=2, slot=slot)
    overlaps: list[str] = []

    def work() -> None:
        start.wait()
        for _ in range(20):
            with pool.borrow() as client:
                if not client.in_use.acquire(blocking=False):
                    overlaps.append("two threads held one client")
                    continue
                client.in_use.release()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps
    assert 1 <= len(made) <= 2 and slots["peak"] == len(made)
    pool.close()
    assert all(c.closed for c in made) and slots["held"] == 0
    with pytest.raises(RuntimeError), pool.borrow():
        pass


def test_a_slot_that_cannot_be_had_leaves_the_pool_usable() -> None:
    attempts = {"n": 0}

    @contextlib.contextmanager
    def slot() -> Iterator[None]:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise TimeoutError("no session free")
        yield

    pool = ClientPool(lambda: Client([]), size=1, slot=slot)
    with pytest.raises(TimeoutError), pool.borrow():
        pass
    with pool.borrow() as client:
        assert not client.closed
    assert pool.created == 1
    pool.close()
