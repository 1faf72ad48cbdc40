"""Allocate (RFC 8656 §7.2, RFC 6156 address families) and Refresh (RFC 8656 §7.3)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from heron.stun import (
    AdditionalAddressFamily,
    AddressErrorCode,
    AddressFamily,
    ErrorCode,
    EvenPort,
    Lifetime,
    Message,
    MessageClass,
    MessageIntegrity,
    Method,
    RequestedAddressFamily,
    RequestedTransport,
    ReservationToken,
    Software,
    TransportProtocol,
    Username,
    XorMappedAddress,
    XorRelayedAddress,
)
from tests.unit.turn.harness import Turn, TurnClient, error_code

IPV6 = RequestedAddressFamily(AddressFamily.IPV6)


def relayed(reply: Message) -> list[tuple[str, int]]:
    return [(str(a.address), a.port) for a in reply.find_all(XorRelayedAddress)]


def ok(reply: Message) -> bool:
    return reply.message_class is MessageClass.SUCCESS_RESPONSE


# --- success ---------------------------------------------------------------------------------


def test_rfc8656_7_2_success_attributes(turn: Turn, alice: TurnClient) -> None:
    reply = alice.allocate()

    assert ok(reply)
    [relay] = turn.relays.opened
    assert relayed(reply) == [relay.address]
    assert reply.find(Lifetime) == Lifetime(600)
    assert reply.find(XorMappedAddress) == XorMappedAddress(
        ip_address(alice.address[0]), alice.address[1]
    )
    assert reply.find(Software) is not None
    assert reply.find(ReservationToken) is None
    assert turn.relays.calls == [(4, False, False)]
    assert turn.core.counters.allocations_created == 1


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        (None, 600),
        (0, 600),
        (1, 600),
        (599, 600),
        (601, 601),
        (3600, 3600),
        (3601, 3600),
        (2**32 - 1, 3600),
    ],
)
def test_rfc8656_7_2_lifetime_is_at_least_the_default_and_at_most_the_maximum(
    turn: Turn, alice: TurnClient, asked: int | None, granted: int
) -> None:
    reply = alice.allocate(lifetime=asked)

    assert reply.find(Lifetime) == Lifetime(granted)
    assert turn.core.allocations[alice.key].expires == turn.now + granted


def test_rfc8656_7_2_policy_sets_default_and_maximum_lifetime() -> None:
    turn = Turn(default_lifetime=300, max_lifetime=900)

    assert turn.client().allocate().find(Lifetime) == Lifetime(300)
    assert turn.client().allocate(lifetime=5000).find(Lifetime) == Lifetime(900)


def test_rfc8656_7_2_retransmission_gets_the_identical_bytes(turn: Turn, alice: TurnClient) -> None:
    tid = b"allocate-tid"
    alice.allocate(transaction_id=tid)
    first = alice.last
    turn.advance(1.5)

    alice.allocate(transaction_id=tid)

    assert first is not None and alice.last == first
    assert len(turn.relays.opened) == 1
    assert turn.core.counters.allocations_created == 1


def test_rfc8656_7_2_second_allocate_on_the_5_tuple_is_437(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()

    reply = alice.allocate()

    assert error_code(reply) == ErrorCode.ALLOCATION_MISMATCH
    assert len(turn.relays.opened) == 1 and not turn.relays.opened[0].closed


def test_rfc8656_7_2_missing_requested_transport_is_400(turn: Turn, alice: TurnClient) -> None:
    reply = alice.request(Method.ALLOCATE)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.relays.calls == [] and turn.core.allocations == {}


def test_rfc6062_5_1_tcp_relay_asked_over_udp_is_400(turn: Turn, alice: TurnClient) -> None:
    reply = alice.request(Method.ALLOCATE, RequestedTransport(TransportProtocol.TCP))

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.relays.calls == [] and turn.core.allocations == {}


@pytest.mark.parametrize("protocol", [1, 132])
def test_rfc8656_7_2_unsupported_transport_is_442(
    turn: Turn, alice: TurnClient, protocol: int
) -> None:
    reply = alice.request(Method.ALLOCATE, RequestedTransport(protocol))

    assert error_code(reply) == ErrorCode.UNSUPPORTED_TRANSPORT_PROTOCOL
    assert turn.relays.calls == []


# --- EVEN-PORT and RESERVATION-TOKEN ------------------------------------------------------------


def test_rfc8656_7_2_even_port_gives_an_even_port(turn: Turn, alice: TurnClient) -> None:
    reply = alice.allocate(EvenPort(reserve=False))

    [(_, port)] = relayed(reply)
    assert port % 2 == 0
    assert turn.relays.calls == [(4, True, False)]
    assert reply.find(ReservationToken) is None


def test_rfc8656_7_2_even_port_with_r_bit_reserves_the_next_port(turn: Turn) -> None:
    rtp, rtcp = turn.client(), turn.client()
    first = rtp.allocate(EvenPort(reserve=True))
    token = first.find(ReservationToken)
    assert token is not None
    [(host, port)] = relayed(first)

    second = rtcp.allocate(token)

    assert port % 2 == 0
    assert relayed(second) == [(host, port + 1)]
    assert second.find(ReservationToken) is None
    assert turn.relays.calls == [(4, True, True)]  # the claim opened nothing new


def test_rfc8656_7_2_reservation_token_is_claimed_once(turn: Turn) -> None:
    token = turn.client().allocate(EvenPort(reserve=True)).find(ReservationToken)
    assert token is not None
    turn.client().allocate(token)

    reply = turn.client().allocate(token)

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY


@pytest.mark.parametrize("other", [EvenPort(), EvenPort(reserve=True), IPV6])
def test_rfc8656_7_2_reservation_token_with_even_port_or_family_is_400(
    turn: Turn, other: object
) -> None:
    token = turn.client().allocate(EvenPort(reserve=True)).find(ReservationToken)
    assert token is not None

    reply = turn.client().allocate(token, other)  # type: ignore[arg-type]

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert token.value in turn.relays.reserved  # still claimable


def test_rfc8656_7_2_unknown_reservation_token_is_508(turn: Turn, alice: TurnClient) -> None:
    reply = alice.allocate(ReservationToken(b"\x00" * 8))

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert turn.core.allocations == {}


def test_rfc8656_7_2_no_relay_available_is_508(turn: Turn, alice: TurnClient) -> None:
    turn.relays.full.add(4)

    reply = alice.allocate()

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert turn.core.allocations == {} and turn.core.counters.allocations_created == 0
    turn.relays.full.clear()
    assert ok(alice.allocate())


# --- address families (RFC 8656 §7.2 rules 5-9, RFC 6156) -----------------------------------------


def test_rfc8656_7_2_requested_ipv6_without_ipv6_relays_is_440(
    turn: Turn, alice: TurnClient
) -> None:
    reply = alice.allocate(IPV6)

    assert error_code(reply) == ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED
    assert turn.relays.calls == []


def test_rfc8656_7_2_requested_ipv6_with_ipv6_relays() -> None:
    turn = Turn(versions=(4, 6))

    reply = turn.client().allocate(IPV6)

    [(host, _)] = relayed(reply)
    assert ip_address(host).version == 6
    assert turn.relays.calls == [(6, False, False)]


def test_rfc8656_7_2_no_family_requested_on_an_ipv6_only_server_is_440() -> None:
    turn = Turn(versions=(6,))

    assert error_code(turn.client().allocate()) == ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED


def test_rfc8656_7_2_additional_family_gives_two_relayed_addresses() -> None:
    turn = Turn(versions=(4, 6))

    reply = turn.client().allocate(AdditionalAddressFamily())

    assert [ip_address(host).version for host, _ in relayed(reply)] == [4, 6]
    assert reply.find(AddressErrorCode) is None
    assert [call[0] for call in turn.relays.calls] == [4, 6]


def test_rfc8656_7_2_additional_family_unsupported_gives_one_address_and_440(
    turn: Turn, alice: TurnClient
) -> None:
    reply = alice.allocate(AdditionalAddressFamily())

    assert ok(reply)
    assert [ip_address(host).version for host, _ in relayed(reply)] == [4]
    assert reply.find(AddressErrorCode) == AddressErrorCode(
        AddressFamily.IPV6, ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED, "Address Family not Supported"
    )


def test_rfc8656_7_2_both_family_attributes_is_400() -> None:
    turn = Turn(versions=(4, 6))

    reply = turn.client().allocate(IPV6, AdditionalAddressFamily())

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.relays.calls == []


def test_rfc8656_7_2_dual_allocation_failing_entirely_closes_what_it_opened() -> None:
    turn = Turn(versions=(4, 6))
    turn.relays.full.add(4)

    reply = turn.client().allocate(AdditionalAddressFamily())

    assert error_code(reply) == ErrorCode.INSUFFICIENT_CAPACITY
    assert turn.relays.live() == []


# --- quotas ---------------------------------------------------------------------------------------


def test_rfc8656_7_2_user_quota_is_486_and_freed_when_an_allocation_ends() -> None:
    turn = Turn(user_quota=2)
    first, second, third = (turn.client("alice") for _ in range(3))
    first.allocate()
    second.allocate()

    assert error_code(third.allocate()) == ErrorCode.ALLOCATION_QUOTA_REACHED
    assert ok(turn.client("bob").allocate())
    assert len(turn.relays.opened) == 3

    assert ok(first.refresh(0))
    assert ok(third.allocate())


def test_rfc8656_7_2_total_quota_is_486_and_freed_when_an_allocation_expires() -> None:
    turn = Turn(total_quota=2)
    turn.client("alice").allocate()
    turn.client("bob").allocate(lifetime=3600)
    late = turn.client("alice")

    assert error_code(late.allocate()) == ErrorCode.ALLOCATION_QUOTA_REACHED

    turn.advance(601)
    turn.expire()
    assert ok(late.allocate())


def test_rfc8656_7_2_quota_zero_means_unlimited() -> None:
    turn = Turn(user_quota=0, total_quota=0)

    replies = [turn.client("alice").allocate() for _ in range(30)]

    assert all(ok(reply) for reply in replies)


# --- anonymous relaying (off unless configured) -----------------------------------------------


def test_allocate_without_credentials_is_refused_by_default(turn: Turn, alice: TurnClient) -> None:
    reply = alice.allocate(sign=False)

    assert error_code(reply) == ErrorCode.UNAUTHORIZED
    assert turn.core.allocations == {}


def test_allow_anonymous_allocates_without_credentials() -> None:
    turn = Turn(allow_anonymous=True)
    client = turn.client()

    reply = client.allocate(sign=False)

    assert ok(reply)
    assert reply.find(MessageIntegrity) is None
    assert turn.core.allocations[client.key].username == ""


def challenge_naming_the_user(client: TurnClient) -> Message:
    """An unsigned request with USERNAME: not anonymous, so it must be challenged."""
    attributes = [RequestedTransport(), Username(client.username)]
    reply = client.send_raw(client.build(Method.ALLOCATE, attributes, sign=False))
    assert reply is not None
    return reply


def test_allow_anonymous_still_challenges_a_request_naming_a_user() -> None:
    turn = Turn(allow_anonymous=True)
    alice = turn.client("alice")

    challenge = challenge_naming_the_user(alice)
    alice.learn(challenge)

    assert error_code(challenge) == ErrorCode.UNAUTHORIZED
    assert turn.core.allocations == {}
    assert ok(alice.allocate())
    assert turn.core.allocations[alice.key].username == "alice"


def test_allow_anonymous_refresh_by_a_user_of_an_anonymous_allocation_is_441() -> None:
    turn = Turn(allow_anonymous=True)
    anonymous = turn.client()
    anonymous.allocate(sign=False)
    alice_there = turn.client("alice", address=anonymous.address)
    alice_there.learn(challenge_naming_the_user(alice_there))

    assert error_code(alice_there.refresh(0)) == ErrorCode.WRONG_CREDENTIALS
    assert anonymous.key in turn.core.allocations


# --- Refresh (RFC 8656 §7.3) ---------------------------------------------------------------------


def test_rfc8656_7_3_refresh_sets_a_new_lifetime(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    turn.advance(500)

    reply = alice.refresh(1800)

    assert reply.find(Lifetime) == Lifetime(1800)
    assert reply.verify_integrity(alice.long_term_key)
    assert turn.core.allocations[alice.key].expires == turn.now + 1800


def test_rfc8656_7_3_refresh_without_lifetime_uses_the_default(
    turn: Turn, alice: TurnClient
) -> None:
    alice.allocate(lifetime=3600)

    assert alice.refresh().find(Lifetime) == Lifetime(600)


def test_rfc8656_7_3_lifetime_zero_deletes_the_allocation() -> None:
    turn = Turn(user_quota=1)
    alice = turn.client("alice")
    alice.allocate()

    reply = alice.refresh(0)

    assert ok(reply) and reply.find(Lifetime) == Lifetime(0)
    assert turn.core.allocations == {}
    assert turn.relays.opened[0].closed
    assert ok(turn.client("alice").allocate())  # the user's quota was freed


def test_rfc8656_7_3_refresh_without_allocation_is_437(turn: Turn, alice: TurnClient) -> None:
    assert error_code(alice.refresh(600)) == ErrorCode.ALLOCATION_MISMATCH


def test_rfc8656_7_3_refresh_after_delete_is_437(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    alice.refresh(0)

    assert error_code(alice.refresh(0)) == ErrorCode.ALLOCATION_MISMATCH


def test_rfc8656_5_another_users_credentials_on_the_5_tuple_are_441(
    turn: Turn, alice: TurnClient
) -> None:
    alice.allocate()
    bob_there = turn.client("bob", address=alice.address)

    reply = bob_there.refresh(0)

    assert error_code(reply) == ErrorCode.WRONG_CREDENTIALS
    assert alice.key in turn.core.allocations and not turn.relays.opened[0].closed


def test_rfc8656_7_3_refresh_family_mismatch_is_443(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()

    assert error_code(alice.refresh(600, IPV6)) == ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH
    assert ok(alice.refresh(600, RequestedAddressFamily(AddressFamily.IPV4)))


def test_rfc8656_7_3_refresh_of_a_tcp_client_is_its_own_5_tuple(turn: Turn) -> None:
    udp = turn.client("alice", address=("192.0.2.9", 5000))
    tcp = turn.client("alice", address=("192.0.2.9", 5000), transport="tcp")
    udp.allocate()

    assert error_code(tcp.refresh(600)) == ErrorCode.ALLOCATION_MISMATCH
    assert ok(tcp.allocate())
    assert len(turn.core.allocations) == 2
