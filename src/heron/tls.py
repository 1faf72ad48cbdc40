"""Certificates: self-signed ones for a first start, checks, and server TLS contexts.

Every server context heron makes comes from one :class:`Certificates`, which
loads new files into all of them on a reload: OpenSSL copies the certificate
into each connection as its handshake starts, so new handshakes get the new
certificate and open connections keep theirs.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from heron.errors import TlsError

__all__ = [
    "CertificateInfo",
    "Certificates",
    "inspect_certificate",
    "load_chain",
    "server_context",
    "write_self_signed",
]


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    names: tuple[str, ...]
    not_after: datetime

    def covers(self, name: str) -> bool:
        """True if a DNS name matches, wildcards one label deep (RFC 6125 §6.4.3)."""
        for pattern in self.names:
            if pattern == name:
                return True
            if pattern.startswith("*.") and name.partition(".")[2] == pattern[2:]:
                return True
        return False


def write_self_signed(
    cert_path: Path, key_path: Path, names: Sequence[str], *, days: int = 825
) -> CertificateInfo:
    """Write a self-signed ECDSA P-256 certificate for ``names``, key readable by owner only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    if "localhost" in names:
        alt_names += [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    try:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        key_bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key_bytes)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TlsError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return CertificateInfo(tuple(names), certificate.not_valid_after_utc)


def inspect_certificate(cert_path: Path) -> CertificateInfo:
    """Names and expiry of the first certificate in a PEM file."""
    try:
        data = cert_path.read_bytes()
    except OSError as exc:
        raise TlsError(f"tls.certificate: cannot read {cert_path}: {exc.strerror}") from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TlsError(f"tls.certificate: {cert_path} is not a PEM certificate") from None
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = tuple(
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
    return CertificateInfo(names, certificate.not_valid_after_utc)


def server_context(cert_path: Path, key_path: Path, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A server context with TLS 1.2+ and the certificate; TlsError names a bad file."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    load_chain(context, cert_path, key_path)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def load_chain(context: ssl.SSLContext, cert_path: Path, key_path: Path) -> None:
    """TLS 1.2+ and heron's certificate on ``context``; TlsError names a bad file."""
    for key, path in (("tls.certificate", cert_path), ("tls.key", key_path)):
        if not path.is_file():
            raise TlsError(f"{key}: {path} does not exist (`heron cert` makes a self-signed one)")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except PermissionError:
        raise TlsError(f"tls: {cert_path} or {key_path} is not readable by this user") from None
    except ssl.SSLError as exc:
        raise TlsError(
            f"tls: {cert_path} and {key_path} are not a matching PEM certificate and key"
            f" ({exc.reason or exc.strerror})"
        ) from None


class Certificates:
    """heron's certificate and key, and every context made from them for a listener."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self._cert_path = cert_path
        self._key_path = key_path
        self._contexts: list[ssl.SSLContext] = []

    def server_context(self, alpn: Sequence[str] = ()) -> ssl.SSLContext:
        """A context on the current files (:func:`server_context`), reloaded with them."""
        return self.track(server_context(self._cert_path, self._key_path, alpn))

    def track(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Reload ``context`` too (one built elsewhere on the same files: federation's)."""
        self._contexts.append(context)
        return context

    def check(self, cert_path: Path, key_path: Path) -> None:
        """Raise :class:`TlsError` if :meth:`reload` would refuse the pair: it is tried on
        a context of its own (not at all while no listener uses TLS)."""
        if self._contexts:
            server_context(cert_path, key_path)

    def reload(self, cert_path: Path, key_path: Path) -> int:
        """Load the files (again: a renewal keeps the names) into every context; how many.

        A bad pair raises :class:`TlsError` first (:meth:`check`), and every listener
        serves the old certificate on."""
        self.check(cert_path, key_path)
        for context in self._contexts:
            load_chain(context, cert_path, key_path)
        self._cert_path, self._key_path = cert_path, key_path
        return len(self._contexts)
