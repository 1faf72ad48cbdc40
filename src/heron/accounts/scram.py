"""SCRAM keys (RFC 5802 §3, RFC 7677) derived once and checked without the password.

The account store keeps ``StoredKey`` and ``ServerKey`` per hash; an XMPP
server proves and checks a SCRAM exchange from those alone.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ScramHash",
    "ScramKeys",
    "client_proof_matches",
    "derive_scram_keys",
    "server_signature",
]


class ScramHash(StrEnum):
    """Hash of a SCRAM mechanism: SCRAM-SHA-1 (RFC 5802), -SHA-256 (RFC 7677), -SHA-512."""

    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"

    @property
    def mechanism(self) -> str:
        return {"sha1": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256", "sha512": "SCRAM-SHA-512"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """What a server needs to run SCRAM for one hash; the password is not derivable."""

    hash: ScramHash
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def derive_scram_keys(
    prepared_password: str, salt: bytes, iterations: int, hash_name: ScramHash
) -> ScramKeys:
    """RFC 5802 §3: SaltedPassword = Hi(password, salt, i); keep H(ClientKey) and ServerKey."""
    salted = hashlib.pbkdf2_hmac(hash_name.value, prepared_password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name.value)
    return ScramKeys(
        hash=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.new(hash_name.value, client_key).digest(),
        server_key=hmac.digest(salted, b"Server Key", hash_name.value),
    )


def client_proof_matches(keys: ScramKeys, auth_message: bytes, proof: bytes) -> bool:
    """RFC 5802 §3: recover ClientKey from the proof and compare H(ClientKey) to StoredKey."""
    signature = hmac.digest(keys.stored_key, auth_message, keys.hash.value)
    if len(proof) != len(signature):
        return False
    client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    recomputed = hashlib.new(keys.hash.value, client_key).digest()
    return hmac.compare_digest(recomputed, keys.stored_key)


def server_signature(keys: ScramKeys, auth_message: bytes) -> bytes:
    """RFC 5802 §3: ServerSignature = HMAC(ServerKey, AuthMessage), sent as ``v=``."""
    return hmac.digest(keys.server_key, auth_message, keys.hash.value)
