"""The roster (RFC 6121 §2): get, versioning, set, remove, pushes and limits."""

from __future__ import annotations

import pytest

from heron.xmpp.stanza import qname
from tests.unit.xmpp.im_harness import ROSTER, Server, error_condition, im_server, items

QUERY = qname(ROSTER, "query")


@pytest.fixture
def server() -> Server:
    return im_server()


def roster_set(item: str, id_: str = "set1") -> str:
    return f'<iq type="set" id="{id_}"><query xmlns="{ROSTER}">{item}</query></iq>'


async def test_rfc6121_2_3_set_adds_an_item_and_pushes_it_to_interested_resources(
    server: Server,
) -> None:
    laptop = await server.login("roland@falcot.com", "laptop")
    phone = await server.login("roland@falcot.com", "phone")
    quiet = await server.login("roland@falcot.com", "bot", roster=False)
    for session in (laptop, phone, quiet):
        session.take()
    item = (
        '<item jid="Lucy@Falcot.com" name="Lucy"><group>Friends</group><group>Work</group></item>'
    )
    await server.send(laptop, roster_set(item))
    sent = laptop.take()
    push, result = sent
    assert (result.get("type"), result.get("id")) == ("result", "set1")
    assert push.get("type") == "set" and push.get("to") == "roland@falcot.com/laptop"
    query = push.find(QUERY)
    assert query is not None and query.get("ver") == "1"
    assert items(query) == {
        "lucy@falcot.com": {"jid": "lucy@falcot.com", "name": "Lucy", "subscription": "none"}
    }
    assert [g.text for g in query[0]] == ["Friends", "Work"]
    assert phone.take_one().get("type") == "set"
    assert quiet.take() == []
    assert await server.roster(laptop) == {
        "lucy@falcot.com": {"jid": "lucy@falcot.com", "name": "Lucy", "subscription": "none"}
    }


async def test_rfc6121_2_6_versioning_current_version_gets_an_empty_result(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, roster_set('<item jid="lucy@falcot.com"/>'))
    await server.send(roland, roster_set('<item jid="raphael@falcot.com"/>'))
    roland.take()
    await server.send(roland, f'<iq type="get" id="v"><query xmlns="{ROSTER}" ver="2"/></iq>')
    current = roland.take_one()
    assert current.get("type") == "result" and len(current) == 0
    await server.send(roland, f'<iq type="get" id="v"><query xmlns="{ROSTER}" ver="1"/></iq>')
    stale = roland.take_one().find(QUERY)
    assert stale is not None and stale.get("ver") == "2"
    assert set(items(stale)) == {"lucy@falcot.com", "raphael@falcot.com"}
    # Later changes still come as pushes carrying the new version.
    await server.send(roland, roster_set('<item jid="lucy@falcot.com" name="L"/>'))
    push = roland.take()[0].find(QUERY)
    assert push is not None and push.get("ver") == "3"


async def test_rfc6121_2_3_3_a_client_cannot_set_the_subscription(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    item = '<item jid="lucy@falcot.com" subscription="both" ask="subscribe"/>'
    await server.send(roland, roster_set(item))
    assert await server.roster(roland) == {
        "lucy@falcot.com": {"jid": "lucy@falcot.com", "subscription": "none"}
    }


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        ('<item jid="lucy@@falcot.com"/>', "jid-malformed"),
        ("<item/>", "bad-request"),
        ('<item jid="lucy@falcot.com/phone"/>', "bad-request"),
        ('<item jid="lucy@falcot.com"/><item jid="raphael@falcot.com"/>', "bad-request"),
        ("", "bad-request"),
        ('<item jid="lucy@falcot.com"><group>A</group><group>A</group></item>', "bad-request"),
        ('<item jid="lucy@falcot.com"><group></group></item>', "not-acceptable"),
        (f'<item jid="lucy@falcot.com" name="{"n" * 1024}"/>', "not-acceptable"),
        ('<item jid="nobody@falcot.com" subscription="remove"/>', "item-not-found"),
        (f'<item jid="{"a" * 400}@falcot.com"/>', "not-acceptable"),
    ],
)
async def test_rfc6121_2_3_3_bad_roster_sets_are_refused(
    server: Server, payload: str, condition: str
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    await server.send(roland, roster_set(payload))
    assert error_condition(roland.take_one()) == condition
    assert await server.roster(roland) == {}


async def test_rfc6121_2_1_5_only_the_account_reads_its_roster(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    get = f'<query xmlns="{ROSTER}"/>'
    await server.send(roland, f'<iq type="get" id="s" to="falcot.com">{get}</iq>')
    assert error_condition(roland.take_one()) == "forbidden"
    await server.send(roland, f'<iq type="get" id="o" to="lucy@falcot.com">{get}</iq>')
    assert error_condition(roland.take_one()) == "service-unavailable"


async def test_rfc6121_2_5_2_roster_size_is_capped() -> None:
    server = im_server(max_roster_items=2)
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, roster_set('<item jid="a@falcot.com"/>'))
    await server.send(roland, roster_set('<item jid="b@falcot.com"/>'))
    roland.take()
    await server.send(roland, roster_set('<item jid="c@falcot.com"/>'))
    assert error_condition(roland.take_one()) == "not-allowed"
    # Updating an existing item is still fine.
    await server.send(roland, roster_set('<item jid="a@falcot.com" name="A"/>'))
    assert [s.get("type") for s in roland.take()] == ["set", "result"]


async def test_rfc6121_2_5_2_remove_cancels_both_subscriptions(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "home")
    await server.send(roland, '<presence to="lucy@falcot.com" type="subscribe"/>')
    await server.send(lucy, '<presence to="roland@falcot.com" type="subscribed"/>')
    await server.send(lucy, '<presence to="roland@falcot.com" type="subscribe"/>')
    await server.send(roland, '<presence to="lucy@falcot.com" type="subscribed"/>')
    assert (await server.roster(roland))["lucy@falcot.com"]["subscription"] == "both"
    assert (await server.roster(lucy))["roland@falcot.com"]["subscription"] == "both"
    lucy.take()
    await server.send(roland, roster_set('<item jid="lucy@falcot.com" subscription="remove"/>'))
    sent = roland.take()
    push, result = (s for s in sent if s.tag.endswith("iq"))
    assert result.get("type") == "result"
    # Lucy's server, told Roland unsubscribed, sends him her unavailable (§3.3.3).
    assert [(s.get("type"), s.get("from")) for s in sent if s.tag.endswith("presence")] == [
        ("unavailable", "lucy@falcot.com/home")
    ]
    query = push.find(QUERY)
    assert query is not None
    assert items(query)["lucy@falcot.com"]["subscription"] == "remove"
    received = [(s.get("type"), s.get("from")) for s in lucy.take() if s.tag.endswith("presence")]
    assert ("unavailable", "roland@falcot.com/laptop") in received
    assert ("unsubscribed", "roland@falcot.com") in received
    assert ("unsubscribe", "roland@falcot.com") in received
    assert await server.roster(roland) == {}
    assert (await server.roster(lucy))["roland@falcot.com"]["subscription"] == "none"
