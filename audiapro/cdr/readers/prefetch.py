"""Reading ahead: the next item is produced in a background thread while the caller uses this one.

A file import alternates between Python work (reading, normalizing, rendering: holds the GIL) and
waiting for the database (psycopg2 releases the GIL while the server works). Producing the next
chunk during that wait takes the Python work off the import's critical path. Items, their order and
the exceptions the wrapped iterator raises (at the same place in the stream) are exactly what it
produces. At most ``depth`` items exist beyond the one the caller holds (queued or being produced),
so memory stays bounded by the chunk size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Final, TypeVar, cast

T = TypeVar("T")

#: How often a waiting producer looks whether the consumer went away.
_POLL_S: Final = 0.1
_ITEM, _DONE, _FAILED = range(3)


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield ``items``, producing up to ``depth`` of them ahead in a background thread.

    The thread starts at the first ``next()``. Closing the returned generator (or dropping it) stops
    the producer after the item it is working on and closes ``items`` in that thread.
    """
    if depth < 1:
        yield from items
        return
    handoff: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                while not slots.acquire(timeout=_POLL_S):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(items)
                except StopIteration:
                    handoff.put((_DONE, None))
                    return
                handoff.put((_ITEM, item))
        except BaseException as exc:  # handed to the consumer, raised where it would have been
            handoff.put((_FAILED, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="cdr-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _DONE:
                return
            if kind == _FAILED:
                raise cast(BaseException, value)
            slots.release()
            yield cast(T, value)
    finally:
        stop.set()
        producer.join()
