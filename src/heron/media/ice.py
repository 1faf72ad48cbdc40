"""ICE-lite (RFC 8445 §2.5) with consent freshness (RFC 7675), sans-IO.

heron's WebRTC leg has one host candidate and never checks: it answers the
browser's Binding requests with short-term credentials (USERNAME
"ours:theirs", MESSAGE-INTEGRITY keyed with our password, FINGERPRINT) and
remembers which source addresses passed. Media goes to the nominated address
(USE-CANDIDATE), or before any nomination to the last one that passed; to no
address that never passed. A lite agent is always controlled (§6.1.1): a
request saying the peer is controlled too gets 487 Role Conflict, which tells
it to take control.

Consent (RFC 7675 §5.1): with no valid check from the selected address for
:data:`CONSENT_TIMEOUT` seconds, media stops going there.
"""

from __future__ import annotations

from ipaddress import ip_address

from heron.stun import (
    ErrorCode,
    IceControlled,
    Message,
    MessageClass,
    Method,
    StunError,
    UseCandidate,
    Username,
    XorMappedAddress,
)

__all__ = ["CONSENT_TIMEOUT", "MAX_CHECKED", "IceLite"]

CONSENT_TIMEOUT = 30.0
"""RFC 7675 §5.1: consent expires 30 seconds after the last check that passed."""
MAX_CHECKED = 16
"""Source addresses remembered per leg: a browser checks from a few candidates."""

Address = tuple[str, int]


class IceLite:
    """One WebRTC leg's ICE: answers checks, tells where media may go."""

    __slots__ = ("_key", "checked", "local_ufrag", "remote_ufrag", "selected")

    def __init__(self, local_ufrag: str, local_pwd: str, remote_ufrag: str = "") -> None:
        self.local_ufrag = local_ufrag
        self._key = local_pwd.encode()
        self.remote_ufrag = remote_ufrag
        """The peer's ufrag once its SDP is known; until then any is taken (its check may
        arrive before the answer that names it)."""
        self.checked: dict[Address, float] = {}
        """Source addresses whose last check passed, and when."""
        self.selected: Address | None = None

    def receive(self, data: bytes, source: Address, now: float) -> bytes | None:
        """The response to a Binding request that passes, else None (dropped)."""
        try:
            request = Message.decode(data)
        except StunError:
            return None
        if request.method != Method.BINDING or request.message_class is not MessageClass.REQUEST:
            return None
        username = request.find(Username)
        if username is None or not self._username_ok(username.value):
            return None
        if not request.verify_integrity(self._key):
            return None
        if request.find(IceControlled) is not None:
            error = request.error_response(ErrorCode.ROLE_CONFLICT)
            return error.encode(self._key, fingerprint=True)
        if len(self.checked) >= MAX_CHECKED and source not in self.checked:
            oldest = min(self.checked, key=self.checked.__getitem__)
            del self.checked[oldest]
            if oldest == self.selected:
                self.selected = None
        self.checked[source] = now
        if request.find(UseCandidate) is not None or self.selected is None:
            self.selected = source
        mapped = XorMappedAddress(ip_address(source[0]), source[1])
        return request.success_response([mapped]).encode(self._key, fingerprint=True)

    def _username_ok(self, value: str) -> bool:
        ours, colon, theirs = value.partition(":")
        if not colon or ours != self.local_ufrag:
            return False
        return not self.remote_ufrag or theirs == self.remote_ufrag

    def handle_timer(self, now: float) -> None:
        """Forget addresses whose consent expired; stop sending to the selected one."""
        for address, checked in list(self.checked.items()):
            if now - checked >= CONSENT_TIMEOUT:
                del self.checked[address]
        if self.selected is not None and self.selected not in self.checked:
            self.selected = max(self.checked, key=self.checked.__getitem__, default=None)
