"""A tenant's push settings as the receiver needs them (read from its CloudUCM block)."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from audiapro import settings
from audiapro.tenants import TenantSettings

#: ``push_mode`` values: no push accepted, bodies stored and loaded, or stored only (first contact
#: with a new firmware: look at what it sends before loading it).
PUSH_OFF: Final = "off"
PUSH_LOAD: Final = "load"
PUSH_CAPTURE: Final = "capture"
PUSH_MODES: Final = (PUSH_OFF, PUSH_LOAD, PUSH_CAPTURE)
#: Random bytes of a generated push password (43 URL-safe characters).
PASSWORD_BYTES: Final = 32
#: The user name a generated push login gets, followed by the tenant's name.
USER_PREFIX: Final = "ucm-"
#: Body format the UCM should be set to (JSON is the best-attested one; XML is parsed too).
RECOMMENDED_FORMAT: Final = "JSON"
#: The receiver's path; the tenant's name follows.
PUSH_PATH: Final = "/api/push/ucm/"


@dataclass(frozen=True)
class PushTenant:
    """A tenant whose PBX may push.

    Attributes:
        settings: The tenant's settings (zone and region read the pushed legs).
        mode: ``off``, ``load`` or ``capture``.
        user: The HTTP Basic user the PBX sends.
        password: Its password (a secret: never logged, never in a repr).
    """

    settings: TenantSettings
    mode: str
    user: str
    password: str = field(repr=False)

    @classmethod
    def from_block(cls, name: str, data: Mapping[str, Any]) -> PushTenant:
        """Read a CloudUCM block document's fields (secrets included)."""
        secret = data.get("push_password") or ""
        if not isinstance(secret, str):  # a SecretStr when read through the block class
            secret = str(secret.get_secret_value())
        return cls(
            settings=TenantSettings(
                name=name,
                timezone=str(data.get("timezone") or "UTC"),
                region=str(data.get("region") or settings.DEFAULT_PHONE_REGION),
            ),
            mode=str(data.get("push_mode") or PUSH_OFF),
            user=str(data.get("push_user") or ""),
            password=secret,
        )

    def accepts(self, authorization: str | None) -> bool:
        """Whether ``Authorization: Basic ...`` carries this tenant's push login (constant time)."""
        if self.mode == PUSH_OFF or not self.user or not self.password:
            return False
        presented = basic_credentials(authorization)
        if presented is None:
            return False
        user_ok = hmac.compare_digest(presented[0].encode(), self.user.encode())
        password_ok = hmac.compare_digest(presented[1].encode(), self.password.encode())
        return user_ok and password_ok


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP Basic header, None when absent or malformed."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def new_password() -> str:
    """A fresh random push password."""
    return secrets.token_urlsafe(PASSWORD_BYTES)
