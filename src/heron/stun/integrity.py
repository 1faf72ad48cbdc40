"""The three checksums of a STUN message (RFC 8489 §14.5-§14.7).

These functions only hash; ``message`` decides which bytes they cover (the
message up to the attribute, with the header length rewritten to end just after
it). Keys are bytes: deriving them (MD5 or SHA-256 of "username:realm:password",
RFC 8489 §9.2.2) belongs to the account service, not to the codec.
"""

import hashlib
import hmac
import zlib
from enum import Flag, auto

FINGERPRINT_XOR = 0x5354554E
"""XORed into the CRC so a STUN CRC differs from one another protocol computes (§14.7)."""


class Integrity(Flag):
    """Which integrity attributes a message carries, or should carry."""

    NONE = 0
    SHA1 = auto()  # MESSAGE-INTEGRITY, RFC 8489 §14.5
    SHA256 = auto()  # MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6


def hmac_sha1(key: bytes, covered: bytes) -> bytes:
    """MESSAGE-INTEGRITY value: HMAC-SHA1, 20 bytes (RFC 8489 §14.5)."""
    return hmac.digest(key, covered, hashlib.sha1)


def hmac_sha256(key: bytes, covered: bytes, length: int = 32) -> bytes:
    """MESSAGE-INTEGRITY-SHA256 value, truncated to ``length`` bytes (RFC 8489 §14.6)."""
    return hmac.digest(key, covered, hashlib.sha256)[:length]


def fingerprint_crc(covered: bytes) -> int:
    """FINGERPRINT value: CRC-32 of the message so far, XOR 0x5354554e (RFC 8489 §14.7)."""
    return zlib.crc32(covered) ^ FINGERPRINT_XOR
