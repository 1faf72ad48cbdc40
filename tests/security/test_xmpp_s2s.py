"""Attacks on heron's federation side (issue 11, Safety): another server, or whoever
poses as one, against the s2s listeners of a running heron.

The attacker is heron's own s2s stream over a real socket (``s2s_peer.py``) with a
certificate for evil.example from a CA the target trusts (``xmpp.s2s_ca_file``), or
raw bytes. The target's DNS is a stub of the test's (``dns.servers``).
"""

from __future__ import annotations

import asyncio
import re
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


@pytest.mark.parametrize("sender", [f"admin@{DOMAIN}", "boss@prosody.example"])
async def test_a_peer_speaking_for_a_domain_it_did_not_authenticate_is_cut_off(
    fed: Federated, sender: str
) -> None:
    """RFC 6120 §4.9.3.9: invalid-from, and the stanza reaches nobody."""
    async with online(fed) as roland:
        async with evil_stream(fed) as evil:
            assert (await evil.authenticated()).method is AuthMethod.EXTERNAL
            await evil.send(chat(sender, f"roland@{DOMAIN}", "spoofed"))
            assert b"<invalid-from " in await evil.ended()
        # A genuine message sent afterwards is the first roland sees.
        async with evil_stream(fed) as evil:
            await evil.authenticated()
            await evil.send(chat(f"eve@{EVIL}", f"roland@{DOMAIN}", "genuine"))
            message = await next_message(roland)
        assert b"genuine" in message and b"spoofed" not in roland.received
