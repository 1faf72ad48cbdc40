"""Direct MUC invitations (XEP-0249) through the router: an invitation is a message like
any other, so it is delivered, kept offline and carbon-copied with every attribute intact.

The server has nothing to advertise (§3 asks it of the invitee's client) and nothing to
rewrite: the tests prove it leaves the <x/> alone on each path an invitation can take.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import FakeSession, Server, im_server

CONFERENCE = NS.CONFERENCE.value
CARBONS = NS.CARBONS.value
# §2: 'jid' is required; 'password', 'reason', 'continue' and 'thread' are optional.
ATTRIBUTES = {
    "jid": "darkcave@conference.falcot.com",
    "password": "cauldronburn",
    "reason": "Hey Lucy, this is the place for all good witches!",
    "continue": "true",
    "thread": "e0ffe42b28561960c6b12b944a092794b9683a38",
}
INVITATION = (
    '<message to="{to}" id="i1"><x xmlns="'
    + CONFERENCE
    + '" '
    + " ".join(f'{name}="{value}"' for name, value in ATTRIBUTES.items())
    + "/></message>"
)


@pytest.fixture
def server() -> Server:
    return im_server()


def invitation_in(message: Element) -> dict[str, str]:
    """The attributes of the one jabber:x:conference <x/> of ``message``."""
    (x,) = message.findall(qname(CONFERENCE, "x"))
    assert len(x) == 0 and not (x.text or "").strip()
    return dict(x.attrib)


async def carbons_on(server: Server, account: str, resource: str) -> FakeSession:
    session = await server.login(account, resource)
    await server.send(session, f'<iq type="set" id="c1"><enable xmlns="{CARBONS}"/></iq>')
    session.take()
    return session


async def test_xep0249_2_an_invitation_reaches_the_invitee_with_its_attributes(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "desktop")
    lucy = await server.login("lucy@falcot.com", "broom")
    lucy.take()
    for to in ("lucy@falcot.com", str(lucy.jid)):  # bare (RFC 6121 §8.5.2) and full JID
        await server.send(roland, INVITATION.format(to=to))
        message = lucy.take_one("message")
        assert (message.get("from"), message.get("to"), message.get("id")) == (
            str(roland.jid),
            to,
            "i1",
        )
        assert invitation_in(message) == ATTRIBUTES
    assert [s for s in roland.take() if s.tag == qname(NS.CLIENT, "message")] == []


async def test_xep0249_2_an_invitation_to_an_offline_invitee_waits_for_them(
    server: Server,
) -> None:
    """A body-less invitation is worth storing (XEP-0160 §3): it is no chat state."""
    roland = await server.login("roland@falcot.com", "desktop")
    roland.take()
    await server.send(roland, INVITATION.format(to="lucy@falcot.com"))
    assert roland.take() == []  # stored, not bounced
    lucy = await server.login("lucy@falcot.com", "broom")
    (message,) = [s for s in lucy.take() if s.tag == qname(NS.CLIENT, "message")]
    assert message.get("from") == str(roland.jid)
    assert invitation_in(message) == ATTRIBUTES
    assert message.find(qname(NS.DELAY, "delay")) is not None


async def test_xep0249_xep0280_6_1_an_invitation_is_copied_to_both_accounts_other_devices(
    server: Server,
) -> None:
    """XEP-0280 §6.1: direct invitations "SHOULD be carbon-copied", sent and received."""
    desktop = await carbons_on(server, "roland@falcot.com", "desktop")
    phone = await carbons_on(server, "roland@falcot.com", "phone")
    broom = await carbons_on(server, "lucy@falcot.com", "broom")
    cauldron = await carbons_on(server, "lucy@falcot.com", "cauldron")
    for session in (desktop, phone, broom, cauldron):
        session.take()
    await server.send(desktop, INVITATION.format(to=broom.jid))
    assert invitation_in(broom.take_one("message")) == ATTRIBUTES
    for session, kind in ((phone, "sent"), (cauldron, "received")):
        wrapper = session.take_one("message")
        forwarded = wrapper.find(f"{{{CARBONS}}}{kind}/{{{NS.FORWARD}}}forwarded")
        assert forwarded is not None and len(forwarded) == 1
        assert (forwarded[0].get("from"), forwarded[0].get("to")) == (
            str(desktop.jid),
            str(broom.jid),
        )
        assert invitation_in(forwarded[0]) == ATTRIBUTES
    assert desktop.take() == []
