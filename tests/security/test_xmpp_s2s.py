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
from tests.security.sip_tools import wait_for
from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.security.xmpp_client import TIMEOUT, Connection, logged_in
from tests.support.dns_stub import DnsStub, dns_stub_thread
from tests.support.federation.ca import CertFiles, TestCa, make_ca
from tests.support.heron import merge

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


_HEADER = (
    f"<stream:stream to='{DOMAIN}' from='{EVIL}' version='1.0' xmlns='jabber:server'"
    " xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()


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
        with contextlib.suppress(ConnectionResetError):
            await writer.drain()
        return await _read_all(reader)
    finally:
        writer.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """What heron sends until it closes (or resets: it may not read all we sent)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT):
            received += chunk
    return received


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
        async with evil_stream(fed) as evil:  # as itself: refused before any feature
            answer = await refusal(evil)
        assert b"<policy-violation " in answer and b"<success" not in answer, answer
        assert not any(isinstance(event, Authenticated) for event in evil.events)
        # Claimed by dialback on a stream that names no domain in its header.
        header = _HEADER.replace(f" from='{EVIL}'".encode(), b"")
        claim = (
            f"<db:result xmlns:db='jabber:server:dialback' from='{EVIL}' to='{DOMAIN}'>"
            "00112233445566778899aabbccddeeff</db:result>"
        ).encode()
        answer = await _raw(fed.heron.ports["xmpp.s2s_tls_listen"], header + claim, tls=True)
        assert b'type="invalid"' in answer and b"<not-authorized " in answer, answer
        async with online(fed) as roland:
            await roland.send(chat(f"roland@{DOMAIN}", f"eve@{EVIL}", "denied"))
            bounce = await next_message(roland)
        assert b'type="error"' in bounce and b"<remote-server-not-found " in bounce
        assert not any(name.endswith(EVIL) for name, _ in fed.dns.questions)


# --- 3. hostile XML -------------------------------------------------------------------------

HOSTILE = {
    "entities": b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'aaaa'>]>" + _HEADER + b"&a;",
    "depth": _HEADER + b"<a>" * 10_000,
    "size": _HEADER + b"<message><body>" + b"x" * 400_000,
    "garbage before TLS": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 64,
    "garbage after the header": _HEADER + b"<starttls/><<>>\x00\x01",
}


async def test_hostile_xml_ends_only_its_own_stream(fed: Federated) -> None:
    async with online(fed) as roland, evil_stream(fed) as evil:
        await evil.authenticated()
        for attack, data in HOSTILE.items():
            answer = await _raw(fed.heron.ports["xmpp.s2s_listen"], data)
            assert answer.endswith(b"</stream:stream>"), (attack, answer[-200:])
            # Over direct TLS too (XEP-0368), after the handshake.
            answer = await _raw(fed.heron.ports["xmpp.s2s_tls_listen"], data, tls=True)
            assert answer.endswith(b"</stream:stream>"), (attack, answer[-200:])
        # Plain XML at the direct-TLS port, garbage where the STARTTLS handshake belongs.
        assert b"<stream" not in await _raw(fed.heron.ports["xmpp.s2s_tls_listen"], _HEADER)
        assert await _garbage_after_starttls(fed.heron.ports["xmpp.s2s_listen"])
        # The other server's stream and the client's session go on.
        await evil.send(chat(f"eve@{EVIL}", f"roland@{DOMAIN}", "still here"))
        assert b"still here" in await next_message(roland)
    assert "Traceback" not in fed.heron.log()


async def _garbage_after_starttls(port: int) -> bytes:
    """<proceed/> answered with bytes that are no TLS handshake; what came before the end."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
    try:
        writer.write(_HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        received = b""
        while b"<proceed" not in received:
            received += await asyncio.wait_for(reader.read(65536), TIMEOUT)
        writer.write(b"GET / HTTP/1.1\r\n\r\n" + bytes(range(256)) * 8)
        return received + await _read_all(reader)
    finally:
        writer.close()


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
            await roland.send(chat(f"roland@{DOMAIN}", f"eve@{EVIL}", "inside"))
            bounce = await next_message(roland)
    finally:
        listener.close()
    assert b"<remote-server-not-found " in bounce, bounce
    assert fed.dns.asked(f"_xmpp-server._tcp.{EVIL}")  # it did look
    assert accepted == []


# --- 5. limits ------------------------------------------------------------------------------

LIMITED = {
    "xmpp": {"s2s_queue": 2, "s2s_read_rate": 16_384, "s2s_streams_per_domain": 1},
    "limits": {"handshake_timeout": 3, "connections_per_source": 3},
}


async def test_stanzas_waiting_for_a_domain_are_bounded(tmp_path: Path) -> None:
    """xmpp.s2s_queue: past it, a stanza bounces with resource-constraint at once."""
    with federated(tmp_path, LIMITED) as fed:
        slow = "slow.example"  # its DNS never answers: the stream is never set up
        fed.dns.silent.update({slow, f"_xmpp-server._tcp.{slow}", f"_xmpps-server._tcp.{slow}"})
        async with online(fed) as roland:
            for n in range(3):
                await roland.send(chat(f"roland@{DOMAIN}", f"eve@{slow}", f"queued {n}"))
            bounce = await next_message(roland)
        assert b"<resource-constraint " in bounce


async def test_s2s_connections_are_held_to_the_connection_limits(tmp_path: Path) -> None:
    with federated(tmp_path, LIMITED) as fed:
        port = fed.heron.ports["xmpp.s2s_listen"]
        # limits.handshake_timeout: a peer that says nothing is closed.
        silent = await asyncio.open_connection(HOST, port, local_addr=("127.0.0.5", 0))
        with_header = await asyncio.open_connection(HOST, port, local_addr=("127.0.0.5", 0))
        with_header[1].write(_HEADER)
        assert b"<connection-timeout " in await _read_all(with_header[0])
        assert b"<connection-timeout " in await _read_all(silent[0])
        # limits.connections_per_source (3): the fourth from one source is dropped unanswered.
        held = [await _opened("127.0.0.6", port) for _ in range(3)]
        refused = await asyncio.open_connection(HOST, port, local_addr=("127.0.0.6", 0))
        assert await _read_all(refused[0]) == b""
        for _reader, writer in held:
            writer.close()
        assert wait_for(lambda: "xmpp s2s" in fed.heron.log()), fed.heron.log()


async def _opened(source: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection heron accepted and answered (a header and features)."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    writer.write(_HEADER)
    received = b""
    while b"</stream:features>" not in received:
        received += await asyncio.wait_for(reader.read(65536), TIMEOUT)
    return reader, writer


async def test_a_flooding_server_is_read_more_slowly_and_its_streams_are_capped(
    tmp_path: Path,
) -> None:
    """xmpp.s2s_read_rate (Prosody's mod_limits s2sin) and xmpp.s2s_streams_per_domain."""
    with federated(tmp_path, LIMITED) as fed:
        async with online(fed) as roland, evil_stream(fed) as evil:
            await evil.authenticated()
            evil.writer.write(b" " * 1_000_000)  # whitespace between stanzas is allowed
            await _logged(fed.heron, "slowed to 16384 bytes/s (xmpp.s2s_read_rate)")
            # A second stream of the same domain is one too many (from another source).
            async with dial(fed.heron, EVIL, fed.evil, fed.ca, source="127.0.0.8") as second:
                assert b"<resource-constraint " in await refusal(second)
            # Clients are served meanwhile.
            async with online(fed, "mallory") as mallory:
                await mallory.send(chat(f"mallory@{DOMAIN}", f"roland@{DOMAIN}", "hello"))
                assert b"hello" in await next_message(roland)
        assert "xmpp.s2s_streams_per_domain" in fed.heron.log()


async def _logged(heron: Target, text: str) -> None:
    """Wait for ``text`` in heron's log (it arrives through a pipe, a little later)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while text not in heron.log():
        assert asyncio.get_running_loop().time() < deadline, f"{text!r} never logged"
        await asyncio.sleep(0.05)


# --- 6. dialback ----------------------------------------------------------------------------


async def test_a_forged_dialback_key_is_refused(tmp_path: Path) -> None:
    """XEP-0220 §2.2: heron asks the claimed domain's own server, which does not vouch for
    the key; the attacker gets type='invalid' and not-authorized."""
    victim = "victim.example"
    with federated(tmp_path, {"xmpp": {"s2s_allowed_destinations": ["127.0.0.0/8"]}}) as fed:
        async with authoritative(victim, fed.ca.issue(victim), fed.ca) as owner:
            fed.dns.add(f"_xmpp-server._tcp.{victim}", "SRV", f"0 0 {owner.port} {victim}.")
            fed.dns.add(victim, "A", HOST)
            async with dial(fed.heron, victim, fed.stranger, fed.ca) as forger:
                answer = await refusal(forger)
            assert b'type="invalid"' in answer and b"<not-authorized " in answer, answer
            assert not any(isinstance(event, Authenticated) for event in forger.events)
            assert owner.accepted  # heron did ask the domain's server


async def test_a_forger_that_goes_quiet_is_still_cut_off_at_once(tmp_path: Path) -> None:
    """The invalid verdict closes the connection too: a forger that never answers the
    stream's end does not keep its socket until limits.handshake_timeout."""
    victim = "victim.example"
    overrides = {"xmpp": {"s2s_allowed_destinations": ["127.0.0.0/8"]}}
    with federated(tmp_path, overrides) as fed:
        async with authoritative(victim, fed.ca.issue(victim), fed.ca) as owner:
            fed.dns.add(f"_xmpp-server._tcp.{victim}", "SRV", f"0 0 {owner.port} {victim}.")
            fed.dns.add(victim, "A", HOST)
            header = _HEADER.replace(EVIL.encode(), victim.encode())
            claim = (
                f"<db:result xmlns:db='jabber:server:dialback' from='{victim}' to='{DOMAIN}'>"
                "00112233445566778899aabbccddeeff</db:result>"
            ).encode()
            answer = await _raw(fed.heron.ports["xmpp.s2s_tls_listen"], header + claim, tls=True)
        assert b'type="invalid"' in answer and answer.endswith(b"</stream:stream>"), answer
