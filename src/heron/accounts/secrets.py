"""Every secret an account needs, derived from the password once.

heron never keeps a password: ``heron user add`` derives what each protocol
checks against and forgets the rest. A password change derives them all
again and the store writes them in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from heron.accounts.saslprep import saslprep
from heron.accounts.scram import ScramHash, ScramKeys, derive_scram_keys

__all__ = [
    "SCRAM_ITERATIONS",
    "Identity",
    "Secrets",
    "derive_secrets",
    "digest_ha1",
    "turn_long_term_key",
    "verify_password",
]

SCRAM_ITERATIONS = 10_000
"""Above RFC 7677's minimum of 4096; what Prosody uses."""

_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Identity:
    """The names an account goes by in the protocols whose keys bind them.

    SIP digest HA1 and the TURN key hash the username and realm in, so they
    are fixed when the password is set.
    """

    sip_user: str
    sip_realm: str
    turn_user: str
    turn_realm: str


@dataclass(frozen=True, slots=True)
class Secrets:
    """Derived secrets of one account; none of them reveals the password."""

    password_hash: str
    """Argon2id PHC string, for web logins and SASL PLAIN."""
    sip_realm: str
    sip_ha1_md5: str
    """Hex MD5(user:realm:password), RFC 3261 §22.4 / RFC 2617."""
    sip_ha1_sha256: str
    """Hex SHA-256(user:realm:password), RFC 8760 / RFC 7616."""
    turn_realm: str
    turn_key_md5: bytes
    """MD5(user:realm:SASLprep(password)), RFC 8489 §9.2.2, for MESSAGE-INTEGRITY."""
    turn_key_sha256: bytes
    """SHA-256 of the same string, for PASSWORD-ALGORITHM SHA-256 (RFC 8489 §18.5.1.1)."""
    scram: tuple[ScramKeys, ...]
    """SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 keys, one salt."""

    def scram_keys(self, hash_name: ScramHash) -> ScramKeys:
        return next(keys for keys in self.scram if keys.hash is hash_name)


def digest_ha1(user: str, realm: str, password: str, algorithm: str) -> str:
    """HTTP/SIP digest HA1 for ``algorithm`` "md5" or "sha256" (RFC 7616 §3.4.2)."""
    return hashlib.new(algorithm, f"{user}:{realm}:{password}".encode()).hexdigest()


def turn_long_term_key(user: str, realm: str, password: str, algorithm: str = "md5") -> bytes:
    """STUN long-term credential key (RFC 8489 §9.2.2) for "md5" or "sha256"."""
    return hashlib.new(algorithm, f"{user}:{realm}:{saslprep(password)}".encode()).digest()


def derive_secrets(
    identity: Identity, password: str, *, salt: bytes, iterations: int = SCRAM_ITERATIONS
) -> Secrets:
    """Derive all of an account's secrets; raises ``ValueError`` for an unusable password."""
    prepared = saslprep(password)
    return Secrets(
        password_hash=_HASHER.hash(prepared),
        sip_realm=identity.sip_realm,
        sip_ha1_md5=digest_ha1(identity.sip_user, identity.sip_realm, password, "md5"),
        sip_ha1_sha256=digest_ha1(identity.sip_user, identity.sip_realm, password, "sha256"),
        turn_realm=identity.turn_realm,
        turn_key_md5=turn_long_term_key(identity.turn_user, identity.turn_realm, password),
        turn_key_sha256=turn_long_term_key(
            identity.turn_user, identity.turn_realm, password, "sha256"
        ),
        scram=tuple(derive_scram_keys(prepared, salt, iterations, h) for h in ScramHash),
    )


def verify_password(secrets: Secrets, password: str) -> bool:
    """Check a plaintext password (web login, SASL PLAIN) against the Argon2 hash."""
    try:
        return _HASHER.verify(secrets.password_hash, saslprep(password))
    except (VerificationError, InvalidHashError, ValueError):
        return False
