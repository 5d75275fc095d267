"""The CloudUCM block: one per tenant, holding its PBX address, API credentials and data settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal, cast

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator, model_validator

from audiapro import settings
from audiapro.prefect_names import TENANT_BLOCK_TYPE
from audiapro.tenants import TenantSettings
from audiapro.ucm.client import DEFAULT_API_PATH, UcmClient, UcmConnection
from audiapro.ucm.guard import LoginGuard
from audiapro.ucm.tls import normalize_fingerprint


class CloudUCM(Block):
    """A Grandstream CloudUCM / UCM63xx tenant. The block's name is the tenant name.

    The password is a ``SecretStr``: Prefect stores it encrypted and the UI shows it obfuscated.
    """

    _block_type_name: ClassVar[str] = "CloudUCM"
    _block_type_slug: ClassVar[str] = TENANT_BLOCK_TYPE
    _description: ClassVar[str] = (
        "Grandstream CloudUCM / UCM63xx PBX: HTTPS API access for CDRs and recordings."
    )
    _logo_url: ClassVar[None] = None

    host: str = Field(
        default="", description="PBX host name, e.g. 071ffb.c.myucm.cloud (blank: import-only tenant)"
    )
    port: int = Field(default=8443, description="HTTPS API port (CloudUCM 8443, on-prem web port 8089)")
    api_user: str = Field(default="cdrapi", description="API user from Integrations -> API Configuration")
    password: SecretStr = Field(default=SecretStr(""), description="API user's password")
    timezone: str = Field(default="UTC", description="IANA time zone the PBX writes CDR times in")
    region: str = Field(default=settings.DEFAULT_PHONE_REGION, description="Default phone region (ISO 3166)")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the PBX certificate")
    insecure: bool = Field(default=False, description="Skip TLS verification (self-signed PBX; not advised)")
    tls_fingerprint: str | None = Field(
        default=None,
        description=(
            "SHA-256 fingerprint of the PBX certificate (hex, colons allowed): accept exactly that "
            "certificate instead of checking its CA and name (self-signed on-prem UCM); not with insecure"
        ),
    )
    scheme: Literal["https", "http"] = Field(
        default="https", description="https (production) or http (local simulator only)"
    )
    enabled: bool = Field(default=True, description="Polled by poll-cdrs when true")
    lookback_seconds: int = Field(
        default=settings.DEFAULT_LOOKBACK_SECONDS,
        description="Re-read this far behind the cursor: must exceed the longest call",
    )
    safety_seconds: int = Field(
        default=settings.DEFAULT_SAFETY_SECONDS,
        description="Stay this far behind now (0: the lookback re-reads late CDRs)",
    )
    api_sessions: int = Field(
        default=settings.DEFAULT_PBX_API_SESSIONS,
        ge=1,
        le=8,
        description=(
            "API sessions this PBX may hold for us at once; poll ticks and backfill windows share them "
            "(Prefect global concurrency limit ucm:<tenant>, kept equal to this value)"
        ),
    )

    sweep_span_seconds: int = Field(
        default=settings.DEFAULT_SWEEP_SPAN_SECONDS,
        ge=0,
        description="Long-call sweep: re-read legs that ENDED this far back (0 turns it off)",
    )
    sweep_every_seconds: int = Field(
        default=settings.DEFAULT_SWEEP_EVERY_SECONDS, ge=60, description="How often the long-call sweep runs"
    )
    silent_ticks: int = Field(
        default=settings.DEFAULT_SILENT_TICKS,
        ge=1,
        description="Unexpectedly empty poll windows in a row before the tenant is reported silent",
    )

    recording_retention_days: int = Field(
        default=settings.DEFAULT_RECORDING_RETENTION_DAYS,
        ge=0,
        description="Days a downloaded call recording stays on disk (0: deleted right after analysis)",
    )
    transcript_retention_days: int = Field(
        default=settings.DEFAULT_TRANSCRIPT_RETENTION_DAYS,
        ge=0,
        description="Days stored transcripts are kept; older ones are cleared daily (0: kept forever)",
    )
    raw_cdr_retention_days: int = Field(
        default=settings.DEFAULT_RAW_CDR_RETENTION_DAYS,
        ge=0,
        description="Days the raw CDR JSON of legs and quarantined rows is kept (0: kept forever)",
    )

    api_path: str = Field(
        default=DEFAULT_API_PATH,
        description="Path of the JSON API (/api on every UCM; another only behind a proxy or simulator)",
    )
    # CDR push (the UCM's "CDR Real-time Output"): `audiapro tenant push NAME` sets these.
    push_mode: Literal["off", "load", "capture"] = Field(
        default="off",
        description="CDR push receiver: off, load (store and load pushed CDRs) or capture (store only)",
    )
    push_user: str = Field(default="", description="HTTP Basic user the PBX pushes CDRs with")
    push_password: SecretStr = Field(
        default=SecretStr(""), description="HTTP Basic password the PBX pushes CDRs with"
    )

    @field_validator("tls_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        return normalize_fingerprint(value) if value and value.strip() else None

    @model_validator(mode="after")
    def _one_tls_mode(self) -> CloudUCM:
        if self.tls_fingerprint and self.insecure:
            raise ValueError(
                "tls_fingerprint and insecure exclude each other: pin the certificate or skip TLS checks"
            )
        return self

    def tenant_settings(self, name: str) -> TenantSettings:
        """Return the plain settings the pipeline functions need (no secrets)."""
        return TenantSettings(
            name=name,
            timezone=self.timezone,
            region=self.region,
            lookback_seconds=self.lookback_seconds,
            safety_seconds=self.safety_seconds,
            enabled=self.enabled,
            sweep_span_seconds=self.sweep_span_seconds,
            sweep_every_seconds=self.sweep_every_seconds,
            silent_ticks=self.silent_ticks,
            recording_retention_days=self.recording_retention_days,
            transcript_retention_days=self.transcript_retention_days,
            raw_cdr_retention_days=self.raw_cdr_retention_days,
        )

    def connection(self) -> UcmConnection:
        """Build the client's connection settings."""
        if not self.host:
            raise ValueError("this tenant has no PBX host (import-only tenant)")
        return UcmConnection(
            host=self.host,
            port=self.port,
            api_user=self.api_user,
            password=self.password,
            timezone=self.timezone,
            scheme=self.scheme,
            ca_file=Path(self.ca_file) if self.ca_file else None,
            insecure=self.insecure,
            tls_fingerprint=self.tls_fingerprint or None,
            api_path=self.api_path,
        )

    def client(self, login_guard: LoginGuard | None = None) -> UcmClient:
        """Return a ready (not yet logged-in) API client; use it as a context manager.

        Args:
            login_guard: Shared guard of the tenant's logins (``audiapro.logins.WarehouseLoginGuard``
                for every pipeline path); without one the client only guards itself.
        """
        return UcmClient(self.connection(), login_guard=login_guard)


def load_tenant(name: str) -> CloudUCM:
    """Load a tenant's block by name (raises ValueError when there is none)."""
    return cast(CloudUCM, CloudUCM.load(name))


#: Block documents read per API call by :func:`load_tenants` (the server's default page limit).
LOAD_PAGE = 200


def load_tenants(names: Sequence[str]) -> dict[str, CloudUCM]:
    """Load several tenants' blocks (with their secrets) in one Prefect API call per ``LOAD_PAGE``.

    A poll shard needs every one of its tenants' blocks each tick: one filtered read instead of one
    :func:`load_tenant` per tenant spares the Prefect server a request (and its decryption round)
    per tenant.

    Returns:
        The blocks by tenant name; a name without a block is absent (``load_tenant`` says why).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import BlockDocument

    wanted = sorted(set(names))
    found: dict[str, CloudUCM] = {}
    with get_client(sync_client=True) as client:
        for at in range(0, len(wanted), LOAD_PAGE):
            page = wanted[at : at + LOAD_PAGE]
            response = client.request(
                "POST",
                "/block_documents/filter",
                json={
                    "block_documents": {"name": {"any_": page}},
                    "block_types": {"slug": {"any_": [CloudUCM.get_block_type_slug()]}},
                    "include_secrets": True,
                    "limit": len(page),
                },
            )
            for document in BlockDocument.model_validate_list(response.json()):
                if document.name:
                    found[document.name] = cast(CloudUCM, CloudUCM._load_from_block_document(document))
    return found


def list_tenants(only_enabled: bool = True, *, with_pbx: bool = False) -> list[str]:
    """Names of the CloudUCM blocks (tenants) registered in the Prefect API, sorted.

    Args:
        only_enabled: Leave out tenants whose ``enabled`` flag is off.
        with_pbx: Leave out import-only tenants (no PBX host): nothing to poll.
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(
                CloudUCM.get_block_type_slug(), include_secrets=False
            )
        except Exception as exc:  # block type not registered yet: no tenants
            if "404" in str(exc) or "not found" in str(exc).lower():
                return []
            raise
    names = [
        d.name
        for d in documents
        if d.name
        and (not only_enabled or d.data.get("enabled", True))
        and (not with_pbx or d.data.get("host"))
    ]
    return sorted(names)
