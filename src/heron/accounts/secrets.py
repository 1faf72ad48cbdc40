"""Every secret an account needs, derived from the password once.

heron never keeps a password: ``heron user add`` derives what each protocol
checks against and forgets the rest. A password change derives them all
again and the store writes them in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from heron.accounts.saslprep import saslprep
from heron.accounts.scram import ScramHash, ScramKeys, derive_scram_keys

__all__ = [
    "SCRAM_ITERATIONS",
    "Identity",
    "Secret",
    "Secrets",
    "complete_secrets",
    "derive_secrets",
    "digest_ha1",
    "imported_secrets",
    "placeholder_secrets",
    "turn_long_term_key",
    "verify_password",
]

SCRAM_ITERATIONS = 10_000
"""Above RFC 7677's minimum of 4096; what Prosody uses."""

_HASHER = PasswordHasher()
_T = TypeVar("_T")


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


class Secret(StrEnum):
    """One derived secret, named for the marks of accounts imported without some of them."""

    PASSWORD = "password"
    """The Argon2id hash: web login, SASL PLAIN."""
    SIP_MD5 = "sip-md5"
    SIP_SHA256 = "sip-sha256"
    TURN_MD5 = "turn-md5"
    TURN_SHA256 = "turn-sha256"
    SCRAM_SHA1 = "scram-sha1"
    SCRAM_SHA256 = "scram-sha256"
    SCRAM_SHA512 = "scram-sha512"

    @staticmethod
    def scram(hash_name: ScramHash) -> Secret:
        return Secret(f"scram-{hash_name.value}")


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
    missing: frozenset[Secret] = frozenset()
    """What an import could not bring (another server kept only some hashes). Their
    fields hold random placeholders no password matches, so every protocol refuses them
    without knowing of imports; the next password change derives them all."""

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


def placeholder_secrets(identity: Identity, *, salt: bytes, iterations: int) -> Secrets:
    """Every secret missing: random values of the right sizes, which no password matches
    (a preimage of a random hash), and an Argon2 field that is no hash at all."""
    return Secrets(
        password_hash="",
        sip_realm=identity.sip_realm,
        sip_ha1_md5=os.urandom(16).hex(),
        sip_ha1_sha256=os.urandom(32).hex(),
        turn_realm=identity.turn_realm,
        turn_key_md5=os.urandom(16),
        turn_key_sha256=os.urandom(32),
        scram=tuple(
            ScramKeys(h, salt, iterations, os.urandom(size), os.urandom(size))
            for h, size in ((ScramHash.SHA1, 20), (ScramHash.SHA256, 32), (ScramHash.SHA512, 64))
        ),
        missing=frozenset(Secret),
    )


def imported_secrets(
    identity: Identity,
    *,
    sip_ha1_md5: str | None = None,
    turn_key_md5: bytes | None = None,
    turn_key_sha256: bytes | None = None,
    scram_sha1: ScramKeys | None = None,
    salt: bytes,
    iterations: int,
) -> Secrets:
    """The secrets another server kept (Kamailio's HA1, coturn's key, Prosody's SCRAM-SHA-1
    keys, which keep their own salt and count), every other one marked missing."""
    empty = placeholder_secrets(
        identity,
        salt=scram_sha1.salt if scram_sha1 else salt,
        iterations=scram_sha1.iterations if scram_sha1 else iterations,
    )
    have = {
        Secret.SIP_MD5: sip_ha1_md5,
        Secret.TURN_MD5: turn_key_md5,
        Secret.TURN_SHA256: turn_key_sha256,
        Secret.SCRAM_SHA1: scram_sha1,
    }
    return replace(
        empty,
        sip_ha1_md5=sip_ha1_md5 or empty.sip_ha1_md5,
        turn_key_md5=turn_key_md5 or empty.turn_key_md5,
        turn_key_sha256=turn_key_sha256 or empty.turn_key_sha256,
        scram=(scram_sha1, *empty.scram[1:]) if scram_sha1 else empty.scram,
        missing=empty.missing - {kind for kind, value in have.items() if value is not None},
    )


def complete_secrets(secrets: Secrets, derived: Secrets) -> Secrets:
    """``secrets`` with what it misses taken from ``derived``; what it has stays.

    An imported account may hold secrets of different old passwords (coturn's and
    Kamailio's were set apart): each keeps working until the next password change.
    The store keeps one SCRAM salt and count per account: an account without any SCRAM
    key takes ``derived``'s with their salt; one with some only takes keys derived with its
    own salt and count.
    """
    first = secrets.scram[0]
    scram_free = all(Secret.scram(h) in secrets.missing for h in ScramHash)
    same_salt = (derived.scram[0].salt, derived.scram[0].iterations) == (
        first.salt,
        first.iterations,
    )
    taken = {
        kind
        for kind in secrets.missing - derived.missing
        if scram_free or same_salt or not kind.value.startswith("scram-")
    }

    def pick(kind: Secret, old: _T, new: _T) -> _T:
        return new if kind in taken else old

    return Secrets(
        password_hash=pick(Secret.PASSWORD, secrets.password_hash, derived.password_hash),
        sip_realm=secrets.sip_realm,
        sip_ha1_md5=pick(Secret.SIP_MD5, secrets.sip_ha1_md5, derived.sip_ha1_md5),
        sip_ha1_sha256=pick(Secret.SIP_SHA256, secrets.sip_ha1_sha256, derived.sip_ha1_sha256),
        turn_realm=secrets.turn_realm,
        turn_key_md5=pick(Secret.TURN_MD5, secrets.turn_key_md5, derived.turn_key_md5),
        turn_key_sha256=pick(Secret.TURN_SHA256, secrets.turn_key_sha256, derived.turn_key_sha256),
        scram=derived.scram
        if scram_free
        else tuple(
            pick(Secret.scram(keys.hash), keys, derived.scram_keys(keys.hash))
            for keys in secrets.scram
        ),
        missing=secrets.missing - taken,
    )


def verify_password(secrets: Secrets, password: str) -> bool:
    """Check a plaintext password (web login, SASL PLAIN) against the Argon2 hash, or,
    for an account imported without one, against its imported SCRAM-SHA-1 keys."""
    try:
        prepared = saslprep(password)
        if Secret.PASSWORD not in secrets.missing:
            return _HASHER.verify(secrets.password_hash, prepared)
    except (VerificationError, InvalidHashError, ValueError):
        return False
    if Secret.SCRAM_SHA1 in secrets.missing:
        return False
    stored = secrets.scram_keys(ScramHash.SHA1)
    derived = derive_scram_keys(prepared, stored.salt, stored.iterations, ScramHash.SHA1)
    return hmac.compare_digest(derived.stored_key, stored.stored_key)
