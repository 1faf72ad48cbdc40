"""Peer connections of TCP allocations (RFC 6062), sans-IO.

A client asks for a connection to a peer with Connect (§5.2), or a peer
connects to the relay and the client hears a ConnectionAttempt (§5.3);
either way the connection gets a CONNECTION-ID, and the client has 30 s
to send ConnectionBind with it on a new TCP connection (§5.4), which from
then on carries that peer's data. The core decides; the server opens and
pipes the sockets (:mod:`heron.turn.transports.tcp_relay`).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address

from heron.stun import ConnectionId, ErrorCode, Message, MessageClass, Method, XorPeerAddress
from heron.turn.allocation import (
    CONNECTION_BIND_TIMEOUT,
    Address,
    Allocation,
    PeerConnection,
    Relay,
)
from heron.turn.replies import ConnectOrder, Refusal

__all__ = ["CONNECT_ALLOWANCE", "TcpConnections"]

CONNECT_ALLOWANCE = 30.0
"""Time a Connect may take to reach the peer before the bind deadline runs."""


class TcpConnections:
    """Every TCP allocation's relay and peer connections, found by relay and CONNECTION-ID."""

    def __init__(
        self, max_connections: int, max_permissions: int, connection_ids: Callable[[], int]
    ) -> None:
        self._max_connections = max_connections
        self._max_permissions = max_permissions
        self._connection_ids = connection_ids
        """CONNECTION-ID generator; the server passes a random one."""
        self._by_id: dict[int, Allocation] = {}
        self._by_relay: dict[Relay, Allocation] = {}

    def listen(self, relay: Relay, allocation: Allocation) -> None:
        """``allocation``'s relay takes peers' connections (§5.3)."""
        self._by_relay[relay] = allocation

    def connect(self, allocation: Allocation, peer: Address, now: float) -> int:
        """RFC 6062 §5.2: a new connection's id, once the peer policy allowed ``peer``."""
        if any(c.peer == peer for c in allocation.connections.values()):
            raise Refusal(ErrorCode.CONNECTION_ALREADY_EXISTS)
        if len(allocation.connections) >= self._max_connections or (
            peer[0] not in allocation.permissions
            and len(allocation.permissions) >= self._max_permissions
        ):
            raise Refusal(ErrorCode.FORBIDDEN)  # RFC 6062 §5.2: local policy
        # The bind deadline starts once the TCP connection is up (``connected``);
        # until then it covers the connection attempt too.
        connection = self._new(allocation, peer, now + CONNECT_ALLOWANCE)
        allocation.permit(peer[0], now)
        return connection

    def order(self, connection: int, failure: bytes) -> ConnectOrder:
        """What the server must do for the Connect that made ``connection``."""
        allocation = self._by_id[connection]
        relay = next(iter(allocation.relays.values()))
        return ConnectOrder(connection, relay, allocation.connections[connection].peer, failure)

    def bind(self, connection: int, username: str) -> None:
        """RFC 6062 §5.4: a new client connection takes over one peer connection's data."""
        allocation = self._by_id.get(connection)
        waiting = None if allocation is None else allocation.connections.get(connection)
        if allocation is None or waiting is None or waiting.bind_by is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        if allocation.username != username:
            raise Refusal(ErrorCode.WRONG_CREDENTIALS)
        waiting.bind_by = None

    def peer_connected(self, relay: Relay, peer: Address, now: float) -> int | None:
        """A peer connected to a TCP relay: its id, after telling the client (§5.3).

        None, and the server closes the connection, without a permission.
        """
        allocation = self._by_relay.get(relay)
        if allocation is None or allocation.permissions.get(peer[0], 0.0) < now:
            return None
        if len(allocation.connections) >= self._max_connections:
            return None
        connection = self._new(allocation, peer, now)
        attempt = Message(
            Method.CONNECTION_ATTEMPT,
            MessageClass.INDICATION,
            connection.to_bytes(4, "big") + bytes(8),
            (XorPeerAddress(ip_address(peer[0]), peer[1]), ConnectionId(connection)),
        )
        allocation.client.send(attempt.encode())
        return connection

    def connected(self, connection: int, now: float) -> bool:
        """The server's connection to the peer is up: the client has 30 s to bind (§5.2).

        False if the connection was forgotten meanwhile (allocation gone).
        """
        allocation = self._by_id.get(connection)
        if allocation is None:
            return False
        allocation.connections[connection].bind_by = now + CONNECTION_BIND_TIMEOUT
        return True

    def closed(self, connection: int) -> None:
        """Either side of a peer connection closed, or the connection failed."""
        allocation = self._by_id.pop(connection, None)
        if allocation is not None:
            allocation.connections.pop(connection, None)

    def unbound(self, allocation: Allocation, now: float) -> list[int]:
        """Forget ``allocation``'s connections left unbound past their deadline (§5.3)."""
        late = [
            c.id
            for c in allocation.connections.values()
            if c.bind_by is not None and c.bind_by < now
        ]
        for connection in late:
            self.closed(connection)
        return late

    def forget(self, allocation: Allocation) -> None:
        """``allocation`` ended: its connections and relay go with it."""
        for connection in list(allocation.connections):
            self.closed(connection)
        for relay in allocation.relays.values():
            self._by_relay.pop(relay, None)

    def _new(self, allocation: Allocation, peer: Address, start: float) -> int:
        """A connection whose ConnectionBind is due :data:`CONNECTION_BIND_TIMEOUT` after
        ``start``."""
        connection = self._connection_ids()
        while connection in self._by_id:
            connection = self._connection_ids()
        allocation.connections[connection] = PeerConnection(
            connection, peer, start + CONNECTION_BIND_TIMEOUT
        )
        self._by_id[connection] = allocation
        return connection
