"""ACME's sans-IO core: JWS (RFC 8555 §6.2, RFC 7515), thumbprints (RFC 7638), the CA's
objects read with limits, and the TLS-ALPN-01 certificate (RFC 8737 §3)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from heron.acme.messages import (
    ACME_IDENTIFIER,
    MAX_BODY,
    AcmeError,
    AcmeProblem,
    Authorization,
    Directory,
    Order,
    Status,
    csr,
    jwk,
    key_authorization,
    parse_json,
    sign,
    thumbprint,
    tls_alpn_certificate,
)

KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime(2026, 12, 8, tzinfo=UTC)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(message: bytes, key: ec.EllipticCurvePrivateKey) -> tuple[dict[str, Any], str]:
    """The protected header and payload of a flattened JWS whose ES256 signature holds."""
    jws = json.loads(message)
    raw = unb64(jws["signature"])
    assert len(raw) == 64  # RFC 7518 §3.4: R || S, 32 octets each
    signature = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    signed = f"{jws['protected']}.{jws['payload']}".encode()
    key.public_key().verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    return json.loads(unb64(jws["protected"])), jws["payload"]


def test_rfc8555_6_2_new_account_request_carries_the_jwk() -> None:
    header, payload = verify(sign(KEY, "https://ca/new-acct", "n0", {"a": 1}), KEY)
    assert header == {"alg": "ES256", "nonce": "n0", "url": "https://ca/new-acct", "jwk": jwk(KEY)}
    assert json.loads(unb64(payload)) == {"a": 1}


def test_rfc8555_6_2_later_requests_carry_the_kid_and_never_the_jwk() -> None:
    header, _ = verify(sign(KEY, "https://ca/order", "n1", {}, kid="https://ca/acct/1"), KEY)
    assert header["kid"] == "https://ca/acct/1"
    assert "jwk" not in header


def test_rfc8555_6_3_post_as_get_has_an_empty_payload() -> None:
    _, payload = verify(sign(KEY, "https://ca/authz/1", "n2", None, kid="k"), KEY)
    assert payload == ""


def test_rfc7638_3_thumbprint_hashes_the_required_members_in_order() -> None:
    members = jwk(KEY)
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{members["x"]}","y":"{members["y"]}"}}'.encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert thumbprint(KEY) == expected.decode()
    assert len(unb64(members["x"])) == len(unb64(members["y"])) == 32


def test_rfc8555_8_1_key_authorization_is_token_dot_thumbprint() -> None:
    assert key_authorization("tok-en_1", KEY) == f"tok-en_1.{thumbprint(KEY)}"


def test_rfc8737_3_challenge_certificate_holds_the_digest_in_a_critical_extension() -> None:
    authorization = key_authorization("token", KEY)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = tls_alpn_certificate("sip.falcot.com", authorization, NOW, key)
    extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    assert extension.critical
    value = extension.value
    assert isinstance(value, x509.UnrecognizedExtension)
    assert value.value == b"\x04\x20" + hashlib.sha256(authorization.encode()).digest()
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sip.falcot.com"]
    assert certificate.public_key() == key.public_key()


def test_rfc8555_7_4_csr_names_every_name_and_is_signed_by_the_certificate_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.load_der_x509_csr(unb64(csr(["falcot.com", "sip.falcot.com"], key)))
    assert request.is_signature_valid
    assert request.public_key() == key.public_key()
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["falcot.com", "sip.falcot.com"]


def test_rfc8555_6_7_problem_document_names_its_kind() -> None:
    body = b'{"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale"}'
    with pytest.raises(AcmeProblem, match="badNonce: stale") as problem:
        parse_json(body)
    assert problem.value.kind == "badNonce"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b" " * (MAX_BODY + 1), "more than"),
    ],
)
def test_what_is_no_json_object_within_the_limit_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(AcmeError, match=reason):
        parse_json(body)


def test_rfc8555_7_1_objects_are_read() -> None:
    directory = Directory.parse({"newNonce": "n", "newAccount": "a", "newOrder": "o", "x": 1})
    assert directory == Directory("n", "a", "o")
    order = Order.parse(
        {"status": "valid", "authorizations": ["z1"], "finalize": "f", "certificate": "c"}
    )
    assert order == Order(Status.VALID, ("z1",), "f", "c", "")
    authorization = Authorization.parse(
        {
            "status": "invalid",
            "identifier": {"type": "dns", "value": "falcot.com"},
            "challenges": [
                {
                    "type": "tls-alpn-01",
                    "url": "u",
                    "token": "t",
                    "error": {"type": "urn:ietf:params:acme:error:connection", "detail": "refused"},
                },
                {"type": "http-01", "url": "u2", "token": "t2"},
            ],
        }
    )
    assert authorization.status is Status.INVALID
    assert authorization.challenges == {"tls-alpn-01": ("u", "t"), "http-01": ("u2", "t2")}
    assert authorization.problem == "connection: refused"


@pytest.mark.parametrize(
    ("parse", "value", "reason"),
    [
        (Directory.parse, {"newNonce": "n", "newAccount": "a"}, "no newOrder"),
        (Directory.parse, {"newNonce": 1, "newAccount": "a", "newOrder": "o"}, "no newNonce"),
        (Order.parse, {"status": "sleeping", "authorizations": [], "finalize": "f"}, "unknown"),
        (Order.parse, {"status": "ready", "authorizations": "z", "finalize": "f"}, "list"),
        (Order.parse, {"status": "ready", "authorizations": [1], "finalize": "f"}, "list"),
        (
            Order.parse,
            {"status": "ready", "authorizations": ["z"] * 101, "finalize": "f"},
            "list",
        ),
        (Authorization.parse, {"status": "pending", "challenges": []}, "not for a DNS name"),
        (
            Authorization.parse,
            {"status": "pending", "identifier": {"type": "ip", "value": "192.0.2.1"}},
            "not for a DNS name",
        ),
        (
            Authorization.parse,
            {"status": "pending", "identifier": {"type": "dns", "value": "a"}, "challenges": {}},
            "no list of challenges",
        ),
        (
            Authorization.parse,
            {"status": "pending", "identifier": {"type": "dns", "value": "a"}, "challenges": [1]},
            "not an object",
        ),
    ],
)
def test_malformed_objects_are_refused_with_one_line(
    parse: Any, value: dict[str, Any], reason: str
) -> None:
    with pytest.raises(AcmeError, match=reason):
        parse(value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
        ),
    )
)
def test_any_json_only_parses_or_raises_acme_error(value: Any) -> None:
    for parse in (Directory.parse, Order.parse, Authorization.parse):
        try:
            parse(parse_json(json.dumps(value).encode()))
        except AcmeError:
            pass


def test_an_issued_chain_is_checked_before_it_replaces_the_certificate() -> None:
    from cryptography.hazmat.primitives import serialization

    from heron.acme.messages import check_chain
    from tests.support.certs import CertificateAuthority

    authority = CertificateAuthority()
    issued = authority.issue([x509.DNSName("falcot.com"), x509.DNSName("sip.falcot.com")])
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    chain = pem + authority.certificate.public_bytes(serialization.Encoding.PEM)
    assert check_chain(chain, issued.key, ["falcot.com", "sip.falcot.com"]) == issued.certificate
    for bad_chain, key, names, reason in [
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", issued.key, ["falcot.com"], "not a PEM chain"),
        (b"", issued.key, ["falcot.com"], "not a PEM chain"),
        (chain, KEY, ["falcot.com"], "not for the key"),
        (chain, issued.key, ["conference.falcot.com"], "does not name conference.falcot.com"),
        (chain + b"\n" * MAX_BODY, issued.key, ["falcot.com"], "more than"),
    ]:
        with pytest.raises(AcmeError, match=reason):
            check_chain(bad_chain, key, names)
