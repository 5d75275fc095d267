"""Prefect's process-wide event service never outlives the API it was started for.

Prefect keeps one ``EventsWorker`` per process and reads the API URL once, when the worker starts.
The e2e module points the client at a server of its own; the worker it started used to stay bound to
that server after it stopped, every later event of the suite failed slowly against it, and the test
harness's final drain waited for the whole backlog: the full-suite hang
(``tests/prefect_service_support.py``).
"""

from __future__ import annotations

import pytest
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL

from tests.prefect_service_support import prefect_api_at, release_prefect_services

pytestmark = pytest.mark.usefixtures("prefect_api")


def _worker_of_an_event() -> EventsWorker:
    """Emit one event; return the worker that ships it."""
    emit_event(event="audiapro.test.services", resource={"prefect.resource.id": "audiapro.test"})
    return EventsWorker.instance()


def test_a_module_on_an_api_of_its_own_leaves_no_event_worker_bound_to_it() -> None:
    # The e2e module's scope, here around the test API itself: it answers, so nothing waits long.
    with prefect_api_at(str(PREFECT_API_URL.value())):
        inside = _worker_of_an_event()
    assert inside._stopped and inside._queue.empty()  # delivered, then stopped
    assert _worker_of_an_event() is not inside  # the next event starts a worker for today's API


def test_releasing_the_services_delivers_and_restarts_them() -> None:
    before = _worker_of_an_event()
    release_prefect_services()
    assert before._stopped and before._queue.empty()
    assert _worker_of_an_event() is not before
