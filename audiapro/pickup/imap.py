"""E-mail pickup: CDR reports mailed to a mailbox, their attachments imported exactly once.

::

    login (TLS) --> STATUS folder: UIDVALIDITY --> ledger: highest UID done under it, failed UIDs
      --> UID SEARCH (UID last+1:*, filtered to > last; or SINCE the re-scan window after a
          UIDVALIDITY change or on the first run) --> headers: sender allowed? size under the cap?
      --> message (BODY.PEEK: never marks it read) --> matching attachments --> spool + import_file
      --> ledger row (mailbox, UIDVALIDITY, UID) --> optionally flag \\Seen or move the message

* A message's identity is (mailbox, UIDVALIDITY, UID): when the server changes UIDVALIDITY (a
  mailbox recreated or restored) old UIDs mean nothing, so the window is re-scanned; the import's
  (tenant, SHA-256) claim makes the attachments already imported add nothing.
* ``UID n:*`` always returns the newest message even when its UID is below ``n`` (RFC 3501), so the
  search result is filtered to UIDs above the mark.
* A crash between an import and its ledger row re-fetches that message next time: harmless, as above.

Uses imap-tools (synchronous, on top of the standard library's imaplib).
"""

from __future__ import annotations

import contextlib
import fnmatch
import imaplib
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Final, Literal

from imap_tools import AND, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessage
from imap_tools.errors import ImapToolsError, MailboxLoginError

from audiapro.errors import describe_error
from audiapro.pickup.core import ImportTarget, PickupReport, ServerLogin, import_fetched
from audiapro.pickup.errors import FileRefused, SourceAuthError, SourceConfigError, SourceUnreachable
from audiapro.pickup.files import Limits, safe_name, spool_slot
from audiapro.pickup.mime import Extracted, download_message, extract_attachments
from audiapro.warehouse.pickups import (
    MAIL_FAILED,
    MAIL_IMPORTED,
    MAIL_REFUSED,
    MAIL_SKIPPED,
    MailRecord,
    read_mail_mark,
    record_mail_message,
)

log = logging.getLogger("audiapro.pickup.imap")

Security = Literal["tls", "starttls", "plain"]
AfterImport = Literal["leave", "flag", "move"]
DEFAULT_PORTS: Final = {"tls": 993, "starttls": 143, "plain": 143}
DEFAULT_ATTACHMENT_PATTERNS: Final = ("*.csv", "*.json", "*.zip", "*.csv.gz", "*.json.gz")
DEFAULT_RESCAN_DAYS: Final = 30
DEFAULT_TIMEOUT_S: Final = 15.0
#: Hosts where ``plain`` (no TLS) is allowed: test servers on this machine only.
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
#: Base64 makes an attachment about 4/3 its size in the message; headers and text add a little.
_MIME_OVERHEAD: Final = 1.4
_MIME_SLACK_BYTES: Final = 1 << 20
_SEEN_FLAG: Final = "\\Seen"
#: Attachments written to the spool (``None``: nothing to import) and the reasons of those refused.
_Saved = tuple[list[Path] | None, list[str]]


@dataclass(frozen=True)
class ImapSettings(ServerLogin):
    """One mailbox pickup source (the block's fields, the password as a plain string; never logged).

    Attributes:
        host: IMAP server.
        user: Login name.
        password: Password or app password.
        port: IMAP port (993 for TLS).
        security: ``tls`` (implicit TLS), ``starttls``, or ``plain`` (loopback test servers only).
        folder: Mailbox folder the reports arrive in.
        senders: Allowed senders (addresses, or ``@domain``); empty allows every sender.
        attachment_patterns: Globs attachment names must match (case-insensitive).
        after: After a message's import: ``leave`` it, ``flag`` it ``\\Seen``, or ``move`` it.
        move_to: Folder for ``move``.
        rescan_days: On the first run and after a UIDVALIDITY change, look at messages this many
            days back (0: all of them).
        timeout_s: Network timeout.
    """

    host: str
    user: str
    password: str = field(default="", repr=False)
    port: int = DEFAULT_PORTS["tls"]
    security: Security = "tls"
    folder: str = "INBOX"
    senders: tuple[str, ...] = ()
    attachment_patterns: tuple[str, ...] = DEFAULT_ATTACHMENT_PATTERNS
    after: AfterImport = "leave"
    move_to: str = "Processed"
    rescan_days: int = DEFAULT_RESCAN_DAYS
    timeout_s: float = DEFAULT_TIMEOUT_S


def pickup_imap(
    source: str, config: ImapSettings, target: ImportTarget, *, now: datetime, dry_run: bool = False
) -> PickupReport:
    """Import the attachments of the folder's messages not handled yet (see the module docstring).

    Args:
        source: The source's name (ledger key).
        config: Connection and pickup settings.
        target: Warehouse, tenant and caps.
        now: Reference time of the re-scan window.
        dry_run: Only say which attachments would be imported (``would_import``); the folder is
            opened read-only and nothing is recorded.

    Raises:
        PickupError: Unreachable server, refused login, TLS failure, no such folder (one line, no
            secret).
    """
    report = PickupReport(source=source, kind="imap", tenant=target.tenant.name)
    with _mailbox(config) as mailbox:
        uidvalidity = _uidvalidity(mailbox, config)
        mailbox.folder.set(config.folder, readonly=dry_run or config.after == "leave")
        for message in _new_messages(mailbox, source, config, target, uidvalidity, now):
            record = MailRecord(source=source, mailbox=config.folder, uidvalidity=uidvalidity,
                                uid=int(message.uid or 0), tenant=target.tenant.name, status=MAIL_SKIPPED,
                                message_id=_message_id(message))  # fmt: skip
            report.seen += 1
            if dry_run:
                _preview(mailbox, message, config, target, report)
                continue
            _handle(mailbox, message, record, source, config, target, report, now)
    return report


def _new_messages(mailbox: BaseMailBox, source: str, config: ImapSettings, target: ImportTarget,
                  uidvalidity: int, now: datetime) -> Iterator[MailMessage]:  # fmt: skip
    """Headers (and size) of the messages to look at, oldest first."""
    mark = read_mail_mark(target.engine, source, config.folder, uidvalidity)
    if mark.known:
        # "UID n:*" also yields the newest message when every UID is below n: keep only the new ones.
        found = [int(uid) for uid in mailbox.uids(f"UID {mark.last_uid + 1}:*")]
        uids = sorted({uid for uid in found if uid > mark.last_uid} | set(mark.retry_uids))
    else:
        if config.rescan_days:
            criteria: str | AND = AND(date_gte=(now - timedelta(days=config.rescan_days)).date())
        else:
            criteria = "ALL"
        uids = sorted(int(uid) for uid in mailbox.uids(criteria))
        if uids:
            log.info("%s: %s has no ledger under UIDVALIDITY %d: scanning %d messages", source, config.folder,
                     uidvalidity, len(uids))  # fmt: skip
    if not uids:
        return
    yield from mailbox.fetch(AND(uid=[str(uid) for uid in uids]), mark_seen=False, headers_only=True)


def _handle(mailbox: BaseMailBox, headers: MailMessage, record: MailRecord, source: str, config: ImapSettings,
            target: ImportTarget, report: PickupReport, now: datetime) -> None:  # fmt: skip
    """Import one message's attachments and record the outcome; post-action after the record."""
    reason = _skip_reason(headers, config, target.limits)
    if reason:
        report.skipped += 1
        record_mail_message(target.engine, _with(record, MAIL_SKIPPED, 0, reason), now=now)
        return
    try:
        status, taken, detail = _import_message(mailbox, record.uid, source, config, target, report)
    except Exception as exc:
        # Recorded as failed (retried next run by UID) before the run fails with the error.
        record_mail_message(target.engine, _with(record, MAIL_FAILED, 0, describe_error(exc)), now=now)
        raise
    if status == MAIL_SKIPPED:
        report.skipped += 1
    record_mail_message(target.engine, _with(record, status, taken, detail), now=now)
    if status == MAIL_IMPORTED:
        _after_import(mailbox, record.uid, source, config)


def _import_message(mailbox: BaseMailBox, uid: int, source: str, config: ImapSettings, target: ImportTarget,
                    report: PickupReport) -> tuple[str, int, str]:  # fmt: skip
    """(status, attachments imported, detail) of one message."""
    with contextlib.ExitStack() as slots:
        saved, details = _save_attachments(mailbox, uid, source, config, target, report, slots)
        if saved is None:
            return MAIL_SKIPPED, 0, details[0]
        # The message is no longer held here: a big attachment is on disk only while it imports.
        taken = 0
        for path in saved:
            try:
                details.append(import_fetched(path, target, report))
                taken += 1
            except FileRefused as exc:
                report.refuse(path.name, str(exc))
                details.append(str(exc))
    return (MAIL_IMPORTED if taken else MAIL_REFUSED), taken, "; ".join(details)


def _save_attachments(mailbox: BaseMailBox, uid: int, source: str, config: ImapSettings, target: ImportTarget,
                      report: PickupReport, slots: contextlib.ExitStack) -> _Saved:  # fmt: skip
    """The message's matching attachments written to a spool slot (``None``: nothing to import, why).

    The message is streamed (``audiapro.pickup.mime``), never held in memory as a whole.
    """
    slot = slots.enter_context(spool_slot(source))
    extracted = _extract(mailbox, uid, config, target, slot)
    if extracted is None:  # deleted or moved by someone else since the search
        return None, ["message gone before it was fetched"]
    if not extracted.saved and not extracted.refused:
        return None, ["no attachment matching " + ", ".join(config.attachment_patterns)]
    for name, reason in extracted.refused:
        report.refuse(name, reason)
    return extracted.saved, [reason for _, reason in extracted.refused]


def _extract(mailbox: BaseMailBox, uid: int, config: ImapSettings, target: ImportTarget,
             slot: Path) -> Extracted | None:  # fmt: skip
    raw = slot / "message.eml"
    try:
        if not download_message(mailbox.client, uid, raw, _message_cap(target.limits)):
            return None
        return extract_attachments(raw, lambda name: _matches(name, config.attachment_patterns), slot,
                                   target.limits.max_file_bytes)  # fmt: skip
    finally:
        raw.unlink(missing_ok=True)


def _preview(mailbox: BaseMailBox, headers: MailMessage, config: ImapSettings, target: ImportTarget,
             report: PickupReport) -> None:  # fmt: skip
    """Dry run: name the attachments a real run would import (fetched into a scratch slot, then gone)."""
    reason = _skip_reason(headers, config, target.limits)
    if reason:
        report.skipped += 1
        report.note(f"uid {headers.uid}", "skipped", reason)
        return
    with spool_slot("preview") as slot:
        extracted = _extract(mailbox, int(headers.uid or 0), config, target, slot)
        for path in extracted.saved if extracted else ():
            report.would_import.append(f"uid {headers.uid}: {path.name} ({path.stat().st_size} bytes)")
        for name, why in extracted.refused if extracted else ():
            report.note(name, "refused", why)


def _message_cap(limits: Limits) -> int:
    """Largest message that can carry an attachment within the file cap (base64 and headers added)."""
    return int(limits.max_file_bytes * _MIME_OVERHEAD) + _MIME_SLACK_BYTES


def _skip_reason(headers: MailMessage, config: ImapSettings, limits: Limits) -> str:
    """Why a message is not for us (empty: it is), from its headers alone."""
    sender = parseaddr(headers.from_)[1].lower()
    if config.senders and not _sender_allowed(sender, config.senders):
        return "sender not in the allow-list"  # the address itself is personal data: not stored
    if headers.size_rfc822 > _message_cap(limits):
        return f"message of {headers.size_rfc822} bytes is larger than the attachment cap allows"
    return ""


def _sender_allowed(sender: str, allowed: tuple[str, ...]) -> bool:
    for entry in (a.strip().lower() for a in allowed):
        if entry.startswith("@") and sender.endswith(entry):
            return True
        if sender == entry:
            return True
    return False


def _matches(filename: str, patterns: tuple[str, ...]) -> bool:
    name = safe_name(filename or "").lower()
    return bool(filename) and any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


def _after_import(mailbox: BaseMailBox, uid: int, source: str, config: ImapSettings) -> None:
    """Flag or move a message once its import and ledger row are committed; failures only warn."""
    try:
        if config.after == "flag":
            mailbox.flag(str(uid), _SEEN_FLAG, True)
        elif config.after == "move":
            if not mailbox.folder.exists(config.move_to):
                mailbox.folder.create(config.move_to)
            mailbox.move(str(uid), config.move_to)
    except (ImapToolsError, imaplib.IMAP4.error, OSError) as exc:
        log.warning("%s: could not %s message uid %d: %s", source, config.after, uid, describe_error(exc))


def _with(record: MailRecord, status: str, attachments: int, detail: str) -> MailRecord:
    return MailRecord(**{**record.__dict__, "status": status, "attachments": attachments, "detail": detail})


def _message_id(message: MailMessage) -> str | None:
    values = message.headers.get("message-id", ())
    return values[0].strip() if values else None


def _uidvalidity(mailbox: BaseMailBox, config: ImapSettings) -> int:
    try:
        status = mailbox.folder.status(config.folder, ["UIDVALIDITY"])
    except ImapToolsError:
        raise SourceConfigError(f"IMAP {config.where}: no folder {config.folder!r}: check folder") from None
    return int(status["UIDVALIDITY"])


@contextmanager
def _mailbox(config: ImapSettings) -> Iterator[BaseMailBox]:
    """A logged-in mailbox; connection and login errors become one-line pickup errors."""
    mailbox = _open(config)
    try:
        mailbox.login(config.user, config.password)
    except MailboxLoginError:
        raise SourceAuthError(
            f"IMAP server {config.host}:{config.port} refused the login of {config.user!r}: check the user "
            "and password (many providers need an app password for IMAP)"
        ) from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise _unreachable(config, exc) from None
    try:
        yield mailbox
    finally:
        # The server may have dropped the connection already.
        with contextlib.suppress(ImapToolsError, imaplib.IMAP4.error, OSError):
            mailbox.logout()


def _open(config: ImapSettings) -> BaseMailBox:
    if config.security == "plain" and config.host not in LOOPBACK_HOSTS:
        raise SourceConfigError(
            f"IMAP {config.where}: security 'plain' sends the password unencrypted and is allowed for a "
            "server on this machine only: use tls (port 993) or starttls (port 143)"
        )
    try:
        if config.security == "tls":
            return MailBox(
                config.host, config.port, timeout=config.timeout_s, ssl_context=ssl.create_default_context()
            )
        if config.security == "starttls":
            return MailBoxStartTls(
                config.host, config.port, timeout=config.timeout_s, ssl_context=ssl.create_default_context()
            )
        return MailBoxUnencrypted(config.host, config.port, timeout=config.timeout_s)
    except ssl.SSLError as exc:
        raise SourceConfigError(
            f"IMAP {config.host}:{config.port}: TLS failed ({type(exc).__name__}): check the port and "
            "security (993 = tls, 143 = starttls) and the server's certificate"
        ) from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise _unreachable(config, exc) from None


def _unreachable(config: ImapSettings, exc: BaseException) -> SourceUnreachable:
    hint = "check the host name, the port and that the server lets this machine in"
    if isinstance(exc, socket.timeout | TimeoutError):
        hint = "no answer in time: " + hint
    return SourceUnreachable(
        f"IMAP server {config.host}:{config.port} unreachable ({type(exc).__name__}): {hint}"
    )
