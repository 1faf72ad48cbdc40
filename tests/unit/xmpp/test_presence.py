"""Presence (RFC 6121 §3, §4) as transcripts between fake clients on one server."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import parse_jid
from heron.xmpp.stanza import qname
from heron.xmpp.subscription import Subscription
from tests.unit.xmpp.im_harness import (
    ROSTER,
    FakeSession,
    Server,
    error_condition,
    im_server,
    items,
    text,
)

QUERY = qname(ROSTER, "query")
ROLAND = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com")
SHOW = qname("jabber:client", "show")


@pytest.fixture
def server() -> Server:
    return im_server()


def presences(sent: list[Element]) -> list[tuple[str | None, str | None]]:
    return [(s.get("type"), s.get("from")) for s in sent if s.tag.endswith("presence")]


def pushes(sent: list[Element]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for s in sent:
        query = s.find(QUERY)
        if s.get("type") == "set" and query is not None:
            found.extend(items(query).values())
    return found


async def subscribe(server: Server, user: FakeSession, contact: FakeSession) -> None:
    """``user`` asks ``contact``, who approves (§3.1)."""
    await server.send(user, f'<presence to="{contact.jid.bare}" type="subscribe"/>')
    await server.send(contact, f'<presence to="{user.jid.bare}" type="subscribed"/>')


async def test_rfc6121_3_1_subscription_request_and_approval_transcript(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    roland.take()
    lucy.take()

    await server.send(
        roland, '<presence to="lucy@falcot.com" type="subscribe"><status>hi</status></presence>'
    )
    assert pushes(roland.take()) == [
        {"jid": "lucy@falcot.com", "subscription": "none", "ask": "subscribe"}
    ]
    request = lucy.take_one()
    assert (request.get("type"), request.get("from")) == ("subscribe", "roland@falcot.com")
    assert request.findtext(qname("jabber:client", "status")) == "hi"

    await server.send(lucy, '<presence to="roland@falcot.com" type="subscribed"/>')
    assert pushes(lucy.take()) == [{"jid": "roland@falcot.com", "subscription": "from"}]
    sent = roland.take()
    assert pushes(sent) == [{"jid": "lucy@falcot.com", "subscription": "to"}]
    assert presences(sent) == [("subscribed", "lucy@falcot.com"), (None, "lucy@falcot.com/home")]

    # §4.4: Lucy's updates reach Roland now; Roland's do not reach Lucy yet.
    await server.send(lucy, "<presence><show>away</show></presence>")
    update = roland.take_one()
    assert (update.get("from"), update.findtext(SHOW)) == ("lucy@falcot.com/home", "away")
    assert presences(lucy.take()) == [(None, "lucy@falcot.com/home")]  # her own, §4.4.2
    await server.send(roland, "<presence><show>dnd</show></presence>")
    assert [text(s) for s in lucy.take()] == []

    await subscribe(server, lucy, roland)
    assert (await server.roster(roland))["lucy@falcot.com"]["subscription"] == "both"
    assert (await server.roster(lucy))["roland@falcot.com"]["subscription"] == "both"
    await server.send(roland, "<presence><show>chat</show></presence>")
    update = lucy.take_one()
    assert (update.get("from"), update.findtext(SHOW)) == ("roland@falcot.com/laptop", "chat")


async def test_rfc6121_3_1_3_approval_while_offline_is_kept(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, '<presence to="lucy@falcot.com" type="subscribe"/>')
    await server.router.unbind(roland)

    # Lucy was offline; the request waits for her, at every login until answered.
    for resource in ("home", "phone"):
        lucy = await server.login("lucy@falcot.com", resource)
        assert ("subscribe", "roland@falcot.com") in presences(lucy.take())
        await server.router.unbind(lucy)

    lucy = await server.login("lucy@falcot.com", "home")
    lucy.take()
    await server.send(lucy, '<presence to="roland@falcot.com" type="subscribed"/>')
    await server.send(lucy, "<presence><show>away</show></presence>")

    # Roland, offline meanwhile, finds the subscription and Lucy's presence at login.
    roland = await server.login("roland@falcot.com", "laptop")
    sent = roland.take()
    roster = next(s.find(QUERY) for s in sent if s.get("id") == "r1")
    assert items(roster)["lucy@falcot.com"]["subscription"] == "to"
    seen = [s for s in sent if s.get("from") == "lucy@falcot.com/home"]
    assert [s.findtext(SHOW) for s in seen] == ["away"]
    # The answered request is not shown again.
    lucy_again = await server.login("lucy@falcot.com", "phone")
    assert ("subscribe", "roland@falcot.com") not in presences(lucy_again.take())


async def test_rfc6121_3_4_pre_approval_answers_without_asking(server: Server) -> None:
    lucy = await server.login("lucy@falcot.com", "home")
    roland = await server.login("roland@falcot.com", "laptop")
    lucy.take()
    roland.take()
    await server.send(lucy, '<presence to="roland@falcot.com" type="subscribed"/>')
    assert pushes(lucy.take()) == [
        {"jid": "roland@falcot.com", "subscription": "none", "approved": "true"}
    ]
    assert roland.take() == []
    await server.send(roland, '<presence to="lucy@falcot.com" type="subscribe"/>')
    assert pushes(lucy.take()) == [{"jid": "roland@falcot.com", "subscription": "from"}]
    assert ("subscribed", "lucy@falcot.com") in presences(roland.take())


async def test_rfc6121_a_3_1_subscribe_from_an_approved_contact_is_answered_by_the_server(
    server: Server,
) -> None:
    # Roland's server lost his side (a restored backup); Lucy's still says "from".
    store = server.router.roster.store
    await store.put(LUCY, RosterItem(ROLAND, subscription=Subscription.FROM))
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    roland.take()
    lucy.take()
    await server.send(roland, '<presence to="lucy@falcot.com" type="subscribe"/>')
    assert lucy.take() == []
    sent = roland.take()
    assert ("subscribed", "lucy@falcot.com") in presences(sent)
    assert pushes(sent)[-1] == {"jid": "lucy@falcot.com", "subscription": "to"}


async def test_rfc6121_3_3_unsubscribe_ends_presence_from_the_contact(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await subscribe(server, roland, lucy)
    roland.take()
    lucy.take()
    await server.send(roland, '<presence to="lucy@falcot.com" type="unsubscribe"/>')
    sent = roland.take()
    assert pushes(sent) == [{"jid": "lucy@falcot.com", "subscription": "none"}]
    assert presences(sent) == [("unavailable", "lucy@falcot.com/home")]
    sent = lucy.take()
    assert pushes(sent) == [{"jid": "roland@falcot.com", "subscription": "none"}]
    assert presences(sent) == [("unsubscribe", "roland@falcot.com")]
    await server.send(lucy, "<presence><show>away</show></presence>")
    assert roland.take() == []


async def test_rfc6121_3_2_cancelling_a_subscription(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await subscribe(server, roland, lucy)
    roland.take()
    await server.send(lucy, '<presence to="roland@falcot.com" type="unsubscribed"/>')
    sent = roland.take()
    assert pushes(sent) == [{"jid": "lucy@falcot.com", "subscription": "none"}]
    assert sorted(presences(sent)) == [
        ("unavailable", "lucy@falcot.com/home"),
        ("unsubscribed", "lucy@falcot.com"),
    ]


async def test_rfc6121_4_3_login_probes_and_broadcasts_to_contacts(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await subscribe(server, roland, lucy)
    await subscribe(server, lucy, roland)
    await server.router.unbind(roland)
    assert presences(lucy.take())[-1] == ("unavailable", "roland@falcot.com/laptop")

    phone = await server.login("roland@falcot.com", "phone", priority=-1)
    sent = phone.take()
    # Its own presence comes back (§4.2.2), and Lucy's answers the probe (§4.3).
    assert presences(sent) == [(None, "roland@falcot.com/phone"), (None, "lucy@falcot.com/home")]
    assert presences(lucy.take()) == [(None, "roland@falcot.com/phone")]

    laptop = await server.login("roland@falcot.com", "laptop")
    assert (None, "roland@falcot.com/phone") in presences(laptop.take())
    assert presences(phone.take()) == [(None, "roland@falcot.com/laptop")]


async def test_rfc6121_4_6_directed_presence_is_followed_by_unavailable(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    raphael = await server.login("raphael@falcot.com", "desk")
    raphael.take()
    await server.send(roland, '<presence to="raphael@falcot.com/desk"/>')
    assert presences(raphael.take()) == [(None, "roland@falcot.com/laptop")]
    await server.send(roland, "<presence><show>away</show></presence>")
    assert raphael.take() == []  # §4.6.3: no updates, not a contact
    await server.router.unbind(roland)
    assert presences(raphael.take()) == [("unavailable", "roland@falcot.com/laptop")]


async def test_rfc6121_4_5_unavailable_goes_to_contacts_and_directed_recipients_once(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await subscribe(server, lucy, roland)
    await server.send(roland, '<presence to="lucy@falcot.com/home"/>')
    lucy.take()
    await server.send(roland, '<presence type="unavailable"><status>bye</status></presence>')
    gone = lucy.take_one()
    assert gone.get("type") == "unavailable"
    assert gone.findtext(qname("jabber:client", "status")) == "bye"
    await server.router.unbind(roland)
    assert lucy.take() == []


async def test_rfc6121_4_7_2_3_priority_out_of_range_is_a_bad_request(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    for priority in ("128", "high"):
        await server.send(roland, f"<presence><priority>{priority}</priority></presence>")
        assert error_condition(roland.take_one()) == "bad-request"


async def test_rfc6121_4_3_2_probes_from_strangers_are_not_answered(server: Server) -> None:
    await server.login("lucy@falcot.com", "home")
    raphael = await server.login("raphael@falcot.com", "desk")
    raphael.take()
    await server.send(raphael, '<presence to="lucy@falcot.com" type="probe"/>')
    assert raphael.take() == []


async def test_subscription_without_a_recipient_is_a_bad_request(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    await server.send(roland, '<presence type="subscribe"/>')
    assert error_condition(roland.take_one()) == "bad-request"


async def test_subscription_to_a_jid_too_long_for_rosters_is_not_acceptable(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    await server.send(roland, f'<presence to="{"a" * 400}@falcot.com" type="subscribe"/>')
    assert error_condition(roland.take_one()) == "not-acceptable"
    assert await server.roster(roland) == {}
