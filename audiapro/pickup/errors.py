"""What goes wrong in a pickup, as one line an operator can act on (never a secret in it).

Every error carries ``transient``: :func:`audiapro.errors.is_transient` reads it, so the Prefect
task retries a dropped connection but never a refused password (which only walks a server towards
locking the account) or a file that is unusable for good.
"""

from __future__ import annotations


class PickupError(Exception):
    """Base of the pickup errors: a one-line, secret-free message."""

    transient = False


class SourceUnreachable(PickupError):
    """The server did not answer (DNS, refused, timed out): it may answer later."""

    transient = True


class SourceAuthError(PickupError):
    """The server refused the credentials."""


class HostKeyMismatch(PickupError):
    """The SFTP server's host key is not the pinned one (or none is pinned)."""


class SourceConfigError(PickupError):
    """The source's settings cannot work (a missing folder, a bad pattern, no credentials)."""


class FileRefused(PickupError):
    """One file or attachment is unusable for good (too big, a zip bomb, not a CDR file): it is
    recorded as refused with this reason and never fetched again, while the other files go on."""
