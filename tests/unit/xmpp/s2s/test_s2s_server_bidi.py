"""XEP-0288 in the federation glue: two Federation objects on loopback, certificates from a
test CA. The stream falcot.com opens carries example.org's answers too, and once it ends
example.org's next stanza needs a stream of its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

from heron.config import ListenAddress
from heron.connections import ConnectionLimiter
from heron.listeners import Accepting
from heron.peer_tls import s2s_client_context, s2s_server_context
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_stanza_jid
from heron.xmpp.s2s.locate import ServerLocation, Target
from heron.xmpp.s2s.server import Federation, FederationSettings
from heron.xmpp.stanza import NS, qname
from tests.support.config import free_port
from tests.support.federation.ca import TestCa, make_ca

FALCOT, EXAMPLE = "falcot.com", "example.org"
WAIT = 30.0  # seconds a step may take before the test fails rather than hangs


@dataclass
class Side:
    """One domain's Federation and what reached its router."""

    domain: str
    port: int
    delivered: asyncio.Queue[tuple[JID, JID]] = field(default_factory=asyncio.Queue)
    bounced: asyncio.Queue[StanzaCondition] = field(default_factory=asyncio.Queue)
    federation: Federation | None = None
    listener: Accepting | None = None

    async def stop(self) -> None:
        """As the XMPP component stops: the listener, then the streams."""
        if self.listener is not None:
            self.listener.close_listener()
        await self.fed.stop()

    async def deliver(self, stanza: Element, sender: JID, to: JID) -> None:
        await self.delivered.put((sender, to))

    async def bounce(self, stanza: Element, error: StanzaError, sender: JID, to: JID) -> None:
        await self.bounced.put(error.condition)

    @property
    def fed(self) -> Federation:
        assert self.federation is not None
        return self.federation


def message(sender: str, to: str) -> tuple[Element, JID, JID]:
    stanza = Element(qname(NS.CLIENT, "message"), {"from": sender, "to": to, "type": "chat"})
    SubElement(stanza, qname(NS.CLIENT, "body")).text = "Salut"
    return stanza, parse_stanza_jid(sender), parse_stanza_jid(to)


async def start(side: Side, ports: dict[str, int], ca: TestCa) -> None:
    files = ca.issue(side.domain)

    async def locate(domain: str) -> ServerLocation:
        return ServerLocation((Target("127.0.0.1", ports[domain], False, domain),))

    side.federation = Federation(
        FederationSettings(local_domains=frozenset({side.domain})),
        deliver=side.deliver,
        bounce=side.bounce,
        locate=locate,
        server_tls=s2s_server_context(files.cert, files.key, ca.cafile),
        client_tls=s2s_client_context(files.cert, files.key, ca.cafile),
        connections=ConnectionLimiter(0),
        dialback_secret=f"secret of {side.domain}".encode(),
    )
    address = ListenAddress("127.0.0.1", side.port)
    side.listener = Accepting("xmpp", address, side.fed.handoff(), tls=False)
    side.listener.bind()
    await side.listener.start()


async def test_xep0288_one_connection_both_ways_then_a_stream_of_our_own(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    falcot, example = Side(FALCOT, free_port()), Side(EXAMPLE, free_port())
    ports = {FALCOT: falcot.port, EXAMPLE: example.port}
    await start(falcot, ports, ca)
    await start(example, ports, ca)
    try:
        async with asyncio.timeout(WAIT):
            await falcot.fed.send(*message("roland@falcot.com", "bob@example.org"))
            assert (await example.delivered.get())[1] == JID("bob", EXAMPLE)
            await example.fed.send(*message("bob@example.org", "roland@falcot.com"))
            assert (await falcot.delivered.get())[0] == JID("bob", EXAMPLE)
        assert example.fed.counters["s2s_outgoing"] == 0
        assert [(row["direction"], row["bidi"]) for row in falcot.fed.rows()] == [("out", True)]
        assert [(row["direction"], row["bidi"]) for row in example.fed.rows()] == [("in", True)]

        await falcot.stop()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*example.fed._tasks)  # the incoming stream's end
        assert example.fed.rows() == []
        async with asyncio.timeout(WAIT):
            await example.fed.send(*message("bob@example.org", "roland@falcot.com"))
            # falcot.com no longer listens: example.org's own connection fails.
            assert await example.bounced.get() is StanzaCondition.REMOTE_SERVER_TIMEOUT
    finally:
        await falcot.stop()
        await example.stop()
