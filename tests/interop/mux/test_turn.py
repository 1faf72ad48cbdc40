"""TURN through the mux port (issue 13): coturn's uclient and aioice allocate there and
relay to an echo peer, over TCP (the STUN magic cookie names TURN), TLS (ALPN
``stun.turn``, or the server name ``mux.sni`` gives to TURN when no ALPN is offered)
and, for aioice, UDP (the mux address's datagrams are TURN's).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from tests.interop.mux.support import ACCOUNTS, LOCALHOST, TURN_NAME, MuxHeron
from tests.interop.turn.support import assert_all_echoed, uclient
from tests.interop.turn.test_aioice import relays_to_an_echo_peer, tls_context

pytestmark = pytest.mark.interop

TURN_USER = "alice"
PASSWORD = ACCOUNTS[TURN_USER]
CREDENTIALS = ("-u", TURN_USER, "-w", PASSWORD)


def test_uclient_allocates_over_tcp_through_the_mux(shared_mux: MuxHeron, echo_port: int) -> None:
    # A STUN Allocate with the magic cookie is TURN over TCP (RFC 8656 §3.1).
    run = uclient(shared_mux.turn, echo_port, *CREDENTIALS, "-t", "-c", "-n", "20")
    assert_all_echoed(run, 20, shared_mux.turn)


def test_uclient_allocates_over_tls_through_the_mux(shared_mux: MuxHeron, echo_port: int) -> None:
    # uclient offers ALPN "http/1.1" before "stun.turn" (RFC 7443): heron picks TURN.
    run = uclient(shared_mux.turn, echo_port, *CREDENTIALS, "-t", "-S", "-c", "-n", "20")
    assert_all_echoed(run, 20, shared_mux.turn)
    assert "tls_connect: client session connected" in run.output


def client_context(server: MuxHeron, named_by: str) -> ssl.SSLContext | None:
    """None for plain TCP or UDP; else a verifying context offering ALPN ``stun.turn``
    ("alpn") or no ALPN at all ("sni": the name ``mux.sni`` maps to TURN, which a
    ClientHello without ALPN would reach anyway)."""
    if named_by == "alpn":
        return tls_context(server.turn)
    if named_by == "sni":
        return ssl.create_default_context(cafile=str(server.certificate))
    return None


@pytest.mark.parametrize(
    ("transport", "host", "named_by"),
    [
        ("udp", LOCALHOST, ""),
        ("tcp", LOCALHOST, ""),
        ("tcp", LOCALHOST, "alpn"),
        ("tcp", TURN_NAME, "sni"),
    ],
    ids=["udp", "tcp", "tls-alpn", "tls-sni"],
)
async def test_aioice_relays_through_the_mux(
    shared_mux: MuxHeron,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    host: str,
    named_by: str,
) -> None:
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def resolver(name: Any, *args: Any, **kwargs: Any) -> Any:
        """TURN_NAME is 127.0.0.1, as DNS would say; aioice sends it as SNI."""
        return await resolve(LOCALHOST if name == TURN_NAME else name, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    await relays_to_an_echo_peer(
        shared_mux.turn,
        (host, shared_mux.port),
        transport,
        client_context(shared_mux, named_by),
        user=TURN_USER,
        password=PASSWORD,
    )
