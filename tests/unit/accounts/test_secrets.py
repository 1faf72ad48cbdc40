"""Derived secrets against RFC 7616 §3.9.1 (digest) and RFC 5769 §2.4 (STUN long-term key)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from heron.accounts import (
    Identity,
    ScramHash,
    derive_secrets,
    digest_ha1,
    saslprep,
    turn_long_term_key,
    verify_password,
)

# RFC 7616 §3.9.1: the request for /dir/index.html with qop=auth.
RFC7616 = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "nc": "00000001",
}
RFC7616_RESPONSES = {
    "md5": "8ca523f5e9506fed4657c9700eebdbec",
    "sha256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_rfc7616_3_9_1_response_from_stored_ha1(algorithm: str) -> None:
    v = RFC7616
    ha1 = digest_ha1(v["username"], v["realm"], v["password"], algorithm)
    ha2 = hashlib.new(algorithm, f"{v['method']}:{v['uri']}".encode()).hexdigest()
    data = f"{ha1}:{v['nonce']}:{v['nc']}:{v['cnonce']}:auth:{ha2}"
    assert hashlib.new(algorithm, data.encode()).hexdigest() == RFC7616_RESPONSES[algorithm]


# RFC 5769 §2.4: a request with long-term credentials; the key is
# MD5(username ":" realm ":" SASLprep(password)).
RFC5769_USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
RFC5769_PASSWORD = "The\u00adM\u00aatr\u2168"
RFC5769_REQUEST = (
    Path(__file__).parents[2] / "vectors/rfc5769/sample_request_long_term.bin"
).read_bytes()


def test_rfc5769_2_4_password_prepares_to_thematrix() -> None:
    assert saslprep(RFC5769_PASSWORD) == "TheMatrIX"


def test_rfc5769_2_4_long_term_key_verifies_message_integrity() -> None:
    key = turn_long_term_key(RFC5769_USERNAME, "example.org", RFC5769_PASSWORD)
    integrity_at = RFC5769_REQUEST.index(bytes.fromhex("00080014"))
    signed = bytearray(RFC5769_REQUEST[:integrity_at])
    # RFC 8489 §14.5: the length field counts up to and including MESSAGE-INTEGRITY.
    signed[2:4] = (integrity_at - 20 + 24).to_bytes(2, "big")
    expected = RFC5769_REQUEST[integrity_at + 4 : integrity_at + 24]
    assert hmac.digest(key, bytes(signed), "sha1") == expected


def test_rfc5769_2_4_wrong_password_does_not_verify() -> None:
    key = turn_long_term_key(RFC5769_USERNAME, "example.org", "TheMatrix")
    integrity_at = RFC5769_REQUEST.index(bytes.fromhex("00080014"))
    signed = bytearray(RFC5769_REQUEST[:integrity_at])
    signed[2:4] = (integrity_at - 20 + 24).to_bytes(2, "big")
    assert hmac.digest(key, bytes(signed), "sha1") != RFC5769_REQUEST[integrity_at + 4 :][:20]


def test_turn_sha256_key_is_sha256_of_the_same_string() -> None:
    key = turn_long_term_key("roland", "falcot.com", "secret", "sha256")
    assert key == hashlib.sha256(b"roland:falcot.com:secret").digest()


IDENTITY = Identity("roland", "sip.falcot.com", "roland", "falcot.com")


def test_derived_secrets_bind_each_protocols_realm() -> None:
    secrets = derive_secrets(IDENTITY, "secret", salt=b"s" * 16, iterations=4096)
    assert secrets.sip_ha1_md5 == hashlib.md5(b"roland:sip.falcot.com:secret").hexdigest()
    assert secrets.sip_ha1_sha256 == hashlib.sha256(b"roland:sip.falcot.com:secret").hexdigest()
    assert secrets.turn_key_md5 == hashlib.md5(b"roland:falcot.com:secret").digest()
    assert {keys.hash for keys in secrets.scram} == set(ScramHash)
    assert secrets.scram_keys(ScramHash.SHA256).iterations == 4096


def test_no_derived_secret_contains_the_password() -> None:
    password = "correct horse battery staple"
    secrets = derive_secrets(IDENTITY, password, salt=b"s" * 16, iterations=4096)
    assert password not in repr(secrets)
    assert password.encode() not in b"".join(
        [secrets.turn_key_md5, secrets.turn_key_sha256]
        + [k.stored_key + k.server_key for k in secrets.scram]
    )


def test_argon2_hash_verifies_only_the_right_password() -> None:
    secrets = derive_secrets(IDENTITY, "secret", salt=b"s" * 16, iterations=4096)
    assert secrets.password_hash.startswith("$argon2id$")
    assert verify_password(secrets, "secret")
    assert not verify_password(secrets, "Secret")
    assert not verify_password(secrets, "")


def test_password_with_prohibited_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="prohibited"):
        derive_secrets(IDENTITY, "bad\x00password", salt=b"s" * 16, iterations=4096)
