"""Allocation lifetimes (RFC 8656 §2.2), TCP close (§3.1), the max-bps cap, and counters."""

from __future__ import annotations

import pytest

from heron.stun import AdditionalAddressFamily, MessageClass
from tests.unit.turn.harness import PEER, Turn, TurnClient


def test_rfc8656_2_2_allocation_expires_after_its_lifetime(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    [relay] = turn.relays.opened
    start = turn.now

    turn.now = start + 600
    turn.expire()
    assert alice.key in turn.core.allocations and not relay.closed

    turn.now = start + 601
    turn.expire()
    assert turn.core.allocations == {}
    assert relay.closed
    assert turn.core.counters.allocations_expired == 1


def test_rfc8656_2_2_expiry_frees_the_users_quota() -> None:
    turn = Turn(user_quota=1)
    turn.client("alice").allocate()
    turn.advance(601)
    turn.expire()

    assert turn.client("alice").allocate().message_class is MessageClass.SUCCESS_RESPONSE


def test_rfc8656_7_3_refreshed_allocation_outlives_its_first_lifetime(
    turn: Turn, alice: TurnClient
) -> None:
    alice.allocate()
    turn.advance(590)
    alice.refresh(600)
    turn.advance(590)  # 1180 s after the Allocate

    turn.expire()

    assert alice.key in turn.core.allocations
    assert turn.core.counters.allocations_expired == 0


def test_rfc8656_2_2_expiry_closes_every_relay_of_a_dual_allocation() -> None:
    turn = Turn(versions=(4, 6))
    turn.client().allocate(AdditionalAddressFamily())
    turn.advance(601)

    turn.expire()

    assert len(turn.relays.opened) == 2 and turn.relays.live() == []


def test_expire_keeps_other_allocations(turn: Turn) -> None:
    short, long = turn.client("alice"), turn.client("bob")
    short.allocate()
    long.allocate(lifetime=3600)
    turn.advance(601)

    turn.expire()

    assert list(turn.core.allocations) == [long.key]
    assert [r.closed for r in turn.relays.opened] == [True, False]


def test_expired_allocation_drops_nothing_on_the_way_out(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    alice.permit(PEER)
    [relay] = turn.relays.opened
    turn.advance(601)
    turn.expire()

    relay.from_peer(b"late", PEER, turn.now)  # the socket is closed: nothing reaches the core

    assert alice.received() == []


def test_rfc8656_3_1_closing_the_tcp_connection_deletes_the_allocation() -> None:
    turn = Turn(user_quota=1)
    client = turn.client("alice", transport="tcp")
    client.allocate()

    turn.core.close_client(client.key)

    assert turn.core.allocations == {}
    assert turn.relays.opened[0].closed
    assert turn.client("alice").allocate().message_class is MessageClass.SUCCESS_RESPONSE


def test_close_client_without_allocation_is_harmless(turn: Turn, alice: TurnClient) -> None:
    turn.client("bob").allocate()

    turn.core.close_client(alice.key)

    assert len(turn.core.allocations) == 1


# --- max_bps: a token bucket of one second's worth ------------------------------------------


@pytest.fixture
def capped() -> tuple[Turn, TurnClient]:
    turn = Turn(max_bps=1000)
    client = turn.client()
    client.allocate(lifetime=3600)
    client.bind(0x4000, PEER)
    return turn, client


def test_max_bps_drops_client_traffic_beyond_the_cap(capped: tuple[Turn, TurnClient]) -> None:
    turn, client = capped
    relay = turn.relays.opened[0]

    client.channel_data(0x4000, bytes(600))
    client.channel_data(0x4000, bytes(600))

    assert [len(data) for data, _ in relay.sent] == [600]
    assert turn.core.traffic().dropped == 1


def test_max_bps_bucket_refills_with_time(capped: tuple[Turn, TurnClient]) -> None:
    turn, client = capped
    relay = turn.relays.opened[0]
    client.channel_data(0x4000, bytes(600))  # 400 left

    turn.advance(0.1)  # +100
    client.channel_data(0x4000, bytes(600))  # 500 < 600: dropped
    turn.advance(0.2)  # 500 + 200 = 700
    client.channel_data(0x4000, bytes(600))

    assert [len(data) for data, _ in relay.sent] == [600, 600]
    assert turn.core.traffic().dropped == 1


def test_max_bps_bucket_holds_at_most_one_second(capped: tuple[Turn, TurnClient]) -> None:
    turn, client = capped
    relay = turn.relays.opened[0]
    turn.advance(100)  # idle for 100 s still allows only 1000 bytes at once

    client.channel_data(0x4000, bytes(1000))
    client.channel_data(0x4000, bytes(1))

    assert [len(data) for data, _ in relay.sent] == [1000]


def test_max_bps_caps_peer_traffic_too(capped: tuple[Turn, TurnClient]) -> None:
    turn, client = capped
    relay = turn.relays.opened[0]

    relay.from_peer(bytes(700), PEER, turn.now)
    relay.from_peer(bytes(700), PEER, turn.now)

    assert len(client.received()) == 1
    assert turn.core.traffic().packets_to_client == 1


def test_max_bps_zero_is_unlimited(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    alice.bind(0x4000, PEER)

    for _ in range(100):
        alice.channel_data(0x4000, bytes(1400))

    assert len(turn.relays.opened[0].sent) == 100


def test_max_bps_is_per_allocation() -> None:
    turn = Turn(max_bps=1000)
    first, second = turn.client(), turn.client()
    for client in (first, second):
        client.allocate()
        client.bind(0x4000, PEER)

    first.channel_data(0x4000, bytes(1000))
    second.channel_data(0x4000, bytes(1000))

    assert [len(r.sent) for r in turn.relays.opened] == [1, 1]


# --- counters ---------------------------------------------------------------------------------


def test_counters_follow_a_session(turn: Turn) -> None:
    alice, bob = turn.client("alice"), turn.client("bob")
    alice.allocate()
    bob.allocate()
    turn.client("alice", "wrong").allocate()
    alice.bind(0x4000, PEER)
    alice.channel_data(0x4000, b"abcd")
    alice.channel_data(0x4001, b"unbound")
    turn.relays.opened[0].from_peer(b"xyz", PEER, turn.now)

    counters = turn.core.counters
    assert counters.allocations_created == 2
    assert counters.auth_failures == 1
    traffic = turn.core.traffic()
    assert (traffic.packets_to_peer, traffic.bytes_to_peer) == (1, 4)
    assert (traffic.packets_to_client, traffic.bytes_to_client) == (1, 3)
    assert traffic.dropped == 1


def test_traffic_of_deleted_allocations_is_kept(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    alice.permit(PEER)
    alice.send_indication(PEER, b"12345")
    before = turn.core.traffic()

    alice.refresh(0)

    after = turn.core.traffic()
    assert after == before
    assert (after.packets_to_peer, after.bytes_to_peer) == (1, 5)
    assert turn.core.counters.retired.bytes_to_peer == 5


def test_traffic_sums_live_and_retired_allocations(turn: Turn) -> None:
    gone, live = turn.client("alice"), turn.client("bob")
    for client in (gone, live):
        client.allocate()
        client.permit(PEER)
        client.send_indication(PEER, b"123")
    gone.refresh(0)
    live.send_indication(PEER, b"4567")

    assert turn.core.traffic().bytes_to_peer == 3 + 3 + 4
    assert turn.core.traffic().packets_to_peer == 3


def test_traffic_returns_a_copy(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    snapshot = turn.core.traffic()
    snapshot.dropped += 99

    assert turn.core.traffic().dropped == 0
    assert turn.core.counters.retired.dropped == 0


def test_live_lists_the_allocations(turn: Turn) -> None:
    alice, bob = turn.client("alice"), turn.client("bob")
    alice.allocate()
    bob.allocate()

    assert {key: a.username for key, a in turn.core.live()} == {
        alice.key: "alice",
        bob.key: "bob",
    }
