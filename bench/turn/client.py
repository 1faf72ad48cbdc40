"""A small blocking TURN client over UDP, built on heron's sans-IO STUN codec.

The relay load needs hundreds of allocations whose sockets it then drives
itself with raw ``send``/``recv``; aioice hides its sockets behind asyncio and
costs far more client CPU per packet. This client only does what the load
needs: Allocate with long-term credentials (RFC 8656 §7.1, RFC 8489 §9.2),
ChannelBind (§12.1, which also installs the permission), and Refresh with
LIFETIME 0 to release (§7.3). Retransmission is a plain bounded retry, enough
on loopback.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from ipaddress import IPv4Address

from heron.stun import (
    Attribute,
    ChannelNumber,
    ErrorCode,
    ErrorCodeAttribute,
    Lifetime,
    Message,
    MessageClass,
    Method,
    Nonce,
    Realm,
    RequestedTransport,
    StunError,
    Username,
    XorPeerAddress,
    XorRelayedAddress,
)

__all__ = ["TurnError", "UdpTurnClient", "answers_binding"]

Address = tuple[str, int]


class TurnError(Exception):
    """The server refused a request (``code`` is its ERROR-CODE) or never answered (0)."""

    def __init__(self, method: Method, code: int, reason: str) -> None:
        super().__init__(f"{method.name}: {code} {reason}".strip())
        self.code = code


def _wait_response(sock: socket.socket, transaction_id: bytes, timeout: float) -> Message | None:
    """The response to ``transaction_id``, skipping anything else (ChannelData, late answers)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(2048)
        except (TimeoutError, ConnectionRefusedError):
            return None
        if len(data) < 20 or data[8:20] != transaction_id:
            continue
        try:
            return Message.decode(data)
        except StunError:
            continue
    return None


def answers_binding(server: Address, timeout: float = 0.3) -> bool:
    """True once something answers a STUN Binding request on ``server`` (readiness probe)."""
    request = Message(Method.BINDING, MessageClass.REQUEST, os.urandom(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(server)
        sock.send(request.encode(fingerprint=True))
        return _wait_response(sock, request.transaction_id, timeout) is not None


class UdpTurnClient:
    """One allocation on one connected UDP socket from 127.0.0.1."""

    def __init__(
        self,
        server: Address,
        username: str,
        password: str,
        *,
        timeout: float = 0.5,
        attempts: int = 4,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(server)
        self.username, self.password = username, password
        self.timeout, self.attempts = timeout, attempts
        self.realm: str | None = None
        self.nonce: str | None = None
        self.key: bytes | None = None
        self.relayed: Address | None = None

    def _send_once(self, method: Method, attributes: list[Attribute]) -> Message:
        """One transaction with retransmissions; the current credentials if we have them."""
        auth: list[Attribute] = []
        if self.key is not None and self.realm is not None and self.nonce is not None:
            auth = [Username(self.username), Realm(self.realm), Nonce(self.nonce)]
        request = Message(method, MessageClass.REQUEST, os.urandom(12), (*attributes, *auth))
        wire = request.encode(self.key, fingerprint=True)
        for _ in range(self.attempts):
            self.sock.send(wire)
            response = _wait_response(self.sock, request.transaction_id, self.timeout)
            if response is not None:
                return response
        raise TurnError(method, 0, f"no answer after {self.attempts} tries")

    def _learn(self, response: Message) -> bool:
        """Take realm and nonce from a 401 or 438 (RFC 8489 §9.2.4); True if worth a retry."""
        error = response.find(ErrorCodeAttribute)
        realm, nonce = response.find(Realm), response.find(Nonce)
        if error is None or nonce is None:
            return False
        if error.code == ErrorCode.UNAUTHORIZED and realm is not None and self.key is None:
            self.realm = realm.value
            credentials = f"{self.username}:{self.realm}:{self.password}"
            self.key = hashlib.md5(credentials.encode()).digest()
        elif error.code != ErrorCode.STALE_NONCE or self.key is None:
            return False
        self.nonce = nonce.value
        return True

    def request(self, method: Method, attributes: list[Attribute]) -> Message:
        """A request answered with success, after at most two credential challenges."""
        for _ in range(3):
            response = self._send_once(method, attributes)
            if response.message_class is MessageClass.SUCCESS_RESPONSE:
                return response
            if not self._learn(response):
                error = response.find(ErrorCodeAttribute)
                raise TurnError(
                    method, error.code if error else 0, error.reason if error else "error"
                )
        raise TurnError(method, 401, "credentials refused")

    def allocate(self, lifetime: int = 600) -> Address:
        response = self.request(Method.ALLOCATE, [RequestedTransport(), Lifetime(lifetime)])
        relayed = response.find(XorRelayedAddress)
        if relayed is None:
            raise TurnError(Method.ALLOCATE, 0, "no XOR-RELAYED-ADDRESS in the answer")
        self.relayed = (str(relayed.address), relayed.port)
        return self.relayed

    def bind_channel(self, channel: int, peer: Address) -> None:
        peer_attribute = XorPeerAddress(IPv4Address(peer[0]), peer[1])
        self.request(Method.CHANNEL_BIND, [ChannelNumber(channel), peer_attribute])

    def release(self) -> None:
        """Refresh with LIFETIME 0; failures are ignored, the allocation then just expires."""
        try:
            self.request(Method.REFRESH, [Lifetime(0)])
        except (TurnError, OSError):
            pass

    def close(self) -> None:
        self.sock.close()
