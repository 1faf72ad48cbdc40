"""With its default peer policy heron refuses to relay to loopback, however the peer is spelled.

RFC 8656 §21.3 and coturn's CVE-2020-26262: a relay that reaches 127.0.0.1 lets any user talk
to the server's own services. The allowed case (``allowed_peer_ranges = ["127.0.0.0/8"]``) is
what every relaying test in this folder runs with.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from tests.interop.turn.stun_wire import (
    ALLOCATE_REQUEST,
    CHANNEL_BIND_REQUEST,
    CHANNEL_NUMBER,
    CREATE_PERMISSION_REQUEST,
    DATA,
    IPV4,
    IPV6,
    LIFETIME,
    REFRESH_REQUEST,
    REQUESTED_ADDRESS_FAMILY,
    REQUESTED_TRANSPORT,
    SEND_INDICATION,
    SUCCESS,
    UDP,
    XOR_PEER_ADDRESS,
    XOR_RELAYED_ADDRESS,
    RawTurnClient,
    Response,
    plain,
    xor_address,
)
from tests.interop.turn.support import (
    LOCALHOST,
    PASSWORD,
    TURN_USER,
    TurnServer,
    pending,
    silent_peer,
    turn_server,
    uclient,
)

pytestmark = pytest.mark.interop

# Loopback in the IPv6 spellings that carry an IPv4 address, and IPv6's own loopback.
LOOPBACK_IN_IPV6 = {
    "IPv4-mapped": "::ffff:127.0.0.1",
    "IPv4-compatible": "::127.0.0.1",
    "NAT64": "64:ff9b::7f00:1",
    "6to4": "2002:7f00:1::1",
    "IPv6 loopback": "::1",
}


@pytest.fixture(scope="module")
def default_policy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    """No allowed_peer_ranges; an IPv6 relay on ::1 as well, so IPv6 peers are not simply
    refused for their family (443) but reach the policy."""
    directory = tmp_path_factory.mktemp("heron-turn-defaults")
    with turn_server(
        directory, allowed_peer_ranges=None, relay_addresses=[LOCALHOST, "::1"]
    ) as server:
        yield server


def allocate(client: RawTurnClient, family: int) -> Response:
    return client.request(
        ALLOCATE_REQUEST,
        plain(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0])),
        plain(REQUESTED_ADDRESS_FAMILY, bytes([family, 0, 0, 0])),
    )


def permission(client: RawTurnClient, host: str, port: int) -> Response:
    return client.request(CREATE_PERMISSION_REQUEST, xor_address(XOR_PEER_ADDRESS, host, port))


def channel_bind(client: RawTurnClient, host: str, port: int) -> Response:
    return client.request(
        CHANNEL_BIND_REQUEST,
        plain(CHANNEL_NUMBER, struct.pack("!HH", 0x4001, 0)),
        xor_address(XOR_PEER_ADDRESS, host, port),
    )


def send_indication(client: RawTurnClient, host: str, port: int, data: bytes) -> None:
    client.indicate(SEND_INDICATION, xor_address(XOR_PEER_ADDRESS, host, port), plain(DATA, data))


def settle(client: RawTurnClient) -> None:
    """A request round trip: heron handles one client's datagrams in order, so whatever it
    relayed for the earlier ones has been sent by the time this is answered."""
    assert client.request(REFRESH_REQUEST, plain(LIFETIME, struct.pack("!I", 600))).kind == (
        REFRESH_REQUEST | SUCCESS
    )


@pytest.mark.parametrize("send_indications", [False, True], ids=["channel", "send"])
def test_uclient_to_loopback_peer_is_forbidden(
    default_policy: TurnServer, send_indications: bool
) -> None:
    with silent_peer() as peer:
        method = ("-s",) if send_indications else ()
        run = uclient(
            default_policy,
            peer.getsockname()[1],
            *("-u", TURN_USER, "-w", PASSWORD, "-c", "-n", "5"),
            *method,
        )
        assert run.returncode != 0, run.output
        refused = "create permission error 403" if send_indications else "channel bind: error 403"
        assert refused in run.output, run.output
        assert run.totals in (None, (0, 0)), run.output
        assert pending(peer) == []


def test_ipv4_relay_refuses_ipv4_mapped_loopback(default_policy: TurnServer) -> None:
    """What heron answers, seen here: 443 Peer Address Family Mismatch for every IPv6 spelling
    on an IPv4 relay (the family check comes first), 403 for 127.0.0.1 itself; and nothing
    reaches the loopback peer whichever way it is addressed."""
    server = (LOCALHOST, default_policy.port)
    with RawTurnClient(server, TURN_USER, PASSWORD) as client, silent_peer() as peer:
        port = peer.getsockname()[1]
        allocated = allocate(client, IPV4)
        assert allocated.kind == ALLOCATE_REQUEST | SUCCESS, allocated
        relayed = allocated.address(XOR_RELAYED_ADDRESS)
        assert relayed[0] == LOCALHOST and default_policy.has_relay_port(relayed[1])

        for spelling in ("::ffff:127.0.0.1", LOCALHOST):
            expected = 403 if spelling == LOCALHOST else 443
            for request in (permission, channel_bind):
                answer = request(client, spelling, port)
                assert answer.error == expected, (spelling, request.__name__, answer)
            send_indication(client, spelling, port, b"must not arrive")
        settle(client)
        assert pending(peer) == []


@pytest.mark.parametrize("spelling", list(LOOPBACK_IN_IPV6.values()), ids=list(LOOPBACK_IN_IPV6))
def test_ipv6_relay_refuses_loopback_spellings(default_policy: TurnServer, spelling: str) -> None:
    # On an IPv6 relay the family matches, so the answer is the policy's own: 403 Forbidden.
    server = (LOCALHOST, default_policy.port)
    with RawTurnClient(server, TURN_USER, PASSWORD) as client:
        allocated = allocate(client, IPV6)
        assert allocated.kind == ALLOCATE_REQUEST | SUCCESS, allocated
        relayed = allocated.address(XOR_RELAYED_ADDRESS)
        assert relayed[0] == "::1" and default_policy.has_relay_port(relayed[1])
        for request in (permission, channel_bind):
            answer = request(client, spelling, 3480)
            assert (answer.error, answer.reason) == (403, "Forbidden"), (request.__name__, answer)
