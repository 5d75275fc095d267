"""Progress of long runs: a Prefect progress artifact, mirrored to in-process listeners (the CLI bar).

The flow (or task) updates one :class:`ProgressReporter`; the UI shows the artifact, and a command
that runs the flow in-process subscribes with :func:`listen` to draw a progress bar from the same
updates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

#: ``listener(key, fraction_done, description)``
ProgressListener = Callable[[str, float, str], None]

_listeners: list[ProgressListener] = []
_guard = threading.Lock()


@contextmanager
def listen(listener: ProgressListener) -> Iterator[None]:
    """Receive every progress update made in this process while the ``with`` block runs."""
    with _guard:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _guard:
            _listeners.remove(listener)


class ProgressReporter:
    """One progress artifact (0-100 %) and its in-process listeners."""

    def __init__(self, key: str, description: str, *, artifact: bool = True) -> None:
        """Start at 0 %.

        Args:
            key: Artifact key (lowercase letters, digits, dashes).
            description: What is being done, shown next to the bar.
            artifact: Create the UI artifact; ``False`` only informs in-process listeners (a run
                too short to be worth an artifact still drives the CLI's bar).
        """
        self.key = key
        self.description = description
        self._artifact_id: UUID | None = None
        if artifact:
            # Called from sync code the function returns the id (its type also admits a coroutine).
            self._artifact_id = cast(
                UUID, create_progress_artifact(progress=0.0, key=key, description=description)
            )
        self._notify(0.0)

    def update(self, fraction: float, description: str | None = None) -> None:
        """Set the progress to ``fraction`` (0..1) and optionally a new description."""
        fraction = min(max(fraction, 0.0), 1.0)
        if description is not None:
            self.description = description
        if self._artifact_id is not None:
            update_progress_artifact(
                self._artifact_id, progress=round(fraction * 100, 1), description=description
            )
        self._notify(fraction)

    def _notify(self, fraction: float) -> None:
        with _guard:
            listeners = list(_listeners)
        for listener in listeners:
            listener(self.key, fraction, self.description)
