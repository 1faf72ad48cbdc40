"""CreatePermission (RFC 8656 §9-10), ChannelBind and ChannelData (§12), Send/Data (§11)."""

from __future__ import annotations

import struct
from ipaddress import ip_network

import pytest

from heron.stun import (
    AdditionalAddressFamily,
    Attribute,
    ChannelData,
    ChannelNumber,
    Data,
    ErrorCode,
    Message,
    MessageClass,
    MessageIntegrity,
    Method,
    StunRemoteError,
    UnknownAttribute,
    XorPeerAddress,
)
from heron.turn.peers import PeerPolicy
from tests.unit.turn.harness import (
    PEER,
    PEER_2,
    PEER_6,
    FakeRelay,
    Turn,
    TurnClient,
    channel_header,
    error_code,
    peer_attribute,
)


def ok(reply: Message) -> bool:
    return reply.message_class is MessageClass.SUCCESS_RESPONSE


@pytest.fixture
def relay(turn: Turn, alice: TurnClient) -> FakeRelay:
    """alice's allocation, long-lived so that permission and channel timers are what expire."""
    assert ok(alice.allocate(lifetime=3600))
    return turn.relays.opened[0]


@pytest.fixture
def dual() -> tuple[Turn, TurnClient]:
    """A server with IPv4 and IPv6 relays and a client holding both."""
    turn = Turn(versions=(4, 6))
    client = turn.client()
    assert ok(client.allocate(AdditionalAddressFamily(), lifetime=3600))
    return turn, client


# --- CreatePermission ---------------------------------------------------------------------


def test_rfc8656_10_2_several_peers_in_one_request(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    reply = alice.permit(PEER, PEER_2)
    relay.from_peer(b"one", PEER, turn.now)
    relay.from_peer(b"two", PEER_2, turn.now)

    assert ok(reply) and reply.verify_integrity(alice.long_term_key)
    assert alice.data_indications() == [(PEER, b"one"), (PEER_2, b"two")]


def test_rfc8656_10_2_without_peer_address_is_400(alice: TurnClient, relay: FakeRelay) -> None:
    assert error_code(alice.request(Method.CREATE_PERMISSION)) == ErrorCode.BAD_REQUEST


def test_rfc8656_10_2_without_allocation_is_437(alice: TurnClient) -> None:
    assert error_code(alice.permit(PEER)) == ErrorCode.ALLOCATION_MISMATCH


def test_rfc8656_10_2_permission_is_per_ip_not_per_port(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)

    relay.from_peer(b"other port", (PEER[0], 9999), turn.now)

    assert alice.data_indications() == [((PEER[0], 9999), b"other port")]


FORBIDDEN_PEERS = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::a00:1", "2002:c0a8:101::1",
]  # fmt: skip


@pytest.mark.parametrize("host", FORBIDDEN_PEERS)
def test_rfc8656_21_3_private_and_loopback_peers_are_403(
    dual: tuple[Turn, TurnClient], host: str
) -> None:
    turn, client = dual

    reply = client.permit((host, 5000))

    assert error_code(reply) == ErrorCode.FORBIDDEN
    assert turn.core.allocations[client.key].permissions == {}


def test_rfc8656_21_3_allowed_range_opens_private_peers() -> None:
    turn = Turn(peers=PeerPolicy(allowed=[ip_network("10.0.0.0/8")]))
    client = turn.client()
    client.allocate()

    assert ok(client.permit(("10.1.2.3", 5000)))
    assert error_code(client.permit(("192.168.1.1", 5000))) == ErrorCode.FORBIDDEN


def test_rfc8656_10_2_one_forbidden_peer_refuses_the_whole_request(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    reply = alice.permit(PEER, ("127.0.0.1", 5000))
    relay.from_peer(b"x", PEER, turn.now)

    assert error_code(reply) == ErrorCode.FORBIDDEN
    assert alice.received() == []  # PEER got no permission either


def test_rfc8656_10_2_peer_family_mismatch_is_443(alice: TurnClient, relay: FakeRelay) -> None:
    assert error_code(alice.permit(PEER_6)) == ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH


def test_rfc6156_dual_allocation_permits_both_families(dual: tuple[Turn, TurnClient]) -> None:
    turn, client = dual

    assert ok(client.permit(PEER, PEER_6))


def test_rfc8656_10_2_permission_cap_is_508() -> None:
    turn = Turn(max_permissions=2)
    client = turn.client()
    client.allocate()
    client.permit(PEER, PEER_2)

    assert error_code(client.permit(("198.51.100.99", 1))) == ErrorCode.INSUFFICIENT_CAPACITY
    assert ok(client.permit(PEER))  # refreshing an existing one needs no room
    assert len(turn.core.allocations[client.key].permissions) == 2


def test_rfc8656_10_2_cap_counts_the_new_peers_of_one_request() -> None:
    turn = Turn(max_permissions=2)
    client = turn.client()
    client.allocate()

    reply = client.permit(PEER, PEER_2, ("198.51.100.99", 1))

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert turn.core.allocations[client.key].permissions == {}


def test_rfc8656_9_permission_lasts_300_seconds(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)
    start = turn.now
    relay.from_peer(b"in time", PEER, start + 300)

    relay.from_peer(b"too late", PEER, start + 300.5)
    turn.now = start + 301
    turn.expire()
    relay.from_peer(b"after sweep", PEER, turn.now)

    assert alice.data_indications() == [(PEER, b"in time")]
    assert turn.core.allocations[alice.key].traffic.dropped == 2
    assert turn.core.allocations[alice.key].permissions == {}


def test_rfc8656_9_createpermission_refreshes_a_permission(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)
    turn.advance(200)
    alice.permit(PEER)
    turn.advance(200)  # 400 s after the first, 200 s after the refresh

    alice.send_indication(PEER, b"still allowed")

    assert relay.sent == [(b"still allowed", PEER)]


# --- Send and Data indications (RFC 8656 §11) ----------------------------------------------------


def test_rfc8656_11_2_send_without_permission_is_dropped(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.send_indication(PEER, b"nope")

    assert relay.sent == []
    assert turn.core.traffic().dropped == 1


def test_rfc8656_11_2_send_with_permission_is_relayed(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)

    alice.send_indication(PEER, b"hello peer")

    assert relay.sent == [(b"hello peer", PEER)]
    traffic = turn.core.traffic()
    assert (traffic.packets_to_peer, traffic.bytes_to_peer) == (1, 10)


@pytest.mark.parametrize(
    "attributes",
    [(Data(b"x"),), (peer_attribute(PEER),), ()],
    ids=["no-peer", "no-data", "empty"],
)
def test_rfc8656_11_2_send_missing_peer_or_data_is_dropped(
    alice: TurnClient, relay: FakeRelay, attributes: tuple[Attribute, ...]
) -> None:
    alice.permit(PEER)
    wire = alice.build(
        Method.SEND,
        attributes,
        sign=False,
        message_class=MessageClass.INDICATION,
    )

    assert alice.send_raw(wire) is None
    assert relay.sent == []


def test_rfc8656_11_2_send_without_allocation_is_ignored(turn: Turn, alice: TurnClient) -> None:
    alice.send_indication(PEER, b"x")

    assert turn.relays.opened == [] and turn.core.allocations == {}


def test_rfc8656_11_3_data_indication_carries_peer_and_data(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)

    relay.from_peer(b"\x00\xffpayload", PEER, turn.now)

    [frame] = alice.received()
    message = Message.decode(frame)
    assert (message.method, message.message_class) == (Method.DATA, MessageClass.INDICATION)
    assert message.find(XorPeerAddress) == peer_attribute(PEER)
    assert message.find(Data) == Data(b"\x00\xffpayload")
    assert message.find(MessageIntegrity) is None


def test_rfc8656_11_3_data_indication_transaction_ids_differ(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.permit(PEER)

    relay.from_peer(b"same", PEER, turn.now)
    relay.from_peer(b"same", PEER, turn.now)

    first, second = (Message.decode(frame) for frame in alice.received())
    assert first.transaction_id != second.transaction_id


def test_rfc6156_send_goes_out_the_relay_of_the_peers_family(
    dual: tuple[Turn, TurnClient],
) -> None:
    turn, client = dual
    v4, v6 = turn.relays.opened
    client.permit(PEER, PEER_6)

    client.send_indication(PEER, b"four")
    client.send_indication(PEER_6, b"six")

    assert v4.sent == [(b"four", PEER)]
    assert v6.sent == [(b"six", PEER_6)]


# --- ChannelBind and ChannelData (RFC 8656 §12) --------------------------------------------------


def test_rfc8656_12_channel_data_is_relayed_to_the_bound_peer(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    reply = alice.bind(0x4000, PEER)

    alice.channel_data(0x4000, b"via channel")

    assert ok(reply) and reply.verify_integrity(alice.long_term_key)
    assert relay.sent == [(b"via channel", PEER)]
    assert turn.core.traffic().bytes_to_peer == len(b"via channel")


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_rfc8656_12_5_stream_client_sends_padded_channel_data(turn: Turn, transport: str) -> None:
    client = turn.client(transport=transport)
    client.allocate()
    client.bind(0x4001, PEER)

    client.channel_data(0x4001, b"12345")  # padded to 12 bytes on the wire

    assert turn.relays.opened[0].sent == [(b"12345", PEER)]


def test_rfc8656_12_peer_data_comes_back_as_channel_data_on_udp(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4ABC, PEER)

    relay.from_peer(b"12345", PEER, turn.now)

    assert alice.received() == [channel_header(0x4ABC, 5) + b"12345"]


@pytest.mark.parametrize(("size", "padding"), [(4, 0), (5, 3), (6, 2), (7, 1), (0, 0)])
def test_rfc8656_12_5_channel_data_to_a_stream_client_is_padded(
    turn: Turn, size: int, padding: int
) -> None:
    client = turn.client(transport="tcp")
    client.allocate()
    client.bind(0x4000, PEER)
    payload = bytes(range(1, size + 1))

    turn.relays.opened[0].from_peer(payload, PEER, turn.now)

    [frame] = client.received()
    assert frame == channel_header(0x4000, size) + payload + bytes(padding)
    assert ChannelData.decode(frame) == ChannelData(0x4000, payload)


def test_rfc8656_12_peer_without_channel_still_gets_data_indications(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)
    alice.permit(PEER_2)

    relay.from_peer(b"unbound", PEER_2, turn.now)
    relay.from_peer(b"other port", (PEER[0], PEER[1] + 1), turn.now)

    assert alice.data_indications() == [
        (PEER_2, b"unbound"),
        ((PEER[0], PEER[1] + 1), b"other port"),
    ]


def test_rfc8656_12_2_channel_bound_to_another_peer_is_400(
    alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)

    assert error_code(alice.bind(0x4000, PEER_2)) == ErrorCode.BAD_REQUEST
    assert error_code(alice.bind(0x4000, (PEER[0], PEER[1] + 1))) == ErrorCode.BAD_REQUEST


def test_rfc8656_12_2_peer_bound_to_another_channel_is_400(
    alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)

    assert error_code(alice.bind(0x4001, PEER)) == ErrorCode.BAD_REQUEST
    alice.channel_data(0x4001, b"x")
    assert relay.sent == []


def test_rfc8656_12_2_missing_channel_number_or_peer_is_400(
    alice: TurnClient, relay: FakeRelay
) -> None:
    no_peer = alice.request(Method.CHANNEL_BIND, ChannelNumber(0x4000))
    no_number = alice.request(Method.CHANNEL_BIND, peer_attribute(PEER))

    assert error_code(no_peer) == error_code(no_number) == ErrorCode.BAD_REQUEST


def test_rfc8656_12_2_channel_bind_checks_the_peer_policy(
    alice: TurnClient, relay: FakeRelay
) -> None:
    assert error_code(alice.bind(0x4000, ("127.0.0.1", 5000))) == ErrorCode.FORBIDDEN
    assert error_code(alice.bind(0x4000, PEER_6)) == ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH


def test_rfc8656_12_2_channel_bind_installs_a_permission(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)

    alice.send_indication(PEER, b"permitted by the bind")

    assert relay.sent == [(b"permitted by the bind", PEER)]


def test_rfc8656_12_2_rebinding_the_same_pair_refreshes_it(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)
    turn.advance(500)
    assert ok(alice.bind(0x4000, PEER))
    turn.advance(250)  # past the first binding's 600 s, within the refreshed permission

    alice.channel_data(0x4000, b"still bound")

    assert relay.sent == [(b"still bound", PEER)]


@pytest.mark.parametrize("number", [0x0000, 0x3FFF, 0x8000, 0xFFFF])
def test_rfc8656_12_2_channel_number_out_of_range_is_400(alice: TurnClient, number: int) -> None:
    raw_number = UnknownAttribute(0x000C, struct.pack("!HH", number, 0))  # CHANNEL-NUMBER
    wire = alice.build(Method.CHANNEL_BIND, [raw_number, peer_attribute(PEER)], sign=False)

    with pytest.raises(StunRemoteError) as caught:
        Message.decode(wire)

    assert caught.value.code == ErrorCode.BAD_REQUEST
    request = caught.value.request
    assert request is not None and request.method == Method.CHANNEL_BIND


def test_rfc8656_12_channel_expires_after_600_seconds(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)
    start = turn.now
    turn.now = start + 500
    alice.permit(PEER)  # keeps the permission alive past the channel
    turn.now = start + 600
    alice.channel_data(0x4000, b"last")

    turn.now = start + 601
    alice.channel_data(0x4000, b"expired")
    relay.from_peer(b"back", PEER, turn.now)

    assert relay.sent == [(b"last", PEER)]
    assert alice.data_indications() == [(PEER, b"back")]


def test_rfc8656_12_expired_channel_can_be_bound_to_another_peer(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)
    turn.advance(601)
    turn.expire()

    assert ok(alice.bind(0x4000, PEER_2))
    alice.channel_data(0x4000, b"new peer")
    assert relay.sent == [(b"new peer", PEER_2)]


def test_rfc8656_12_channel_data_for_an_unbound_channel_is_dropped_and_counted(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)

    alice.channel_data(0x4001, b"nobody")

    assert relay.sent == []
    assert turn.core.traffic().dropped == 1
    assert turn.core.counters.drops == {"no_channel": 1}


@pytest.mark.parametrize("claimed", [6, 100, 0xFFFF])
def test_rfc8656_12_6_channel_data_longer_than_its_frame_is_dropped_and_counted(
    turn: Turn, alice: TurnClient, relay: FakeRelay, claimed: int
) -> None:
    alice.bind(0x4000, PEER)

    alice.channel_frame(channel_header(0x4000, claimed) + b"12345")

    assert relay.sent == []
    assert turn.core.traffic().dropped == 1
    assert turn.core.counters.drops == {"malformed": 1}


def test_rfc8656_12_6_channel_data_with_trailing_bytes_relays_only_its_length(
    alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)

    alice.channel_frame(channel_header(0x4000, 3) + b"abcXYZ")

    assert relay.sent == [(b"abc", PEER)]


def test_rfc8656_12_channel_data_needs_a_live_permission(
    turn: Turn, alice: TurnClient, relay: FakeRelay
) -> None:
    alice.bind(0x4000, PEER)
    turn.advance(301)  # the channel lives 600 s, the permission it installed 300 s

    alice.channel_data(0x4000, b"x")

    assert relay.sent == []
    assert turn.core.traffic().dropped == 1
    assert turn.core.counters.drops == {"no_permission": 1}


def test_rfc8656_12_channel_data_without_allocation_is_ignored_and_counted_by_reason(
    turn: Turn, alice: TurnClient
) -> None:
    """No allocation's traffic to count it in, but a worker that receives another's
    clients (a rehashed SO_REUSEPORT group) must show up in /metrics."""
    alice.channel_frame(channel_header(0x4000, 1) + b"x")

    assert turn.core.allocations == {} and turn.core.traffic().dropped == 0
    assert turn.core.counters.drops == {"no_allocation": 1}
