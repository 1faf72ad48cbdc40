"""coturn's turnutils_uclient relays through heron to turnutils_peer and gets every echo back.

uclient allocates, binds channels (or sends Send indications with -s), sends -n messages per
client to the echo peer through the relay and counts what comes back; "Total lost packets 0"
and equal send/receive totals mean the data made the full round trip peer <-> relay.
"""

from __future__ import annotations

import pytest

from tests.interop.turn.stun_wire import (
    ALLOCATE_REQUEST,
    LIFETIME,
    REFRESH_REQUEST,
    REQUESTED_TRANSPORT,
    SUCCESS,
    UDP,
    RawTurnClient,
    parse,
    plain,
)
from tests.interop.turn.support import (
    LOCALHOST,
    PASSWORD,
    SECRET,
    TURN_USER,
    TurnServer,
    assert_all_echoed,
    pending,
    silent_peer,
    uclient,
)

pytestmark = pytest.mark.interop

CREDENTIALS = ("-u", TURN_USER, "-w", PASSWORD)
GUESSER = "127.0.0.2"
UDP_TRANSPORT = plain(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))


def test_udp_channels_with_long_term_credentials(shared_turn: TurnServer, echo_port: int) -> None:
    # Without -c, uclient pairs each client with an RTCP one (EVEN-PORT with a reservation).
    run = uclient(shared_turn, echo_port, *CREDENTIALS, "-n", "50", "-m", "2", "-l", "120")
    assert_all_echoed(run, 100, shared_turn)


def test_udp_send_indications(shared_turn: TurnServer, echo_port: int) -> None:
    # -s: CreatePermission, then Send indications out and Data indications back; no channels.
    run = uclient(shared_turn, echo_port, *CREDENTIALS, "-s", "-c", "-n", "20", "-l", "120")
    assert_all_echoed(run, 20, shared_turn)


def test_tcp_client_transport(shared_turn: TurnServer, echo_port: int) -> None:
    # TURN over TCP to the same port as UDP (RFC 8656 §3.1): ChannelData framed on the stream.
    run = uclient(shared_turn, echo_port, *CREDENTIALS, "-t", "-c", "-n", "20", "-l", "120")
    assert_all_echoed(run, 20, shared_turn)


def test_tcp_client_transport_with_send_indications(
    shared_turn: TurnServer, echo_port: int
) -> None:
    run = uclient(shared_turn, echo_port, *CREDENTIALS, "-t", "-s", "-c", "-n", "20")
    assert_all_echoed(run, 20, shared_turn)


def test_tls_client_transport(shared_turn: TurnServer, echo_port: int) -> None:
    # -S with -t is TLS (without -t it would be DTLS, which heron does not serve). uclient does
    # not verify the server's certificate: even with -E naming an unrelated CA bundle it
    # connected here, so certificate checks are left to the aioice test.
    tls = ("-t", "-S", "-p", str(shared_turn.tls_port))
    run = uclient(shared_turn, echo_port, *CREDENTIALS, *tls, "-c", "-n", "20", "-l", "120")
    assert_all_echoed(run, 20, shared_turn)
    assert "tls_connect: client session connected" in run.output


def test_rest_api_credentials(shared_turn: TurnServer, echo_port: int) -> None:
    # -W: uclient makes the "expiry:bench" username and its HMAC password from the secret.
    run = uclient(shared_turn, echo_port, "-u", TURN_USER, "-W", SECRET, "-c", "-n", "20")
    assert_all_echoed(run, 20, shared_turn)


def test_wrong_password_relays_nothing(shared_turn: TurnServer) -> None:
    # Guesses come from 127.0.0.2: they make the account wait for new places (by design),
    # while 127.0.0.1, which logged in first, stays a known device and keeps working.
    server = (LOCALHOST, shared_turn.port)
    with RawTurnClient(server, TURN_USER, PASSWORD) as device:
        answer = device.request(ALLOCATE_REQUEST, UDP_TRANSPORT)
        assert answer.kind == ALLOCATE_REQUEST | SUCCESS, answer
        deleted = device.request(REFRESH_REQUEST, plain(LIFETIME, bytes(4)))
        assert deleted.kind == REFRESH_REQUEST | SUCCESS, deleted
    with silent_peer() as peer:
        run = uclient(
            shared_turn,
            peer.getsockname()[1],
            *("-L", GUESSER, "-u", TURN_USER, "-w", "not-" + PASSWORD, "-c"),
        )
        assert run.returncode != 0, run.output
        assert "error 401" in run.output, run.output
        assert run.totals in (None, (0, 0)), run.output
        assert pending(peer) == []
    # uclient retried after each 401 until heron stopped checking guesses for the account
    # (it waits after 5 failures); the 401 without a nonce made it stop.
    assert "401 (Too many failed attempts)" in run.output, run.output
    with (
        RawTurnClient(server, TURN_USER, "not-" + PASSWORD, local=GUESSER) as guesser,
        RawTurnClient(server, TURN_USER, PASSWORD, local=GUESSER) as honest,
    ):
        guesser.request(ALLOCATE_REQUEST, UDP_TRANSPORT)  # takes a nonce on the way
        honest.realm, honest.nonce = guesser.realm, guesser.nonce
        # One more guess and the right password right behind it, from the guesser's
        # address: whether the wait still ran or this guess began a new one, the
        # password is not checked.
        guess = guesser.encode(ALLOCATE_REQUEST, bytes(12), UDP_TRANSPORT(bytes(12)))
        guesser.sock.sendto(guess, server)
        right = honest.encode(ALLOCATE_REQUEST, b"right-answer", UDP_TRANSPORT(b"right-answer"))
        honest.sock.sendto(right, server)
        honest.sock.settimeout(10)
        data, _ = honest.sock.recvfrom(65535)
        answer = parse(data)
        assert (answer.error, answer.reason) == (401, "Too many failed attempts"), answer
    with RawTurnClient(server, TURN_USER, PASSWORD) as other:
        answer = other.request(ALLOCATE_REQUEST, UDP_TRANSPORT)
        assert answer.kind == ALLOCATE_REQUEST | SUCCESS, answer
        deleted = other.request(REFRESH_REQUEST, plain(LIFETIME, bytes(4)))
        assert deleted.kind == REFRESH_REQUEST | SUCCESS, deleted
