"""Prefect's process-wide services in a test process that talks to more than one Prefect API.

Prefect ships client-side events (task-run states, block loads, our alert events) and run logs from
queue services on its global event loop thread (``EventsWorker``, ``APILogWorker``). There is one
``EventsWorker`` per process, keyed by its client type only: the worker reads ``PREFECT_API_URL`` once,
when it starts, and keeps sending there after the setting changes. A test module that points the
client at a server of its own (``tests/e2e``) therefore leaves behind a worker bound to that server,
and once the server has stopped every later event of the session fails slowly against it (about
1.5 s each). ``prefect_test_harness`` ends by draining the services without a timeout, so the whole
backlog of the suite was waited for at the very end: the hang of the full suite (``docs/testing.md``).

:func:`prefect_api_at` is the scope for such a module: it lets the services go before the client
moves on, while their server still answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

#: Longest wait for the services to deliver what they hold (a healthy API takes milliseconds).
DRAIN_TIMEOUT_S: Final = 60.0


class PrefectServicesStuck(RuntimeError):
    """A Prefect queue service did not deliver its backlog within the drain timeout."""


def release_prefect_services(timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Stop Prefect's queue services after they deliver what they hold (at most ``timeout_s``).

    The next event or run log starts a fresh service bound to the API configured at that moment.

    Raises:
        PrefectServicesStuck: A service still had work after ``timeout_s`` (it is let go anyway:
            the next harness drain does not wait for it).
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    stuck: list[str] = []
    for service in (EventsWorker, APILogWorker):
        result = service.drain_all(timeout=timeout_s, at_exit=False)
        # Called from a thread without an event loop, drain_all returns (done, not_done) futures.
        assert isinstance(result, tuple), "release_prefect_services runs outside any event loop"
        _done, not_done = result
        if not_done:
            stuck.append(f"{service.__name__} ({len(not_done)} unfinished)")
    if stuck:
        raise PrefectServicesStuck(
            f"Prefect services still busy after {timeout_s:g} s: {', '.join(stuck)}; "
            "an event or log backlog is bound to an API that no longer answers"
        )


@contextmanager
def prefect_api_at(api_url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``api_url`` for the block; release the services after.

    Args:
        api_url: The API (``.../api``) the block talks to; it must still answer when the block ends.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            yield
        finally:
            release_prefect_services()
