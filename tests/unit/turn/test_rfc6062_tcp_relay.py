"""TCP relaying (RFC 6062): TCP Allocate, Connect, ConnectionBind, ConnectionAttempt, expiry.

The core only decides: a Connect yields a ``ConnectOrder`` for the server to carry out, a
ConnectionBind a connection id to pipe, and a peer reaching a TCP relay an id and a
ConnectionAttempt indication. (TCP Allocate over a UDP 5-tuple is in test_allocate.py.)
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from heron.stun import (
    AdditionalAddressFamily,
    AddressFamily,
    Attribute,
    ConnectionId,
    DontFragment,
    ErrorCode,
    EvenPort,
    Lifetime,
    Message,
    MessageClass,
    Method,
    RequestedAddressFamily,
    ReservationToken,
    XorMappedAddress,
    XorPeerAddress,
    XorRelayedAddress,
)
from heron.turn.allocation import CONNECTION_BIND_TIMEOUT, PERMISSION_LIFETIME, Address
from heron.turn.peers import PeerPolicy
from heron.turn.replies import ConnectOrder
from tests.unit.turn.harness import (
    PEER,
    PEER_2,
    PEER_6,
    FakeRelay,
    Turn,
    TurnClient,
    error_code,
)


def ok(reply: Message) -> bool:
    return reply.message_class is MessageClass.SUCCESS_RESPONSE


def control(turn: Turn, username: str = "alice", transport: str = "tcp") -> TurnClient:
    """A client on its own stream 5-tuple holding a TCP allocation."""
    client = turn.client(username, transport=transport)
    assert ok(client.allocate_tcp())
    return client


def tcp_relay(turn: Turn, client: TurnClient) -> FakeRelay:
    [relay] = turn.core.allocations[client.key].relays.values()
    assert isinstance(relay, FakeRelay) and relay.transport == "tcp"
    return relay


def connected(client: TurnClient, peer: Address = PEER) -> ConnectOrder:
    """Connect to ``peer``; the order the server is given (the reply must be a success)."""
    reply = client.connect(peer)
    assert ok(reply), reply
    assert client.reply is not None and client.reply.connect is not None
    return client.reply.connect


def pending(turn: Turn, client: TurnClient) -> dict[int, float | None]:
    """Connection id -> ConnectionBind deadline (None once bound) of the client's allocation."""
    allocation = turn.core.allocations[client.key]
    return {number: c.bind_by for number, c in allocation.connections.items()}


@pytest.fixture
def alice_tcp(turn: Turn) -> TurnClient:
    """alice on a TCP control connection, holding a TCP allocation."""
    return control(turn)


# --- §5.1 TCP Allocate -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_rfc6062_5_1_tcp_allocate_over_a_stream_relays_from_open_tcp(
    turn: Turn, transport: str
) -> None:
    client = turn.client("alice", transport=transport)

    reply = client.allocate_tcp()

    assert ok(reply) and reply.verify_integrity(client.long_term_key)
    [relay] = turn.relays.opened
    assert relay.transport == "tcp"
    assert turn.relays.tcp_calls == [4] and turn.relays.calls == []
    assert reply.find_all(XorRelayedAddress) == (
        XorRelayedAddress(ip_address(relay.address[0]), relay.address[1]),
    )
    assert reply.find(Lifetime) == Lifetime(600)
    assert reply.find(XorMappedAddress) == XorMappedAddress(
        ip_address(client.address[0]), client.address[1]
    )
    assert reply.find(ReservationToken) is None
    allocation = turn.core.allocations[client.key]
    assert allocation.tcp and allocation.relays == {4: relay}


def test_rfc6062_5_1_tcp_allocate_for_ipv6_opens_an_ipv6_listener() -> None:
    turn = Turn(versions=(4, 6))
    client = turn.client(transport="tcp")

    reply = client.allocate_tcp(RequestedAddressFamily(AddressFamily.IPV6))

    assert ok(reply)
    assert turn.relays.tcp_calls == [6]
    [relayed] = reply.find_all(XorRelayedAddress)
    assert relayed.address.version == 6
    assert turn.core.allocations[client.key].relays.keys() == {6}


@pytest.mark.parametrize(
    "attribute",
    [
        EvenPort(reserve=False),
        EvenPort(reserve=True),
        ReservationToken(bytes(range(8))),
        DontFragment(),
        AdditionalAddressFamily(AddressFamily.IPV6),
    ],
    ids=["even-port", "even-port-reserve", "reservation-token", "dont-fragment", "dual"],
)
def test_rfc6062_5_1_udp_only_attributes_on_a_tcp_allocate_are_400(
    attribute: Attribute,
) -> None:
    turn = Turn(versions=(4, 6))
    client = turn.client(transport="tcp")

    reply = client.allocate_tcp(attribute)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.relays.tcp_calls == [] and turn.relays.calls == []
    assert turn.core.allocations == {}


def test_rfc6062_5_1_no_tcp_relay_port_is_508(turn: Turn) -> None:
    turn.relays.full.add(4)
    client = turn.client(transport="tcp")

    reply = client.allocate_tcp()

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert turn.relays.tcp_calls == [4]
    assert turn.core.allocations == {}
    assert turn.core.counters.allocations_created == 0


def test_rfc6062_5_1_tcp_allocations_count_against_the_user_quota() -> None:
    turn = Turn(user_quota=1)
    control(turn)

    reply = turn.client("alice", transport="tls").allocate_tcp()

    assert error_code(reply) == ErrorCode.ALLOCATION_QUOTA_REACHED
    assert turn.relays.tcp_calls == [4]


# --- §5.2 Connect ----------------------------------------------------------------------------


def test_rfc6062_5_2_connect_without_an_allocation_is_437(turn: Turn) -> None:
    client = turn.client(transport="tcp")

    reply = client.connect(PEER)

    assert error_code(reply) == ErrorCode.ALLOCATION_MISMATCH
    assert client.reply is not None and client.reply.connect is None


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_rfc6062_5_2_connect_on_a_udp_allocation_is_400(turn: Turn, transport: str) -> None:
    client = turn.client(transport=transport)
    assert ok(client.allocate())

    reply = client.connect(PEER)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert client.reply is not None and client.reply.connect is None
    allocation = turn.core.allocations[client.key]
    assert allocation.permissions == {} and allocation.connections == {}


def test_rfc6062_5_2_connect_without_xor_peer_address_is_400(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    reply = alice_tcp.request(Method.CONNECT)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert alice_tcp.reply is not None and alice_tcp.reply.connect is None
    assert pending(turn, alice_tcp) == {}


def test_rfc6062_5_2_connect_to_a_denied_peer_is_403() -> None:
    turn = Turn(peers=PeerPolicy(denied=[ip_network("198.51.100.0/24")]))
    client = control(turn)

    reply = client.connect(PEER)

    assert error_code(reply) == ErrorCode.FORBIDDEN
    assert client.reply is not None and client.reply.connect is None
    assert turn.core.allocations[client.key].permissions == {}
    assert ok(client.connect(PEER_2))  # the policy, not the allocation, refused


def test_rfc6062_5_2_connect_to_the_other_family_is_443(turn: Turn, alice_tcp: TurnClient) -> None:
    reply = alice_tcp.connect(PEER_6)

    assert error_code(reply) == ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH
    assert alice_tcp.reply is not None and alice_tcp.reply.connect is None
    assert pending(turn, alice_tcp) == {}


def test_rfc6062_5_2_connect_success_orders_the_connection(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    reply = alice_tcp.connect(PEER)

    assert ok(reply) and reply.verify_integrity(alice_tcp.long_term_key)
    assert alice_tcp.reply is not None
    order = alice_tcp.reply.connect
    assert isinstance(order, ConnectOrder)
    assert alice_tcp.reply.bind is None
    assert reply.find(ConnectionId) == ConnectionId(order.connection_id)
    assert order.peer == PEER
    assert order.relay is tcp_relay(turn, alice_tcp)
    # The answer if the TCP connection cannot be made: a signed 447 to this very request.
    failure = Message.decode(order.failure)
    assert (failure.method, failure.message_class) == (Method.CONNECT, MessageClass.ERROR_RESPONSE)
    assert failure.transaction_id == reply.transaction_id
    assert error_code(failure) == ErrorCode.CONNECTION_TIMEOUT_OR_FAILURE
    assert failure.verify_integrity(alice_tcp.long_term_key)
    assert failure.find(ConnectionId) is None
    allocation = turn.core.allocations[alice_tcp.key]
    assert allocation.permissions == {PEER[0]: turn.now + PERMISSION_LIFETIME}
    assert pending(turn, alice_tcp) == {order.connection_id: turn.now + CONNECTION_BIND_TIMEOUT}


def test_rfc6062_5_2_second_connect_to_the_same_peer_is_446(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    first = connected(alice_tcp)

    reply = alice_tcp.connect(PEER)

    assert error_code(reply) == ErrorCode.CONNECTION_ALREADY_EXISTS
    assert alice_tcp.reply is not None and alice_tcp.reply.connect is None
    assert list(pending(turn, alice_tcp)) == [first.connection_id]
    # Another port of the same host is another peer.
    other = connected(alice_tcp, (PEER[0], PEER[1] + 1))
    assert other.connection_id != first.connection_id


def test_rfc6062_5_2_connect_to_a_peer_that_connected_in_is_446(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    alice_tcp.permit(PEER)
    incoming = turn.core.peer_connected(tcp_relay(turn, alice_tcp), PEER, turn.now)
    assert incoming is not None

    reply = alice_tcp.connect(PEER)

    assert error_code(reply) == ErrorCode.CONNECTION_ALREADY_EXISTS
    assert list(pending(turn, alice_tcp)) == [incoming]


def test_rfc6062_5_2_connect_again_after_the_connection_closed(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    first = connected(alice_tcp)
    turn.core.connection_closed(first.connection_id)
    assert pending(turn, alice_tcp) == {}

    again = connected(alice_tcp)

    assert again.connection_id != first.connection_id
    assert again.peer == PEER
    assert list(pending(turn, alice_tcp)) == [again.connection_id]


def test_rfc6062_5_2_failed_connect_frees_the_peer_for_another_try(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    # What the server does when the TCP connection fails: forget it, send the 447.
    first = connected(alice_tcp)
    turn.core.connection_closed(first.connection_id)
    turn.core.connection_closed(first.connection_id)  # a second close changes nothing

    assert ok(alice_tcp.connect(PEER))


def test_rfc6062_5_2_connection_ids_are_unique_even_if_the_generator_repeats() -> None:
    ids = iter([7, 7, 7, 9])
    turn = Turn(connection_ids=lambda: next(ids))
    client = control(turn)

    first, second = connected(client, PEER), connected(client, PEER_2)

    assert (first.connection_id, second.connection_id) == (7, 9)


def test_rfc6062_5_2_connect_respects_the_permission_cap() -> None:
    # CreatePermission and ChannelBind refuse a permission past max_permissions; a Connect
    # installs one too (RFC 6062 §5.2), so it must not be a way around the cap. Past a local
    # limit RFC 6062 §5.2 answers 403: "If the new connection is forbidden by local policy".
    turn = Turn(max_permissions=1)
    client = control(turn)
    assert ok(client.permit(PEER))

    reply = client.connect(PEER_2)

    assert error_code(reply) in (ErrorCode.FORBIDDEN, ErrorCode.INSUFFICIENT_CAPACITY)
    assert client.reply is not None and client.reply.connect is None
    assert list(turn.core.allocations[client.key].permissions) == [PEER[0]]


# --- §5.4 ConnectionBind ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_rfc6062_5_4_connection_bind_on_a_new_connection_binds(
    turn: Turn, alice_tcp: TurnClient, transport: str
) -> None:
    order = connected(alice_tcp)
    data = turn.client("alice", transport=transport)

    reply = data.connection_bind(order.connection_id)

    assert ok(reply) and reply.verify_integrity(data.long_term_key)
    assert reply.method == Method.CONNECTION_BIND
    assert data.reply is not None
    assert data.reply.bind == order.connection_id and data.reply.connect is None
    assert pending(turn, alice_tcp) == {order.connection_id: None}
    assert data.key not in turn.core.allocations  # a data connection holds no allocation


def test_rfc6062_5_4_connection_bind_for_an_unknown_id_is_400(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    order = connected(alice_tcp)
    data = turn.client("alice", transport="tcp")

    reply = data.connection_bind(order.connection_id + 1)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert data.reply is not None and data.reply.bind is None
    assert pending(turn, alice_tcp) == {order.connection_id: turn.now + CONNECTION_BIND_TIMEOUT}


def test_rfc6062_5_4_connection_bind_without_connection_id_is_400(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    connected(alice_tcp)
    data = turn.client("alice", transport="tcp")

    reply = data.request(Method.CONNECTION_BIND)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert data.reply is not None and data.reply.bind is None


def test_rfc6062_5_4_connection_bind_twice_is_400(turn: Turn, alice_tcp: TurnClient) -> None:
    order = connected(alice_tcp)
    assert ok(turn.client("alice", transport="tcp").connection_bind(order.connection_id))
    late = turn.client("alice", transport="tcp")

    reply = late.connection_bind(order.connection_id)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert late.reply is not None and late.reply.bind is None


def test_rfc6062_5_4_connection_bind_on_the_control_connection_is_400(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    order = connected(alice_tcp)

    reply = alice_tcp.connection_bind(order.connection_id)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert alice_tcp.reply is not None and alice_tcp.reply.bind is None
    assert pending(turn, alice_tcp) == {order.connection_id: turn.now + CONNECTION_BIND_TIMEOUT}
    assert ok(turn.client("alice", transport="tcp").connection_bind(order.connection_id))


def test_rfc6062_5_4_connection_bind_with_another_users_credentials_is_441(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    order = connected(alice_tcp)
    mallory = turn.client("bob", transport="tcp")

    reply = mallory.connection_bind(order.connection_id)

    assert error_code(reply) == ErrorCode.WRONG_CREDENTIALS
    assert mallory.reply is not None and mallory.reply.bind is None
    assert pending(turn, alice_tcp) == {order.connection_id: turn.now + CONNECTION_BIND_TIMEOUT}
    assert ok(turn.client("alice", transport="tcp").connection_bind(order.connection_id))


def test_rfc6062_5_4_connection_bind_over_udp_is_400(turn: Turn, alice_tcp: TurnClient) -> None:
    order = connected(alice_tcp)
    data = turn.client("alice", transport="udp")

    reply = data.connection_bind(order.connection_id)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert data.reply is not None and data.reply.bind is None
    assert pending(turn, alice_tcp) == {order.connection_id: turn.now + CONNECTION_BIND_TIMEOUT}


# --- §5.3 a peer connects to the relay -------------------------------------------------------


def test_rfc6062_5_3_peer_without_permission_is_refused(turn: Turn, alice_tcp: TurnClient) -> None:
    alice_tcp.permit(PEER_2)

    connection = turn.core.peer_connected(tcp_relay(turn, alice_tcp), PEER, turn.now)

    assert connection is None
    assert alice_tcp.received() == []
    assert pending(turn, alice_tcp) == {}


def test_rfc6062_5_3_peer_whose_permission_expired_is_refused(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    alice_tcp.permit(PEER)
    turn.advance(PERMISSION_LIFETIME + 1)

    connection = turn.core.peer_connected(tcp_relay(turn, alice_tcp), PEER, turn.now)

    assert connection is None
    assert alice_tcp.received() == []


def test_rfc6062_5_3_permitted_peer_gets_an_id_and_the_client_a_connection_attempt(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    alice_tcp.permit(PEER)
    peer: Address = (PEER[0], 61000)  # permissions are by IP; the peer's port is its own

    connection = turn.core.peer_connected(tcp_relay(turn, alice_tcp), peer, turn.now)

    assert connection is not None
    [sent] = alice_tcp.received()
    attempt = Message.decode(sent)
    assert (attempt.method, attempt.message_class) == (
        Method.CONNECTION_ATTEMPT,
        MessageClass.INDICATION,
    )
    assert attempt.find(XorPeerAddress) == XorPeerAddress(ip_address(peer[0]), peer[1])
    assert attempt.find(ConnectionId) == ConnectionId(connection)
    assert pending(turn, alice_tcp) == {connection: turn.now + CONNECTION_BIND_TIMEOUT}
    data = turn.client("alice", transport="tcp")
    assert ok(data.connection_bind(connection))
    assert data.reply is not None and data.reply.bind == connection


def test_rfc6062_5_3_two_peers_get_two_ids(turn: Turn, alice_tcp: TurnClient) -> None:
    alice_tcp.permit(PEER, PEER_2)
    relay = tcp_relay(turn, alice_tcp)

    first = turn.core.peer_connected(relay, PEER, turn.now)
    second = turn.core.peer_connected(relay, PEER_2, turn.now)

    assert first is not None and second is not None and first != second
    ids = [Message.decode(sent).find(ConnectionId) for sent in alice_tcp.received()]
    assert ids == [ConnectionId(first), ConnectionId(second)]


def test_rfc6062_5_3_udp_relay_or_deleted_allocation_takes_no_peer(turn: Turn) -> None:
    udp_allocation = turn.client(transport="tcp")
    assert ok(udp_allocation.allocate())
    udp_allocation.permit(PEER)
    tcp = control(turn)
    tcp.permit(PEER)
    relay = tcp_relay(turn, tcp)
    assert ok(tcp.refresh(0))

    assert turn.core.peer_connected(turn.relays.opened[0], PEER, turn.now) is None
    assert turn.core.peer_connected(relay, PEER, turn.now) is None
    assert udp_allocation.received() == [] and tcp.received() == []


# --- §5.3 the 30-second bind deadline, and deletion -----------------------------------------


def test_rfc6062_5_3_unbound_connection_is_given_up_after_30_seconds(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    order = connected(alice_tcp)
    turn.advance(CONNECTION_BIND_TIMEOUT)
    assert turn.expire() == []  # 30 s exactly: still waiting

    turn.advance(0.5)
    given_up = turn.expire()

    assert given_up == [order.connection_id]
    assert pending(turn, alice_tcp) == {}
    assert turn.expire() == []  # reported once
    late = turn.client("alice", transport="tcp")
    assert error_code(late.connection_bind(order.connection_id)) == ErrorCode.BAD_REQUEST
    assert ok(alice_tcp.connect(PEER))  # no longer "already exists"


def test_rfc6062_5_3_unbound_incoming_connection_is_given_up_too(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    alice_tcp.permit(PEER)
    incoming = turn.core.peer_connected(tcp_relay(turn, alice_tcp), PEER, turn.now)
    turn.advance(CONNECTION_BIND_TIMEOUT + 1)

    assert turn.expire() == [incoming]
    assert pending(turn, alice_tcp) == {}


def test_rfc6062_5_3_bound_connection_outlives_the_deadline(
    turn: Turn, alice_tcp: TurnClient
) -> None:
    bound, unbound = connected(alice_tcp, PEER), connected(alice_tcp, PEER_2)
    turn.advance(10)
    assert ok(turn.client("alice", transport="tcp").connection_bind(bound.connection_id))
    turn.advance(CONNECTION_BIND_TIMEOUT * 4)

    assert turn.expire() == [unbound.connection_id]
    assert pending(turn, alice_tcp) == {bound.connection_id: None}
    assert error_code(alice_tcp.connect(PEER)) == ErrorCode.CONNECTION_ALREADY_EXISTS


@pytest.mark.parametrize("how", ["refresh-0", "close-client", "expiry"])
def test_rfc6062_5_5_deleting_the_allocation_forgets_its_connections(
    turn: Turn, alice_tcp: TurnClient, how: str
) -> None:
    bound, unbound = connected(alice_tcp, PEER), connected(alice_tcp, PEER_2)
    assert ok(turn.client("alice", transport="tcp").connection_bind(bound.connection_id))
    relay = tcp_relay(turn, alice_tcp)

    if how == "refresh-0":
        assert ok(alice_tcp.refresh(0))
    elif how == "close-client":
        turn.core.close_client(alice_tcp.key)
    else:
        turn.advance(601)
        turn.expire()

    assert alice_tcp.key not in turn.core.allocations
    assert relay.closed  # closing the listener closes its peer connections in the server
    for connection in (bound, unbound):
        data = turn.client("alice", transport="tcp")
        assert error_code(data.connection_bind(connection.connection_id)) == ErrorCode.BAD_REQUEST
    turn.advance(CONNECTION_BIND_TIMEOUT + 1)
    assert turn.expire() == []
