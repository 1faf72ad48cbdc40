"""Self-signed certificates as data: no files, no TLS library, the time an argument."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["self_signed"]

_BACKDATE = timedelta(minutes=5)
"""Valid a little before ``now``: a peer whose clock is behind still accepts it."""


def self_signed(
    key: ec.EllipticCurvePrivateKey,
    alt_names: Sequence[x509.GeneralName],
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    """A builder for a certificate naming itself, its subject the first name; the caller
    adds its own extensions and signs with ``key``."""
    first = alt_names[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first.value))])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    )
