"""A certificate authority made in the test, and certificates of any shape it or nobody
signs (RFC 6125 identifiers, expired, self-signed), for TLS and identity tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ID_ON_XMPP_ADDR = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.5")
ID_ON_DNS_SRV = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.7")


def der_string(tag: int, text: str) -> bytes:
    """One DER string (UTF8String 0x0c, IA5String 0x16) of ``text``."""
    data = text.encode()
    length = bytes([len(data)]) if len(data) < 128 else bytes([0x81, len(data)])
    return bytes([tag]) + length + data


def xmpp_addr(jid: str) -> x509.OtherName:
    return x509.OtherName(ID_ON_XMPP_ADDR, der_string(0x0C, jid))


def srv_id(name: str) -> x509.OtherName:
    return x509.OtherName(ID_ON_DNS_SRV, der_string(0x16, name))


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """PEM certificate and key files, for an ssl context."""
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key


class CertificateAuthority:
    """A CA whose certificates carry whatever names a test asks for."""

    def __init__(self, name: str = "heron test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def write(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(
        self,
        names: Sequence[x509.GeneralName] = (),
        *,
        common_name: str | None = None,
        expired: bool = False,
        self_signed: bool = False,
        server_auth_only: bool = False,
    ) -> Issued:
        """A leaf for both server and client authentication (as s2s needs), or for server
        authentication only (as Let's Encrypt issues since 2026)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        )
        now = datetime.now(UTC)
        start, end = (
            (now - timedelta(days=10), now - timedelta(days=1))
            if expired
            else (
                now - timedelta(minutes=5),
                now + timedelta(days=10),
            )
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]
                    if server_auth_only
                    else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(key if self_signed else self.key, hashes.SHA256())
        return Issued(certificate, key)
