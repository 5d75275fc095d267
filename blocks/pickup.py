"""File pickup sources: one block per SFTP drop or mailbox, each naming the tenant its files are for.

Secrets (password, private key) are ``SecretStr``: Prefect stores them encrypted and the UI shows
them obfuscated. The pickup code (``audiapro.pickup``) gets plain settings from :meth:`settings`.
"""

from __future__ import annotations

from typing import ClassVar, Literal, cast

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr

from audiapro.pickup.files import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_UNPACKED_BYTES,
    Limits,
)
from audiapro.pickup.imap import DEFAULT_ATTACHMENT_PATTERNS, DEFAULT_RESCAN_DAYS, ImapSettings
from audiapro.pickup.sftp import DEFAULT_SETTLE_SECONDS, SftpSettings
from audiapro.prefect_names import IMAP_SOURCE_BLOCK_TYPE, SFTP_SOURCE_BLOCK_TYPE

#: Source kinds, as the CLI and the flow's ``kind`` parameter spell them.
SourceKind = Literal["sftp", "imap"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("sftp", "imap")
_MB = 1 << 20


class _Caps(BaseModel):
    """Caps every source has (in MB for operators); a mixin, not a block type of its own."""

    max_file_mb: int = Field(
        default=DEFAULT_MAX_FILE_BYTES // _MB, ge=1, description="Largest file or attachment fetched (MB)"
    )
    max_members: int = Field(default=DEFAULT_MAX_MEMBERS, ge=1, description="Most files in one zip archive")
    max_unpacked_mb: int = Field(
        default=DEFAULT_MAX_UNPACKED_BYTES // _MB,
        ge=1,
        description="Most MB unpacked from one archive (zip bomb guard)",
    )

    def limits(self) -> Limits:
        """The caps in bytes."""
        return Limits(max_file_bytes=self.max_file_mb * _MB, max_members=self.max_members,
                      max_unpacked_bytes=self.max_unpacked_mb * _MB)  # fmt: skip


class SftpSource(Block, _Caps):
    """CDR files dropped on an SFTP server for one tenant. The block's name is the source's name."""

    _block_type_name: ClassVar[str] = "AudiaPro SFTP source"
    _block_type_slug: ClassVar[str] = SFTP_SOURCE_BLOCK_TYPE
    _description: ClassVar[str] = "An SFTP directory where CDR exports are dropped (pickup-files)."
    _logo_url: ClassVar[None] = None

    tenant: str = Field(description="Tenant the files are imported for (its CloudUCM block)")
    enabled: bool = Field(default=True, description="Picked up by pickup-files when true")
    host: str = Field(description="SFTP server")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(description="Login name")
    password: SecretStr = Field(default=SecretStr(""), description="Password (or use private_key)")
    private_key: SecretStr = Field(
        default=SecretStr(""), description="Private key, OpenSSH/PEM text, unencrypted"
    )
    host_key: str = Field(
        description="The server's public host key, one OpenSSH line: anything else is refused"
    )
    directory: str = Field(default=".", description="Directory holding the files")
    pattern: str = Field(default="*.csv", description="Glob the file names must match")
    post_action: Literal["leave", "move", "delete"] = Field(
        default="leave", description="After the import: leave, move to done/, or delete"
    )
    settle_seconds: int = Field(
        default=DEFAULT_SETTLE_SECONDS, ge=0, description="A file is complete once unchanged this long"
    )
    done_marker: str = Field(
        default="",
        description="Suffix of the uploader's completion marker (e.g. .done); replaces settle_seconds",
    )

    def settings(self) -> SftpSettings:
        """Plain settings for ``audiapro.pickup.sftp`` (secrets included: never log them)."""
        return SftpSettings(
            host=self.host, port=self.port, user=self.user, password=self.password.get_secret_value(),
            private_key=self.private_key.get_secret_value(), host_key=self.host_key,
            directory=self.directory, pattern=self.pattern, post_action=self.post_action,
            settle_seconds=self.settle_seconds, done_marker=self.done_marker,
        )  # fmt: skip


class ImapSource(Block, _Caps):
    """CDR reports e-mailed to a mailbox for one tenant. The block's name is the source's name."""

    _block_type_name: ClassVar[str] = "AudiaPro IMAP source"
    _block_type_slug: ClassVar[str] = IMAP_SOURCE_BLOCK_TYPE
    _description: ClassVar[str] = "A mailbox folder CDR reports are e-mailed to (pickup-files)."
    _logo_url: ClassVar[None] = None

    tenant: str = Field(description="Tenant the attachments are imported for (its CloudUCM block)")
    enabled: bool = Field(default=True, description="Picked up by pickup-files when true")
    host: str = Field(description="IMAP server")
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "plain"] = Field(
        default="tls", description="tls (993), starttls (143); plain only for a server on this machine"
    )
    user: str = Field(description="Login name")
    password: SecretStr = Field(default=SecretStr(""), description="Password or app password")
    folder: str = Field(default="INBOX", description="Folder the reports arrive in")
    senders: list[str] = Field(
        default_factory=list, description="Allowed senders (address or @domain); empty: any"
    )
    attachment_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ATTACHMENT_PATTERNS), description="Attachment name globs"
    )
    after: Literal["leave", "flag", "move"] = Field(
        default="leave", description="After the import: leave the message, flag it \\Seen, or move it"
    )
    move_to: str = Field(default="Processed", description="Folder for after=move")
    rescan_days: int = Field(
        default=DEFAULT_RESCAN_DAYS,
        ge=0,
        description="First run / UIDVALIDITY change: look this far back (0: all)",
    )

    def settings(self) -> ImapSettings:
        """Plain settings for ``audiapro.pickup.imap`` (the password included: never log it)."""
        return ImapSettings(
            host=self.host, port=self.port, security=self.security, user=self.user,
            password=self.password.get_secret_value(), folder=self.folder, senders=tuple(self.senders),
            attachment_patterns=tuple(self.attachment_patterns), after=self.after, move_to=self.move_to,
            rescan_days=self.rescan_days,
        )  # fmt: skip


SOURCE_BLOCKS: dict[SourceKind, type[SftpSource] | type[ImapSource]] = {
    "sftp": SftpSource,
    "imap": ImapSource,
}


def load_source(name: str) -> tuple[SourceKind, SftpSource | ImapSource]:
    """A source's kind and block, whichever kind it is.

    Raises:
        ValueError: No source of that name.
    """
    for kind, block_type in SOURCE_BLOCKS.items():
        try:
            return kind, cast(SftpSource | ImapSource, block_type.load(name))
        except ValueError:
            continue
    raise ValueError(f"no pickup source {name!r}: see `audiapro source list`")


def list_sources(
    kind: SourceKind | None = None, *, only_enabled: bool = True
) -> list[tuple[SourceKind, str]]:
    """(kind, name) of the registered sources, sorted by name.

    Args:
        kind: Only this kind.
        only_enabled: Leave out sources whose ``enabled`` flag is off.
    """
    from prefect.client.orchestration import get_client

    found: list[tuple[SourceKind, str]] = []
    with get_client(sync_client=True) as client:
        for source_kind, block_type in SOURCE_BLOCKS.items():
            if kind is not None and source_kind != kind:
                continue
            try:
                documents = client.read_block_documents_by_type(
                    block_type.get_block_type_slug(), include_secrets=False
                )
            except Exception as exc:  # block type not registered yet: no sources of this kind
                if "404" in str(exc) or "not found" in str(exc).lower():
                    continue
                raise
            found += [(source_kind, d.name) for d in documents
                      if d.name and (not only_enabled or d.data.get("enabled", True))]  # fmt: skip
    return sorted(found, key=lambda item: item[1])
