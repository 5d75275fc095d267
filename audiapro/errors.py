"""What went wrong, said safely, and whether trying again can help: the home of error classification.

* :func:`describe_error` is the one line every layer stores or shows for a failure (sync state,
  ingest runs, artifacts, task results, logs): the exception's type and first line, with secret
  values removed by the one redaction rule (:func:`audiapro.redaction.redact`) and a length cap.
* :func:`is_transient` decides every retry (the Prefect tasks' retry condition and the flows'
  reports): network trouble, HTTP 5xx, throttling, a PBX paging hiccup, "retry later" statuses, a
  warehouse connection that dropped, and errors that say so themselves (a ``transient`` attribute:
  a tenant lock that stayed taken, an AI service outage). Authentication, configuration, TLS and
  zone errors are permanent until a human acts: retrying them would only walk the PBX towards its
  login ban.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from audiapro.redaction import redact
from audiapro.ucm.errors import is_transient_error
from audiapro.warehouse.connect import is_connection_lost

#: Longest message part of a description: enough for any error line, too short for a payload
#: (which could hold phone numbers).
MAX_MESSAGE_CHARS: Final = 300


def describe_error(
    exc: BaseException, secrets: Iterable[str] = (), *, max_chars: int = MAX_MESSAGE_CHARS
) -> str:
    """A one-line, credential-free description of ``exc``: ``"<Type>: <first line of its text>"``.

    Args:
        exc: The failure.
        secrets: Exact values to remove as well (e.g. an API key the caller holds).
        max_chars: Longest message part (the text after the type name).
    """
    text = str(exc)
    first_line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {redact(first_line, secrets, max_chars=max_chars)}"


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same work later can succeed without anyone changing anything.

    An exception that carries a boolean ``transient`` attribute decides for itself; otherwise the
    UCM client's classification (:func:`audiapro.ucm.errors.is_transient_error`) and the
    warehouse's (:func:`audiapro.warehouse.connect.is_connection_lost`) apply.
    """
    declared = getattr(exc, "transient", None)
    if isinstance(declared, bool):
        return declared
    return is_transient_error(exc) or is_connection_lost(exc)
