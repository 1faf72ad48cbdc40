"""ACME's messages without the network: JWS requests, the objects a CA answers, proofs.

Sans-IO (no socket, no clock of its own): :mod:`heron.acme.client` posts what this
module signs and hands back what arrived. Errors are one tree::

    AcmeError                 the CA said no, or answered what RFC 8555 does not allow
    └── AcmeProblem           an RFC 7807 problem document; ``kind`` names it (badNonce ...)
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from heron.certificates import self_signed
from heron.errors import HeronError

__all__ = [
    "ACME_IDENTIFIER",
    "ALPN_PROTOCOL",
    "MAX_BODY",
    "AcmeError",
    "AcmeProblem",
    "Authorization",
    "Directory",
    "Order",
    "Status",
    "b64url",
    "check_chain",
    "csr",
    "jwk",
    "key_authorization",
    "parse_json",
    "sign",
    "thumbprint",
    "tls_alpn_certificate",
]

ALPN_PROTOCOL = "acme-tls/1"
"""RFC 8737 §6.2: the ALPN id a validation server offers, and the only one it offers."""
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
"""RFC 8737 §6.1: id-pe-acmeIdentifier."""
MAX_BODY = 256 * 1024
"""Bytes of a CA's answer read at most: a certificate chain of four is ~8 KiB, an order
for heron's few names ~1 KiB; more is a CA gone wrong, refused rather than buffered."""
_MAX_LIST = 100
"""Authorizations (or challenges) of one object kept at most: heron asks for a few names."""


class AcmeError(HeronError):
    """The CA refused a request or answered something RFC 8555 does not allow."""


class AcmeProblem(AcmeError):
    """An RFC 7807 problem document (RFC 8555 §6.7): ``kind`` is its type less the
    ``urn:ietf:params:acme:error:`` prefix, such as ``badNonce``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Status(StrEnum):
    """RFC 8555 §7.1.6: the life of orders, authorizations and challenges."""

    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


def b64url(data: bytes) -> str:
    """RFC 8555 §6.1: base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int32(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


def jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The account's public key as a JWK (RFC 7518 §6.2), P-256 only."""
    numbers = key.public_key().public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": _int32(numbers.x), "y": _int32(numbers.y)}


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 §3: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(jwk(key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def key_authorization(token: str, key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 8555 §8.1: token || '.' || base64url(Thumbprint(accountKey))."""
    return f"{token}.{thumbprint(key)}"


def sign(
    key: ec.EllipticCurvePrivateKey,
    url: str,
    nonce: str,
    payload: Mapping[str, Any] | None,
    kid: str | None = None,
) -> bytes:
    """A flattened JWS (RFC 8555 §6.2) of ``payload``, ES256; None is POST-as-GET (§6.3).

    The header carries ``jwk`` until the account has a URL (newAccount, §7.3), then
    ``kid``: "the 'jwk' and 'kid' fields are mutually exclusive".
    """
    header: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
    if kid is None:
        header["jwk"] = jwk(key)
    else:
        header["kid"] = kid
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = "" if payload is None else b64url(json.dumps(payload, separators=(",", ":")).encode())
    der = key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # RFC 7518 §3.4: R || S
    return json.dumps(
        {"protected": protected, "payload": body, "signature": b64url(signature)}
    ).encode()


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object from the CA; an RFC 7807 problem document raises :class:`AcmeProblem`."""
    if len(body) > MAX_BODY:
        raise AcmeError(f"the CA answered more than {MAX_BODY} bytes")
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AcmeError("the CA answered something that is not JSON") from None
    if not isinstance(value, dict):
        raise AcmeError("the CA answered JSON that is not an object")
    kind = value.get("type")
    if isinstance(kind, str) and kind.startswith("urn:ietf:params:acme:error:"):
        detail = value.get("detail")
        raise AcmeProblem(kind.rsplit(":", 1)[1], detail if isinstance(detail, str) else "")
    return value


def _string(value: Mapping[str, Any], key: str, what: str) -> str:
    field = value.get(key)
    if not isinstance(field, str) or not field:
        raise AcmeError(f"the CA's {what} has no {key}")
    return field


def _strings(value: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    field = value.get(key)
    if (
        not isinstance(field, list)
        or len(field) > _MAX_LIST
        or not all(isinstance(item, str) for item in field)
    ):
        raise AcmeError(f"the CA's {what} has no list of {key}")
    return tuple(field)


def _status(value: Mapping[str, Any], what: str) -> Status:
    try:
        return Status(_string(value, "status", what))
    except ValueError:
        raise AcmeError(f"the CA's {what} has an unknown status {value['status']!r}") from None


def _problem(value: Mapping[str, Any]) -> str:
    error = value.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', '')}: {error.get('detail', '')}".removeprefix(
            "urn:ietf:params:acme:error:"
        )
    return ""


@dataclass(frozen=True, slots=True)
class Directory:
    """RFC 8555 §7.1.1: the URLs a client needs."""

    new_nonce: str
    new_account: str
    new_order: str

    @classmethod
    def parse(cls, value: Mapping[str, Any]) -> Directory:
        return cls(
            _string(value, "newNonce", "directory"),
            _string(value, "newAccount", "directory"),
            _string(value, "newOrder", "directory"),
        )


@dataclass(frozen=True, slots=True)
class Order:
    """RFC 8555 §7.1.3, what heron uses of it."""

    status: Status
    authorizations: tuple[str, ...]
    finalize: str
    certificate: str | None
    problem: str

    @classmethod
    def parse(cls, value: Mapping[str, Any]) -> Order:
        certificate = value.get("certificate")
        return cls(
            _status(value, "order"),
            _strings(value, "authorizations", "order"),
            _string(value, "finalize", "order"),
            certificate if isinstance(certificate, str) else None,
            _problem(value),
        )


@dataclass(frozen=True, slots=True)
class Authorization:
    """RFC 8555 §7.1.4: one name to prove, and the challenges that could prove it."""

    status: Status
    name: str
    challenges: Mapping[str, tuple[str, str]]
    """By type: (URL, token)."""
    problem: str

    @classmethod
    def parse(cls, value: Mapping[str, Any]) -> Authorization:
        identifier = value.get("identifier")
        if not isinstance(identifier, dict) or identifier.get("type") != "dns":
            raise AcmeError("the CA's authorization is not for a DNS name")
        challenges = value.get("challenges")
        if not isinstance(challenges, list) or len(challenges) > _MAX_LIST:
            raise AcmeError("the CA's authorization has no list of challenges")
        offered: dict[str, tuple[str, str]] = {}
        problems = []
        for challenge in challenges:
            if not isinstance(challenge, dict):
                raise AcmeError("the CA's authorization has a challenge that is not an object")
            kind, url, token = (challenge.get(key) for key in ("type", "url", "token"))
            if isinstance(kind, str) and isinstance(url, str) and isinstance(token, str):
                offered[kind] = (url, token)
            problems.append(_problem(challenge))
        return cls(
            _status(value, "authorization"),
            _string(identifier, "value", "authorization"),
            offered,
            "; ".join(problem for problem in problems if problem),
        )


def tls_alpn_certificate(
    name: str, authorization: str, now: datetime, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """RFC 8737 §3: a self-signed certificate for ``name`` whose critical acmeIdentifier
    extension holds SHA-256 of the key authorization, DER ``Authorization ::= OCTET
    STRING (SIZE (32))``, served only to a client offering ``acme-tls/1``."""
    digest = hashlib.sha256(authorization.encode()).digest()
    return (
        self_signed(key, [x509.DNSName(name)], now, timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )


def csr(names: Sequence[str], key: ec.EllipticCurvePrivateKey) -> str:
    """The finalize payload's ``csr`` (RFC 8555 §7.4): DER, base64url, every name a SAN."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return b64url(request.public_bytes(serialization.Encoding.DER))


def check_chain(
    chain: bytes, key: ec.EllipticCurvePrivateKey, names: Sequence[str]
) -> x509.Certificate:
    """The leaf of what the CA issued, once it is a PEM chain for ``key`` naming every one
    of ``names``: checked before it replaces a working certificate on disk."""
    if len(chain) > MAX_BODY:
        raise AcmeError(f"the CA's certificate chain is more than {MAX_BODY} bytes")
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise AcmeError("the CA's certificate is not a PEM chain") from None
    leaf = certificates[0]
    if leaf.public_key() != key.public_key():
        raise AcmeError("the CA's certificate is not for the key heron ordered it with")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        issued = set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        issued = set()
    missing = [name for name in names if name not in issued]
    if missing:
        raise AcmeError(f"the CA's certificate does not name {', '.join(missing)}")
    return leaf
