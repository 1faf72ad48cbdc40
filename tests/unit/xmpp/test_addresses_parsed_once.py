"""An XMPP stanza's addresses are prepared once, at the edge, and carried parsed after.

The client stream parses ``to`` and stamps ``from``; past it, presence broadcasts,
iq replies, bounces and group chat travel with the JIDs their senders already
hold. Preparing an address (RFC 7622: NFC, case folding, character checks) costs
more than routing the stanza, so every preparation past the edge is counted here
by wrapping the domainpart preparation that both ``parse_jid`` and ``JID.make`` run.
The accounts and the room are named for this test alone, so that no cache warmed
by another test could hide a parse.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import heron.xmpp.jid
from heron.store.memory import MemoryRoomStore
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.service import MucService
from heron.xmpp.stanza import NS
from heron.xmpp.subscription import Subscription
from tests.unit.xmpp.im_harness import FakeSession, Server, error_condition, im_server, stanza

ADA = "ada.parse-once@falcot.com"
GRACE = "grace.parse-once@falcot.com"
ROOM = "parse-once@conference.falcot.com"


class Preparations:
    """Counts address preparations while ``counting`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.counting = False
        prepare = heron.xmpp.jid._domain

        def counted(part: str) -> str:
            if self.counting:
                self.count += 1
            return prepare(part)

        monkeypatch.setattr(heron.xmpp.jid, "_domain", counted)


@pytest.fixture
def preparations(monkeypatch: pytest.MonkeyPatch) -> Preparations:
    return Preparations(monkeypatch)


def edge(server: Server, preparations: Preparations) -> Callable[[FakeSession, str], object]:
    """What the client stream does (``from`` stamped, ``to`` parsed, uncounted), then the
    router and everything behind it, counted."""

    async def send(session: FakeSession, xml: str) -> None:
        sent = stanza(xml)
        sent.set("from", str(session.jid))
        to = sent.get("to")
        parsed = parse_jid(to) if to else None
        preparations.counting = True
        try:
            await server.router.receive_from_session(session, sent, parsed)
        finally:
            preparations.counting = False

    return send


async def test_no_address_is_prepared_again_past_the_client_stream(
    preparations: Preparations,
) -> None:
    server = im_server([ADA, GRACE])
    muc = MucService("conference.falcot.com", server.router, MemoryRoomStore(), [], ["falcot.com"])
    server.router.register_component(muc)
    ada_jid, grace_jid = parse_jid(ADA), parse_jid(GRACE)
    store = server.router.roster.store
    await store.put(ada_jid, RosterItem(grace_jid, subscription=Subscription.BOTH))
    await store.put(grace_jid, RosterItem(ada_jid, subscription=Subscription.BOTH))
    ada = await server.connect(ADA, "desk")
    grace = await server.connect(GRACE, "phone")
    send = edge(server, preparations)

    # Presence: broadcast to a subscriber, probes, answers to the probes.
    await send(ada, "<presence/>")
    await send(grace, "<presence/>")
    assert {s.get("from") for s in ada.take()} >= {f"{GRACE}/phone"}
    # A message bounced from an account that does not exist (RFC 6121 §8.5.2.2.1).
    await send(ada, '<message to="nobody.parse-once@falcot.com" id="m1"><body>?</body></message>')
    assert error_condition(ada.take_one("message")) == "service-unavailable"
    # Group chat: the joins, the room's presence and subject, a message to both occupants.
    await send(ada, f'<presence to="{ROOM}/ada"/>')  # no MUC <x/>: an instant room
    await send(grace, f'<presence to="{ROOM}/grace"><x xmlns="{NS.MUC}"/></presence>')
    ada.take()
    grace.take()
    await send(ada, f'<message to="{ROOM}" type="groupchat"><body>hello</body></message>')
    assert [s.get("from") for s in grace.take()] == [f"{ROOM}/ada"]
    assert [s.get("to") for s in ada.take()] == [f"{ADA}/desk"]

    assert preparations.count == 0


def test_the_counter_sees_a_preparation(preparations: Preparations) -> None:
    """The count above is zero because nothing prepared, not because nothing was watched."""
    preparations.counting = True
    JID.make("ada", "falcot.com")
    parse_jid(GRACE)
    assert preparations.count == 2
