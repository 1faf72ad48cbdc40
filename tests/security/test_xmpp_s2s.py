"""Attacks on heron's federation side (issue 11, Safety): another server, or whoever
poses as one, against the s2s listeners of a running heron.

The attacker is heron's own s2s stream over a real socket (``s2s_peer.py``) with a
certificate for evil.example from a CA the target trusts (``xmpp.s2s_ca_file``), or
raw bytes. The target's DNS is a stub of the test's (``dns.servers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from heron.xmpp.s2s.events import Authenticated, AuthMethod, StreamEnded
from tests.security.s2s_peer import S2SPeer, authoritative, dial
from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.support.heron import merge
from tests.security.xmpp_client import TIMEOUT, Connection, logged_in
from tests.support.dns_stub import DnsStub, dns_stub_thread
from tests.support.federation.ca import CertFiles, TestCa, make_ca

EVIL = "evil.example"
_MESSAGE = re.compile(rb"<message [^>]*>.*?</message>", re.S)


@dataclass
class Federated:
    """A target heron, its DNS stub, the CA it trusts and the attacker's certificates."""

    heron: Target
    dns: DnsStub
    ca: TestCa
    evil: CertFiles
    """Valid for evil.example: EXTERNAL."""
    stranger: CertFiles
    """Valid for another name only: evil.example must use dialback."""


@contextmanager
def federated(directory: Path, overrides: Mapping[str, Any] | None = None) -> Iterator[Federated]:
    ca = make_ca(directory / "ca")
    with dns_stub_thread({}) as dns:
        settings = {
            "dns": {"servers": [dns.address]},
            "xmpp": {"s2s_ca_file": str(ca.cafile)},
        }
        with target(directory / "heron", merge(settings, dict(overrides or {}))) as heron:
            yield Federated(heron, dns, ca, ca.issue(EVIL), ca.issue("stranger.example"))


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federated]:
    with federated(tmp_path) as running:
        yield running


async def refusal(peer: S2SPeer) -> bytes:
    """What heron sent until it ended the stream and closed the connection."""
    with contextlib.suppress(ConnectionError):
        await peer.until(lambda event: isinstance(event, StreamEnded))
    return await peer.ended()


@asynccontextmanager
async def evil_stream(fed: Federated, tls: CertFiles | None = None) -> AsyncIterator[S2SPeer]:
    async with dial(fed.heron, EVIL, tls or fed.evil, fed.ca) as peer:
        yield peer


@asynccontextmanager
async def online(fed: Federated, user: str = "roland") -> AsyncIterator[Connection]:
    """A logged-in user who sent its presence: messages to its bare JID reach it."""
    async with logged_in(fed.heron, user, USERS[user]) as client:
        await client.send(b"<presence/>")
        yield client


def chat(sender: str, to: str, body: str) -> bytes:
    return f"<message from='{sender}' to='{to}' type='chat'><body>{body}</body></message>".encode()


async def next_message(client: Connection) -> bytes:
    return (await client.until(_MESSAGE))[0]


# --- 1. spoofing ----------------------------------------------------------------------------


async def test_a_peer_speaking_for_a_domain_it_did_not_authenticate_is_cut_off(
    fed: Federated,
) -> None:
    """RFC 6120 §4.9.3.9: invalid-from, and the stanza reaches nobody."""
    async with online(fed) as roland:
        for sender in (f"admin@{DOMAIN}", "boss@prosody.example", f"{DOMAIN}"):
            async with evil_stream(fed) as evil:
                assert (await evil.authenticated()).method is AuthMethod.EXTERNAL
                await evil.send(chat(sender, f"roland@{DOMAIN}", "spoofed"))
                assert b"<invalid-from " in await evil.ended(), sender
        # A genuine message sent afterwards is the first roland sees.
        async with evil_stream(fed) as evil:
            await evil.authenticated()
            await evil.send(chat(f"eve@{EVIL}", f"roland@{DOMAIN}", "genuine"))
            message = await next_message(roland)
        assert b"genuine" in message and b"spoofed" not in roland.received


# --- 2. xmpp.s2s_deny -----------------------------------------------------------------------


async def test_a_denied_domain_neither_authenticates_nor_is_reached(tmp_path: Path) -> None:
    with federated(tmp_path, {"xmpp": {"s2s_deny": [EVIL]}}) as fed:
        async with evil_stream(fed) as evil:  # SASL EXTERNAL
            assert b"<policy-violation " in await refusal(evil)
        async with evil_stream(fed, fed.stranger) as evil:  # dialback
            assert b'type="invalid"' in await refusal(evil)
        assert not any(isinstance(event, Authenticated) for event in evil.events)
        async with online(fed) as roland:
            await roland.send(b"<message to='eve@evil.example' type='chat' id='d'><body/></message>")
            bounce = await next_message(roland)
        assert b'type="error"' in bounce and b"<remote-server-not-found " in bounce
        assert not any(name.endswith(EVIL) for name, _ in fed.dns.questions)


# --- 3. hostile XML -------------------------------------------------------------------------

_HEADER = (
    f"<stream:stream to='{DOMAIN}' from='{EVIL}' version='1.0' xmlns='jabber:server'"
    " xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()
HOSTILE = {
    "entities": b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'aaaa'>]>" + _HEADER + b"&a;",
    "depth": _HEADER + b"<a>" * 10_000,
    "size": _HEADER + b"<message><body>" + b"x" * 400_000,
    "garbage before TLS": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 64,
    "garbage after the header": _HEADER + b"<starttls/><<>>\x00\x01",
}


async def _raw(port: int, data: bytes, *, tls: bool = False) -> bytes:
    """Send ``data`` to an s2s port; everything heron answers until it closes."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, port, ssl=context), TIMEOUT
    )
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
            received += chunk
        return received
    finally:
        writer.close()


async def test_hostile_xml_ends_only_its_own_stream(fed: Federated) -> None:
    async with online(fed) as roland, evil_stream(fed) as evil:
        await evil.authenticated()
        for attack, data in HOSTILE.items():
            answer = await _raw(fed.heron.ports["xmpp.s2s_listen"], data)
            assert answer.endswith(b"</stream:stream>"), (attack, answer[-200:])
            # Over direct TLS too (XEP-0368), after the handshake.
            answer = await _raw(fed.heron.ports["xmpp.s2s_tls_listen"], data, tls=True)
            assert answer.endswith(b"</stream:stream>"), (attack, answer[-200:])
        # The other server's stream and the client's session go on.
        await evil.send(chat(f"eve@{EVIL}", f"roland@{DOMAIN}", "still here"))
        assert b"still here" in await next_message(roland)


# --- 4. no connection to internal addresses ------------------------------------------------


async def test_federation_never_connects_to_internal_addresses_by_default(
    fed: Federated,
) -> None:
    accepted: list[object] = []

    async def record(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    listener = await asyncio.start_server(record, HOST, 0)
    port = listener.sockets[0].getsockname()[1]
    fed.dns.add(f"_xmpp-server._tcp.{EVIL}", "SRV", f"0 0 {port} {EVIL}.")
    fed.dns.add(f"_xmpps-server._tcp.{EVIL}", "SRV", f"0 0 {port} {EVIL}.")
    fed.dns.add(EVIL, "A", HOST)
    try:
        async with online(fed) as roland:
            await roland.send(b"<message to='eve@evil.example' type='chat' id='i'><body/></message>")
            bounce = await next_message(roland)
    finally:
        listener.close()
    assert b"<remote-server-not-found " in bounce, bounce
    assert fed.dns.asked(f"_xmpp-server._tcp.{EVIL}")  # it did look
    assert accepted == []
