"""The federation's outgoing routes over time: one per (local, remote) pair while it is
used, none left behind by a domain that could not be reached. A peer claiming domain
after domain by dialback makes heron look each one up; without this, every claim would
leave a route in memory for the life of the process."""

from __future__ import annotations

import asyncio
import ssl
from xml.etree.ElementTree import Element

from heron.connections import ConnectionLimiter
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.s2s.locate import ServerLocation
from heron.xmpp.s2s.server import Federation, FederationSettings

FALCOT = "falcot.com"


async def test_a_domain_that_cannot_be_reached_leaves_no_route_behind() -> None:
    bounced: list[StanzaCondition] = []

    async def deliver(_stanza: Element, _sender: JID, _to: JID) -> None:
        raise AssertionError("nothing comes in here")

    async def bounce(_stanza: Element, error: StanzaError, _sender: JID, _to: JID) -> None:
        bounced.append(error.condition)

    async def nowhere(_domain: str) -> ServerLocation:
        return ServerLocation(())

    federation = Federation(
        FederationSettings(local_domains=frozenset({FALCOT})),
        deliver=deliver,
        bounce=bounce,
        locate=nowhere,
        server_tls=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),
        client_tls=ssl.create_default_context(),
        connections=ConnectionLimiter(0),
        dialback_secret=b"secret",
    )
    sender = parse_jid(f"roland@{FALCOT}")
    for n in range(50):
        await federation.send(Element("message"), sender, parse_jid(f"eve@d{n}.example"))
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    await asyncio.gather(*others)
    assert bounced == [StanzaCondition.REMOTE_SERVER_NOT_FOUND] * 50
    assert federation._routes == {}
