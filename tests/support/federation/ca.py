"""A certificate authority made in the test, for XMPP federation (RFC 6125, RFC 7590, XEP-0178).

Both reference servers verify their peers against ``ca.cafile``; a certificate :meth:`TestCa.issue`
writes for a domain carries that domain as DNS-ID and SRV-ID (``_xmpp-server.DOMAIN``,
RFC 4985), so each server authenticates the other with SASL EXTERNAL. A certificate for another
name, or an expired one, makes them fall back to dialback (XEP-0220).

XmppAddr identifiers (RFC 6120 §13.7.1.4) are left out unless asked for: ejabberd 23.01's
``xmpp_stream_pkix:get_domains_from_san`` crashes the inbound stream on a domain XmppAddr
(``badarg`` in ``++``, a binary where a list belongs) when it checks a peer for SASL EXTERNAL.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
"""RFC 6120 §13.7.1.4: an otherName holding a UTF8String JID."""
ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")
"""RFC 4985: an otherName holding an IA5String ``_service.domain``."""
_UTF8_STRING = 0x0C
_IA5_STRING = 0x16


def _der(tag: int, value: bytes) -> bytes:
    """One DER TLV: the otherName values cryptography takes already encoded."""
    length = len(value)
    if length < 0x80:
        return bytes((tag, length)) + value
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + value


@dataclass(frozen=True)
class Issued:
    """A certificate and its key as PEM files, as servers take them."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TestCa:
    """A root CA whose PEM certificate is ``cafile``; :meth:`issue` signs leaf certificates."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    cafile: Path
    _key: ec.EllipticCurvePrivateKey
    _cert: x509.Certificate

    def issue(
        self,
        domain: str,
        *,
        dns_ids: tuple[str, ...] | None = None,
        srv_ids: tuple[str, ...] | None = None,
        xmpp_addrs: tuple[str, ...] = (),
        expired: bool = False,
    ) -> Issued:
        """A certificate with ``domain`` as CN. DNS-IDs default to ``domain`` and SRV-IDs to
        ``_xmpp-server.domain`` (``()`` leaves a kind out); XmppAddrs to none (see above)."""
        dns_ids = (domain,) if dns_ids is None else dns_ids
        srv_ids = (f"_xmpp-server.{domain}",) if srv_ids is None else srv_ids
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_ids]
        names += [x509.OtherName(ID_ON_DNSSRV, _der(_IA5_STRING, s.encode())) for s in srv_ids]
        names += [
            x509.OtherName(ID_ON_XMPPADDR, _der(_UTF8_STRING, a.encode())) for a in xmpp_addrs
        ]
        now = datetime.datetime.now(datetime.UTC)
        start, end = (
            (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
            if expired
            else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        )
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # s2s certificates act as both ends of a TLS connection (RFC 7590 §3).
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = f"{domain}{'-expired' if expired else ''}-{cert.serial_number:x}"
        issued = Issued(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


def make_ca(directory: Path, name: str = "heron federation test CA") -> TestCa:
    """A fresh root CA in ``directory`` (created if missing), valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cafile = directory / "ca.crt"
    cafile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TestCa(directory, cafile, key, cert)
