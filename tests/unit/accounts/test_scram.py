"""SCRAM keys against the worked examples of RFC 5802 §5 and RFC 7677 §3."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.accounts import (
    ScramHash,
    client_proof_matches,
    derive_scram_keys,
    saslprep,
    server_signature,
)

# (hash, salt, client-first-bare, server-first, client-final-without-proof, proof, server sig)
EXAMPLES = {
    "rfc5802_5": (
        ScramHash.SHA1,
        "QSXCR+Q6sek8bf92",
        "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
        "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    ),
    "rfc7677_3": (
        ScramHash.SHA256,
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        "n=user,r=rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_rfc_example_exchange_verifies_from_stored_keys_alone(name: str) -> None:
    hash_name, salt, first, server_first, final, proof, signature = EXAMPLES[name]
    keys = derive_scram_keys(saslprep("pencil"), base64.b64decode(salt), 4096, hash_name)
    auth_message = f"{first},{server_first},{final}".encode()
    assert client_proof_matches(keys, auth_message, base64.b64decode(proof))
    assert server_signature(keys, auth_message) == base64.b64decode(signature)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_rfc_example_proof_for_another_password_fails(name: str) -> None:
    hash_name, salt, first, server_first, final, proof, _ = EXAMPLES[name]
    keys = derive_scram_keys("pencil2", base64.b64decode(salt), 4096, hash_name)
    auth_message = f"{first},{server_first},{final}".encode()
    assert not client_proof_matches(keys, auth_message, base64.b64decode(proof))


def test_proof_of_wrong_length_is_refused_not_raised() -> None:
    keys = derive_scram_keys("pencil", b"salt", 4096, ScramHash.SHA512)
    assert not client_proof_matches(keys, b"message", b"short")


@given(password=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_sha512_client_built_proof_verifies(password: str) -> None:
    """SCRAM-SHA-512 has no RFC example: prove it with a client computed independently."""
    import hashlib
    import hmac

    salt, iterations = b"0123456789abcdef", 4096
    keys = derive_scram_keys(password, salt, iterations, ScramHash.SHA512)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha512")
    auth_message = b"n=u,r=a,r=ab,s=c2FsdA==,i=4096,c=biws,r=ab"
    client_signature = hmac.digest(hashlib.sha512(client_key).digest(), auth_message, "sha512")
    proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
    assert client_proof_matches(keys, auth_message, proof)
    server_key = hmac.digest(salted, b"Server Key", "sha512")
    assert server_signature(keys, auth_message) == hmac.digest(server_key, auth_message, "sha512")


def test_mechanism_names_follow_the_iana_registry() -> None:
    assert [h.mechanism for h in ScramHash] == ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"]
