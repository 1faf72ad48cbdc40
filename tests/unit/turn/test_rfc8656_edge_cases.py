"""Edge cases of RFC 8489/8656 a first TURN core got wrong, each quoting its rule.

They were written against the core before it was fixed, and failed then.
"""

from __future__ import annotations

from ipaddress import ip_address

from heron.stun import (
    AdditionalAddressFamily,
    AddressErrorCode,
    AddressFamily,
    Data,
    DontFragment,
    ErrorCode,
    EvenPort,
    Message,
    MessageClass,
    Method,
    RequestedAddressFamily,
    ReservationToken,
    UnknownAttribute,
    XorRelayedAddress,
)
from tests.unit.turn.harness import (
    PEER,
    PEER_2,
    PEER_6,
    Turn,
    TurnClient,
    channel_header,
    error_code,
    peer_attribute,
)

IPV6 = RequestedAddressFamily(AddressFamily.IPV6)


def ok(reply: Message) -> bool:
    return reply.message_class is MessageClass.SUCCESS_RESPONSE


def test_rfc8489_6_3_2_send_indication_with_unknown_required_attribute_is_discarded(
    turn: Turn, alice: TurnClient
) -> None:
    """A Send indication with an unknown comprehension-required attribute is not relayed.

    RFC 8489 §6.3.2: "If the indication contains unknown comprehension-required
    attributes, the indication is discarded and processing ceases."
    """
    alice.allocate()
    alice.permit(PEER)
    attributes = (peer_attribute(PEER), Data(b"payload"), UnknownAttribute(0x7FF0, b"?"))
    wire = alice.build(Method.SEND, attributes, sign=False, message_class=MessageClass.INDICATION)

    alice.send_raw(wire)

    assert turn.relays.opened[0].sent == []


def test_rfc8489_6_3_unknown_attribute_answer_comes_after_authentication(
    turn: Turn, alice: TurnClient
) -> None:
    """The 420 for an authenticated request comes after authentication, and is signed.

    RFC 8489 §6.3: "The STUN agent then does any checks that are required by an
    authentication mechanism ... Once the authentication checks are done, the
    STUN agent checks for unknown attributes". After §9.2.4's checks pass, the
    response carries MESSAGE-INTEGRITY with the long-term key; an unsigned 420
    to an authenticated Allocate cannot be told from a forged one.
    """
    alice.refresh(600)  # learns the nonce (437: nothing to refresh yet)

    reply = alice.allocate(UnknownAttribute(0x7FF0, b"?"))

    assert error_code(reply) == ErrorCode.UNKNOWN_ATTRIBUTE
    assert reply.verify_integrity(alice.long_term_key)


def test_rfc8656_7_2_dont_fragment_asks_the_relay_for_the_df_bit(
    turn: Turn, alice: TurnClient
) -> None:
    """RFC 8656 §7.2 step 4: a server that can set DF honours DONT-FRAGMENT (no 420);
    coturn's own client asks for it and would give up on a 420."""
    reply = alice.allocate(DontFragment())

    assert error_code(reply) is None
    assert turn.relays.dont_fragment == [True]


def test_rfc8656_7_2_reservation_token_with_additional_family_is_400() -> None:
    """A RESERVATION-TOKEN with ADDITIONAL-ADDRESS-FAMILY is 400.

    RFC 8656 §7.2 step 5: "If yes, and the request also contains an EVEN-PORT or
    REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY attribute, the server
    rejects the request with a 400 (Bad Request) error." Today the token is
    claimed and the IPv6 half silently dropped (no ADDRESS-ERROR-CODE either).
    """
    turn = Turn(versions=(4, 6))
    token = turn.client().allocate(EvenPort(reserve=True)).find(ReservationToken)
    assert token is not None

    reply = turn.client().allocate(token, AdditionalAddressFamily())

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert token.value in turn.relays.reserved


def test_rfc8656_7_2_even_port_reserving_with_additional_family_is_400() -> None:
    """EVEN-PORT with R set and ADDITIONAL-ADDRESS-FAMILY is 400.

    RFC 8656 §7.2 step 8: "The server checks if the request contains an
    EVEN-PORT attribute with the R bit set to 1. If yes, and the request also
    contains an ADDITIONAL-ADDRESS-FAMILY attribute, the server rejects the
    request with a 400 (Bad Request) error."
    """
    turn = Turn(versions=(4, 6))

    reply = turn.client().allocate(EvenPort(reserve=True), AdditionalAddressFamily())

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.relays.reserved == {}


def test_rfc8656_7_2_dual_allocation_short_of_ipv6_capacity_partially_succeeds() -> None:
    """A dual allocation without IPv6 capacity keeps its IPv4 half.

    RFC 8656 §7.2 step 9: "If the server can partially meet the request, i.e.,
    if it can only allocate one relayed transport address of a specific address
    type, then it includes ADDRESS-ERROR-CODE attribute in the success response
    ... The error code value signaled in the ADDRESS-ERROR-CODE attribute could
    be 440 (Address Family not Supported) or 508 (Insufficient Capacity)."
    """
    turn = Turn(versions=(4, 6))
    turn.relays.full.add(6)

    reply = turn.client().allocate(AdditionalAddressFamily())

    assert ok(reply)
    assert [a.address.version for a in reply.find_all(XorRelayedAddress)] == [4]
    error = reply.find(AddressErrorCode)
    assert error is not None and error.family == AddressFamily.IPV6
    assert error.code == ErrorCode.INSUFFICIENT_CAPACITY


def test_rfc8656_7_2_claimed_ipv6_reservation_keeps_its_family() -> None:
    """A claimed IPv6 reservation stays an IPv6 relay.

    A port reserved by an IPv6 Allocate (REQUESTED-ADDRESS-FAMILY IPv6 with
    EVEN-PORT R=1) is an IPv6 relay; the claiming allocation then refuses IPv6
    peers with 443 and would send IPv4 peers' data through the IPv6 socket.
    RFC 8656 §7.2 step 5 hands the client "the relayed transport address" that
    was reserved, and §10.2 answers 443 only when the peer's family differs
    from the relayed address's.
    """
    turn = Turn(versions=(4, 6))
    token = turn.client().allocate(IPV6, EvenPort(reserve=True)).find(ReservationToken)
    assert token is not None
    claimer = turn.client()
    [relayed] = claimer.allocate(token).find_all(XorRelayedAddress)
    assert relayed.address.version == 6

    assert ok(claimer.permit(PEER_6))
    assert error_code(claimer.permit(PEER)) == ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH


def test_rfc8656_11_3_peer_datagram_too_big_for_a_data_indication_is_dropped() -> None:
    """A peer datagram too big for a Data indication is dropped and counted.

    An IPv6 peer may send up to 65527 bytes of UDP payload and UdpSocket reads
    65535; a Data indication holding more than 65504 bytes next to an IPv6
    XOR-PEER-ADDRESS exceeds the 16-bit STUN length (RFC 8489 §5). The packet
    cannot be delivered as a Data indication, so it must be dropped and
    counted, not raised into the relay socket's reader callback.
    """
    turn = Turn(versions=(4, 6))
    client = turn.client()
    client.allocate(AdditionalAddressFamily())
    client.permit(PEER_6)
    v6_relay = turn.relays.opened[1]
    assert ip_address(v6_relay.address[0]).version == 6

    v6_relay.from_peer(bytes(65527), PEER_6, turn.now)

    assert client.received() == []
    assert turn.core.traffic().dropped == 1
    assert turn.core.counters.drops == {"too_big": 1}


def test_channel_data_shorter_than_its_header_is_counted_as_dropped(
    turn: Turn, alice: TurnClient
) -> None:
    """ChannelData shorter than its header is counted as dropped.

    Every other malformed ChannelData (unbound channel, length beyond the
    frame) increments ``dropped``; a 1-3 byte frame on the same 5-tuple is
    just as dropped but invisible in ``traffic()`` and /metrics.
    """
    alice.allocate()
    alice.bind(0x4000, PEER)

    alice.channel_frame(channel_header(0x4000, 0)[:3])

    assert turn.core.traffic().dropped == 1
    assert turn.core.counters.drops == {"malformed": 1}


def test_rfc8656_12_2_channel_bind_respects_the_permission_cap() -> None:
    """ChannelBind cannot install permissions past max_permissions.

    TurnPolicy.max_permissions says "a client asking for more is attacking",
    and CreatePermission enforces it, but ChannelBind installs
    permissions too (RFC 8656 §12.2), up to 16384 of them through channels.
    §12.2: "If the request is valid, but the server is unable to fulfill the
    request due to some capacity limit or similar, the server replies with a
    508 (Insufficient Capacity) error."
    """
    turn = Turn(max_permissions=2)
    client = turn.client()
    client.allocate()
    client.permit(PEER, PEER_2)

    reply = client.bind(0x4000, ("198.51.100.99", 7000))

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert len(turn.core.allocations[client.key].permissions) == 2
