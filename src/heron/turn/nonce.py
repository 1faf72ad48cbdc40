"""Stateless nonces for the long-term credential mechanism (RFC 8489 §9.2).

A nonce is the RFC 8489 cookie ``obMatJos2`` with the server's security
feature bits, then its expiry and an HMAC over expiry and client address.
The server keeps no per-client state, nonces cannot be carried to another
address, and an expired one earns 438 Stale Nonce so the client retries.
"""

from __future__ import annotations

import base64
import hmac
import struct
from enum import Enum

__all__ = ["NONCE_COOKIE", "NonceIssuer", "NonceState"]

NONCE_COOKIE = "obMatJos2"
"""RFC 8489 §9.2: nonces starting with this carry the security feature set."""

_FEATURES = base64.b64encode(b"\x80\x00\x00").decode()
"""Bit 0, "Password algorithms" (RFC 8489 §18.1): heron offers SHA-256."""

_PREFIX = NONCE_COOKIE + _FEATURES
_MAC_SIZE = 12


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"
    INVALID = "invalid"


class NonceIssuer:
    def __init__(self, secret: bytes, lifetime: float = 600.0) -> None:
        self._secret = secret
        self._lifetime = lifetime

    def _mac(self, expiry: bytes, client_ip: str) -> bytes:
        return hmac.digest(self._secret, expiry + client_ip.encode(), "sha256")[:_MAC_SIZE]

    def issue(self, client_ip: str, now: float) -> str:
        """The client's current nonce: the same one for a while, then a fresh one.

        Clients such as coturn's take a changed nonce in a 401 for a stale one
        and retry at once, so a wrong password would loop; within one step of
        ``lifetime / 2`` heron hands out the same nonce, valid for at least
        ``lifetime``.
        """
        step = max(int(self._lifetime // 2), 1)
        expiry = struct.pack("!Q", (int(now) // step + 3) * step)
        token = base64.urlsafe_b64encode(expiry + self._mac(expiry, client_ip)).decode()
        return _PREFIX + token

    def check(self, nonce: str, client_ip: str, now: float) -> NonceState:
        if not nonce.startswith(_PREFIX):
            return NonceState.INVALID
        try:
            raw = base64.urlsafe_b64decode(nonce[len(_PREFIX) :])
        except ValueError:
            return NonceState.INVALID
        if len(raw) != 8 + _MAC_SIZE:
            return NonceState.INVALID
        expiry, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(expiry, client_ip)):
            return NonceState.INVALID
        if struct.unpack("!Q", expiry)[0] < now:
            return NonceState.STALE
        return NonceState.VALID

    @staticmethod
    def offers_password_algorithms(nonce: str) -> bool:
        return nonce.startswith(_PREFIX)
