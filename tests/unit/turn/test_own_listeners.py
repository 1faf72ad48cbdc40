"""A relay never sends to heron's own listeners, even where loopback or a LAN is allowed:
what comes from a relay comes from the server's own address (issue 10)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from heron.stun import ErrorCode, MessageClass
from heron.turn.peers import PeerPolicy
from tests.unit.turn.harness import Turn, error_code

SIP = ("127.0.0.1", 5060)
OTHER = ("127.0.0.1", 40000)


def loopback_allowed() -> Turn:
    policy = PeerPolicy(
        allowed=[ip_network("127.0.0.0/8")],
        own_addresses=[ip_address("192.0.2.1")],
        own_ports=[5060, 3478],
    )
    return Turn(peers=policy)


def test_channel_bind_to_an_own_listener_is_403() -> None:
    turn = loopback_allowed()
    alice = turn.client("alice")
    alice.allocate()

    assert error_code(alice.bind(0x4000, SIP)) == ErrorCode.FORBIDDEN
    assert alice.bind(0x4001, OTHER).message_class is MessageClass.SUCCESS_RESPONSE


def test_send_indications_to_an_own_listener_are_dropped() -> None:
    turn = loopback_allowed()
    alice = turn.client("alice")
    alice.allocate()
    assert alice.permit(SIP).message_class is MessageClass.SUCCESS_RESPONSE  # the host is fine

    alice.send_indication(SIP, b"INVITE sip:x@127.0.0.1 SIP/2.0\r\n\r\n")
    alice.send_indication(OTHER, b"hello")

    [relay] = turn.relays.live()
    assert relay.sent == [(b"hello", OTHER)]


def test_connect_to_an_own_listener_is_403() -> None:
    turn = loopback_allowed()
    alice = turn.client("alice", transport="tcp")
    alice.allocate_tcp()

    assert error_code(alice.connect(("127.0.0.1", 3478))) == ErrorCode.FORBIDDEN
