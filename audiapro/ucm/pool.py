"""A small pool of PBX clients that threads borrow one call at a time.

A PBX grants a handful of API sessions per user, and the pipeline counts them (the ``ucm:<tenant>``
limit). Work that runs in many threads, such as downloading recordings for the analysis, must not
open one session per thread: it borrows a client from a pool of at most ``size`` clients, each of
which takes a session slot when it is first created and keeps it (and its logged-in session) until
the pool closes. A thread that finds every client lent out waits for one to come back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    """What the pool needs of a client: a way to log out."""

    def close(self) -> None:
        """Log out and release the connection."""
        ...


C = TypeVar("C", bound=Closable)


class ClientPool(Generic[C]):
    """At most ``size`` clients, created lazily, lent to one thread at a time.

    Args:
        factory: Makes a new (not yet logged-in) client.
        size: Most clients (and so PBX sessions) at once; at least 1.
        slot: Entered before a client is created and exited after it is closed, e.g. a session slot
            of the tenant's concurrency limit. May raise (no slot free): the borrower then gets the
            error and the pool stays as it was.
    """

    def __init__(
        self,
        factory: Callable[[], C],
        size: int,
        *,
        slot: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a client pool needs a size of at least 1")
        self._factory = factory
        self._size = size
        self._slot = slot
        self._idle: list[C] = []
        self._made = 0
        self._closed = False
        self._stack = contextlib.ExitStack()
        self._ready = threading.Condition()

    @property
    def size(self) -> int:
        """Most clients the pool holds."""
        return self._size

    @property
    def created(self) -> int:
        """Clients created so far (sessions held)."""
        return self._made

    @contextlib.contextmanager
    def borrow(self) -> Iterator[C]:
        """Lend a client to the calling thread for the ``with`` block."""
        client = self._take()
        try:
            yield client
        finally:
            with self._ready:
                self._idle.append(client)
                self._ready.notify()

    def _take(self) -> C:
        with self._ready:
            while True:
                if self._closed:
                    raise RuntimeError("the client pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._made < self._size:
                    self._made += 1  # reserve the place before the slow part, outside the lock
                    break
                self._ready.wait()
        try:
            return self._create()
        except BaseException:
            with self._ready:
                self._made -= 1
                self._ready.notify()
            raise

    def _create(self) -> C:
        with contextlib.ExitStack() as attempt:
            if self._slot is not None:
                attempt.enter_context(self._slot())
            client = self._factory()
            attempt.callback(client.close)
            kept = attempt.pop_all()
        with self._ready:
            self._stack.enter_context(kept)
        return client

    def close(self) -> None:
        """Close every client (logging out) and give their slots back. Safe to call twice."""
        with self._ready:
            self._closed = True
            stack, self._stack = self._stack, contextlib.ExitStack()
            self._idle.clear()
            self._ready.notify_all()
        stack.close()

    def __enter__(self) -> ClientPool[C]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
