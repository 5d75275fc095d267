"""TLS settings of the UCM client: OS trust store, a private CA bundle, or a pinned certificate.

Certificate pinning exists for on-prem UCMs, which ship a self-signed certificate whose name rarely
matches the host the poller uses. Instead of switching verification off, the tenant stores the SHA-256
fingerprint of the PBX certificate; chain and host-name checks are replaced by comparing that
fingerprint with the certificate the peer presents.

The comparison runs *inside the TLS handshake*: :class:`PinnedSSLContext` makes every socket (or
memory-BIO object, as used for TLS through an HTTPS proxy) it creates check the peer certificate as
soon as ``do_handshake`` completes and before control returns to httpx/httpcore. A mismatch raises
:class:`FingerprintMismatch` (an ``ssl.SSLCertVerificationError``) from the handshake, the socket is
closed, and no HTTP request (so no user name, token or cookie) is ever written to the wrong peer.
Checking the response's network stream afterwards would be too late: the request body with the
credentials would already have been sent.
"""

from __future__ import annotations

import hashlib
import re
import ssl

import truststore

SHA256_HEX_DIGITS = 64
MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2
#: Labels people paste along with a fingerprint (``openssl x509 -fingerprint -sha256`` prints one).
_LABEL = re.compile(r"^\s*(?:sha-?256)?\s*(?:fingerprint)?\s*[:=]?\s*", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s:]")
_HEX = re.compile(r"^[0-9a-f]+$")


def normalize_fingerprint(value: str) -> str:
    """Canonical form of a SHA-256 fingerprint: 64 lowercase hex digits.

    Colons, spaces, case and a leading ``SHA256 Fingerprint=`` / ``sha256:`` label are tolerated.

    Raises:
        ValueError: Not 64 hex digits once separators are removed.
    """
    digits = _SEPARATORS.sub("", _LABEL.sub("", value, count=1)).lower()
    if len(digits) != SHA256_HEX_DIGITS or not _HEX.match(digits):
        raise ValueError(
            f"tls_fingerprint must be a SHA-256 fingerprint of {SHA256_HEX_DIGITS} hex digits "
            f"(colons and spaces allowed), got {len(digits)} character(s) after removing separators"
        )
    return digits


def format_fingerprint(digits: str) -> str:
    """``AB:CD:...``, the way ``openssl x509 -fingerprint -sha256`` and browsers show it."""
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint (64 lowercase hex digits) of a DER-encoded certificate."""
    return hashlib.sha256(der).hexdigest()


class FingerprintMismatch(ssl.SSLCertVerificationError):
    """The peer's certificate does not have the pinned fingerprint.

    Attributes:
        expected: The pinned fingerprint (``AB:CD:...``).
        seen: The presented certificate's fingerprint, or ``"none"`` when the peer sent none.
    """

    def __init__(self, expected: str, seen: str) -> None:
        """Build the error from canonical (hex) fingerprints."""
        self.expected = format_fingerprint(expected)
        self.seen = format_fingerprint(seen) if seen else "none"
        super().__init__(
            f"PBX certificate SHA-256 fingerprint {self.seen} does not match the pinned {self.expected}"
        )


def _check_peer(context: ssl.SSLContext, der: bytes | None) -> None:
    expected = getattr(context, "pinned_fingerprint", None)
    if expected is None:  # only PinnedSSLContext creates these objects; never skip silently
        raise ssl.SSLCertVerificationError("pinned TLS socket without a pinned fingerprint")
    seen = certificate_fingerprint(der) if der else ""
    if seen != expected:
        raise FingerprintMismatch(expected, seen)


class _PinnedSSLSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        _check_peer(self.context, self.getpeercert(binary_form=True))


class _PinnedSSLObject(ssl.SSLObject):
    def do_handshake(self) -> None:
        super().do_handshake()
        _check_peer(self.context, self.getpeercert(binary_form=True))


class PinnedSSLContext(ssl.SSLContext):
    """Client context that accepts exactly the certificate with ``pinned_fingerprint``.

    Chain and host-name verification are off (a self-signed certificate for another name is fine);
    the fingerprint comparison in the handshake replaces them on every new connection.
    """

    sslsocket_class = _PinnedSSLSocket
    sslobject_class = _PinnedSSLObject
    pinned_fingerprint: str


def pinned_context(fingerprint: str) -> PinnedSSLContext:
    """A client context pinned to ``fingerprint`` (any spelling :func:`normalize_fingerprint` accepts)."""
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = MIN_TLS_VERSION
    context.pinned_fingerprint = normalize_fingerprint(fingerprint)
    return context


def system_trust_context() -> ssl.SSLContext:
    """A client context verifying against the operating system's trust store (via ``truststore``).

    Certificates an administrator installed system-wide (e.g. a company CA) are trusted, unlike with
    the CA list bundled with Python packages.
    """
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def ca_file_context(ca_file: str) -> ssl.SSLContext:
    """A client context verifying against the CA bundle in ``ca_file`` (raises OSError/ssl.SSLError)."""
    return ssl.create_default_context(cafile=ca_file)
