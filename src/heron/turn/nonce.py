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
from typing import Any

__all__ = ["NONCE_COOKIE", "NonceIssuer", "NonceState"]

NONCE_COOKIE = "obMatJos2"
"""RFC 8489 §9.2: nonces starting with this carry the security feature set."""

_FEATURES = base64.b64encode(b"\x80\x00\x00").decode()
"""Bit 0, "Password algorithms" (RFC 8489 §18.1): heron offers SHA-256."""

_PREFIX = NONCE_COOKIE + _FEATURES
_MAC_SIZE = 12
_REMEMBERED = 10_000
"""Nonces an issuer remembers having issued or verified (beyond, it forgets them all)."""


class NonceState(Enum):
    VALID = "valid"
    STALE = "stale"
    INVALID = "invalid"


class NonceIssuer:
    """Issues and checks nonces; remembers the ones it made or verified.

    A client's allocation takes a 401 and two signed requests on the same nonce,
    each an HMAC and a base64 round to compute again; a nonce whose MAC checked
    once maps to its expiry, and a (client, period) to the nonce issued for it.
    Only nonces with a valid MAC are remembered, so made-up ones cost what they
    did and cannot fill the table with anything a client could not get anyway.
    """

    def __init__(self, secret: bytes, lifetime: float = 600.0) -> None:
        self._secret = secret
        self._lifetime = lifetime
        self._step = max(int(lifetime // 2), 1)
        self._issued: dict[tuple[str, int], str] = {}
        """(client address, period) -> the nonce ``issue`` gives for it."""
        self._expiry: dict[tuple[str, str], int] = {}
        """(nonce, client address) -> its expiry, for nonces whose MAC checked."""

    def _mac(self, expiry: bytes, client_ip: str) -> bytes:
        return hmac.digest(self._secret, expiry + client_ip.encode(), "sha256")[:_MAC_SIZE]

    def issue(self, client_ip: str, now: float) -> str:
        """The client's current nonce: the same one for a while, then a fresh one.

        Clients such as coturn's take a changed nonce in a 401 for a stale one
        and retry at once, so a wrong password would loop; within one step of
        ``lifetime / 2`` heron hands out the same nonce, valid for at least
        ``lifetime``.
        """
        period = int(now) // self._step
        nonce = self._issued.get((client_ip, period))
        if nonce is None:
            expiry = struct.pack("!Q", (period + 3) * self._step)
            token = base64.urlsafe_b64encode(expiry + self._mac(expiry, client_ip)).decode()
            nonce = _PREFIX + token
            _remember(self._issued, (client_ip, period), nonce)
        return nonce

    def check(self, nonce: str, client_ip: str, now: float) -> NonceState:
        expiry = self._expiry.get((nonce, client_ip))
        if expiry is None:
            expiry = self._verify(nonce, client_ip)
            if expiry is None:
                return NonceState.INVALID
            _remember(self._expiry, (nonce, client_ip), expiry)
        return NonceState.STALE if expiry < now else NonceState.VALID

    def _verify(self, nonce: str, client_ip: str) -> int | None:
        """The nonce's expiry if we made it for ``client_ip``; else None."""
        if not nonce.startswith(_PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce[len(_PREFIX) :])
        except ValueError:
            return None
        if len(raw) != 8 + _MAC_SIZE:
            return None
        expiry, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(expiry, client_ip)):
            return None
        value: int = struct.unpack("!Q", expiry)[0]
        return value

    @staticmethod
    def offers_password_algorithms(nonce: str) -> bool:
        return nonce.startswith(_PREFIX)


def _remember(table: dict[tuple[str, Any], Any], key: tuple[str, Any], value: Any) -> None:
    if len(table) >= _REMEMBERED:
        table.clear()
    table[key] = value
