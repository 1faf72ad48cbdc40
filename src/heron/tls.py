"""Certificates: self-signed ones for a first start, checks, and server TLS contexts.

Every server context heron makes comes from one :class:`ServedCertificate`, which
loads new files into all of them on a reload or an ACME renewal: OpenSSL copies the
certificate into each connection as its handshake starts, so new handshakes get the
new certificate and open connections keep theirs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from heron.certificates import self_signed
from heron.errors import TlsError

__all__ = [
    "CertificateInfo",
    "ServedCertificate",
    "inspect_certificate",
    "load_chain",
    "server_context",
    "write_self_signed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    names: tuple[str, ...]
    not_after: datetime
    self_signed: bool = False
    """Issuer and subject are one name: ``heron cert``'s, or what ACME has not replaced yet."""

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
    certificate = (
        self_signed(key, alt_names, now, timedelta(days=days))
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
    return CertificateInfo(tuple(names), certificate.not_valid_after_utc, self_signed=True)


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
    self_signed = certificate.issuer == certificate.subject
    return CertificateInfo(names, certificate.not_valid_after_utc, self_signed)


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


class ServedCertificate:
    """heron's one certificate under every TLS listener's contexts, replaceable in place.

    OpenSSL copies a context's certificate into each connection as it starts, so
    loading new files into a live context (:meth:`reload`) changes what new handshakes
    present on every listener at once, while open connections keep theirs: no listener
    is rebound and nothing is dropped. Contexts are held weakly: a listener that closes
    takes its context with it.
    """

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._contexts: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()
        self._loaded: tuple[tuple[int, int, int], ...] | None = None

    def context(self, alpn: Sequence[str] = ()) -> ssl.SSLContext:
        """A server context (:func:`server_context`) that :meth:`reload` reaches."""
        return self.keep(server_context(self.cert_path, self.key_path, alpn))

    def keep(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Have :meth:`reload` reach ``context``, built on this certificate elsewhere."""
        self._loaded = self._loaded or self._files()
        self._contexts.add(context)
        return context

    def check(self, cert_path: Path, key_path: Path) -> None:
        """Raise :class:`TlsError` if :meth:`reload` would refuse the pair: it is tried on
        a context of its own (not at all while no listener uses TLS)."""
        if self._contexts:
            load_chain(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), cert_path, key_path)

    def reload(self, cert_path: Path | None = None, key_path: Path | None = None) -> int:
        """Load the files again (or the ones a reloaded configuration names) into every
        live context; how many. TlsError names a bad file, and then no context has
        changed: the pair is tried on a fresh one first (:meth:`check`)."""
        cert_path, key_path = cert_path or self.cert_path, key_path or self.key_path
        self.check(cert_path, key_path)
        self.cert_path, self.key_path = cert_path, key_path
        files = self._files()
        contexts = list(self._contexts)
        for context in contexts:
            load_chain(context, cert_path, key_path)
        self._loaded = files
        return len(contexts)

    def follow(self) -> bool:
        """:meth:`reload` if the files were replaced since the last load: how a process that
        does not renew (a TURN worker) takes what another wrote. A bad pair is logged once
        and the old certificate kept."""
        files = self._files()
        if self._loaded is None or files == self._loaded:
            return False
        try:
            self.reload()
        except TlsError as exc:
            log.warning("%s; still serving the certificate loaded before", exc)
            self._loaded = files
            return False
        return True

    def _files(self) -> tuple[tuple[int, int, int], ...]:
        """Inode, size and modification time of both files: os.replace changes the inode."""
        stamps = []
        for path in (self.cert_path, self.key_path):
            try:
                status = path.stat()
            except OSError:
                stamps.append((0, 0, 0))
                continue
            stamps.append((status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(stamps)
