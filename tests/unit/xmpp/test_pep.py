"""PEP (XEP-0163) through the router: publish with publish-options, items, retract,
configure, delete, caps-driven notifications and last items, limits and hostile input."""

from __future__ import annotations

import base64
import hashlib
import itertools
from xml.etree.ElementTree import Element

import pytest

from heron.store.memory import MemoryPepStore
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.pep.avatar import VCARD4
from heron.xmpp.pep.model import PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER, Limits
from heron.xmpp.pep.service import CAPS_QUERY_PREFIX, PepService
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import (
    FakeSession,
    Server,
    error_condition,
    im_server,
    stanza,
    text,
)
from tests.unit.xmpp.test_presence import subscribe

AVATAR = "urn:xmpp:avatar:metadata"
BOOKMARKS = "urn:xmpp:bookmarks:1"
DEVICES = "eu.siacs.conversations.axolotl.devicelist"
OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


def ver_of(features: list[str]) -> str:
    """XEP-0115 §5.1 for a client/pc named "test" with ``features``."""
    s = "client/pc//test<" + "".join(f"{f}<" for f in sorted(features))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def asked(session: FakeSession) -> str:
    """The id of the caps query the server sent ``session`` since the last take, or "";
    the other stanzas stay for the test to take."""
    queries = [s for s in session.sent if s.get("id", "").startswith(CAPS_QUERY_PREFIX)]
    session.sent = [s for s in session.sent if s not in queries]
    return queries[0].get("id", "") if queries else ""


class Pep:
    def __init__(self, limits: Limits | None = None) -> None:
        self.server: Server = im_server()
        self.store = MemoryPepStore()
        ids = itertools.count(1)
        router = self.server.router
        self.service = PepService(
            router,
            router.roster,
            self.store,
            clock=lambda: 1.0,
            new_item_id=lambda: f"gen{next(ids)}",
            limits=limits or Limits(),
        )
        for handler in self.service.handlers:
            router.register_iq_handler(handler, for_accounts=handler.namespace in (PUBSUB, VCARD4))
        router.register_results(CAPS_QUERY_PREFIX, self.service.caps_result)
        router.presence.listeners.append(self.service)

    async def login(self, account: str, resource: str, notify: tuple[str, ...] = ()) -> FakeSession:
        """Log in with caps naming ``notify`` nodes, answering the server's disco#info."""
        session = await self.server.connect(account, resource)
        features = [NS.DISCO_INFO.value, *(f"{n}+notify" for n in notify)]
        if query_id := await self.caps_presence(session, ver_of(features)):
            await self.answer(session, query_id, features)
        return session

    async def caps_presence(self, session: FakeSession, ver: str) -> str:
        """Announce caps ``ver``; the id of the server's disco#info query, if it sent one."""
        caps = f'<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="t" ver="{ver}"/>'
        await self.server.send(session, f"<presence>{caps}</presence>")
        return asked(session)

    async def answer(self, session: FakeSession, query_id: str, features: list[str]) -> None:
        listed = "".join(f'<feature var="{f}"/>' for f in features)
        await self.server.send(
            session,
            f'<iq type="result" id="{query_id}" to="falcot.com"><query xmlns="{NS.DISCO_INFO}">'
            f'<identity category="client" type="pc" name="test"/>{listed}</query></iq>',
        )

    async def iq(self, session: FakeSession, xml: str, to: str = "") -> Element:
        session.take()
        address = f' to="{to}"' if to else ""
        await self.server.send(session, f'<iq id="q"{address} {xml}</iq>')
        return next(s for s in session.take() if s.tag == qname(NS.CLIENT, "iq"))

    async def publish(
        self, session: FakeSession, node: str, payload: str, item_id: str = "", options: str = ""
    ) -> Element:
        id_attr = f' id="{item_id}"' if item_id else ""
        form = ""
        if options:
            form = (
                f'<publish-options><x xmlns="jabber:x:data" type="submit">'
                f'<field var="FORM_TYPE"><value>{OPTIONS}</value></field>{options}</x>'
                "</publish-options>"
            )
        return await self.iq(
            session,
            f'type="set"><pubsub xmlns="{PUBSUB}"><publish node="{node}">'
            f"<item{id_attr}>{payload}</item></publish>{form}</pubsub>",
        )

    async def items(self, session: FakeSession, owner: str, node: str, extra: str = "") -> Element:
        return await self.iq(
            session,
            f'type="get"><pubsub xmlns="{PUBSUB}"><items node="{node}"{extra}/></pubsub>',
            to=owner,
        )


def option(var: str, value: str) -> str:
    return f'<field var="{var}"><value>{value}</value></field>'


def item_ids(reply: Element) -> list[str]:
    assert reply.get("type") == "result", text(reply)
    return [i.get("id", "") for i in reply.iter(qname(PUBSUB, "item"))]


def events(session: FakeSession) -> list[tuple[str, str, str]]:
    """(from, node, item id or 'retract:ID'/'delete') of each notification received."""
    found = []
    for sent in session.take():
        event = sent.find(qname(PUBSUB_EVENT, "event"))
        if event is None:
            continue
        assert sent.get("type") == "headline"
        for change in event:
            if change.tag == qname(PUBSUB_EVENT, "delete"):
                found.append((sent.get("from", ""), change.get("node", ""), "delete"))
            for entry in change:
                label = entry.get("id", "")
                if entry.tag == qname(PUBSUB_EVENT, "retract"):
                    label = f"retract:{label}"
                found.append((sent.get("from", ""), change.get("node", ""), label))
    return found


@pytest.fixture
def pep() -> Pep:
    return Pep()


META = f'<metadata xmlns="{AVATAR}"><info id="abc" bytes="10" type="image/png"/></metadata>'


async def test_xep0163_3_publish_auto_creates_and_items_come_back(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    reply = await pep.publish(roland, AVATAR, META, item_id="abc")
    assert item_ids(reply) == ["abc"]
    assert item_ids(await pep.items(roland, "", AVATAR)) == ["abc"]
    assert ("roland@falcot.com", AVATAR) in pep.store.nodes


async def test_xep0060_7_1_publish_without_id_gets_one_and_max_items_keeps_the_newest(
    pep: Pep,
) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    opts = option("pubsub#max_items", "2")
    for n in range(3):
        await pep.publish(roland, "urn:example", f'<x xmlns="urn:example">{n}</x>', options=opts)
    assert item_ids(await pep.items(roland, "", "urn:example")) == ["gen2", "gen3"]
    assert item_ids(await pep.items(roland, "", "urn:example", ' max_items="1"')) == ["gen3"]


async def test_xep0060_7_1_5_publish_options_that_conflict_are_a_precondition_not_met(
    pep: Pep,
) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    await pep.publish(roland, DEVICES, '<list xmlns="eu.siacs.conversations.axolotl"/>')
    reply = await pep.publish(
        roland,
        DEVICES,
        '<list xmlns="eu.siacs.conversations.axolotl"/>',
        options=option("pubsub#access_model", "open"),
    )
    assert error_condition(reply) == "conflict"
    assert reply.find(f".//{{{PUBSUB}#errors}}precondition-not-met") is not None
    same = await pep.publish(
        roland,
        DEVICES,
        "<list xmlns='eu.siacs.conversations.axolotl'/>",
        options=option("pubsub#access_model", "presence"),
    )
    assert same.get("type") == "result"


async def test_xep0060_6_5_access_models_for_a_contact(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    raphael = await pep.login("raphael@falcot.com", "desk")
    await subscribe(pep.server, lucy, roland)  # lucy sees roland's presence
    await pep.publish(roland, AVATAR, META, "abc")
    await pep.publish(
        roland, "bundle:1", '<b xmlns="urn:x"/>', "current", option("pubsub#access_model", "open")
    )
    await pep.publish(
        roland, BOOKMARKS, '<c xmlns="urn:xmpp:bookmarks:1"/>', "room@conf.falcot.com",
        option("pubsub#access_model", "whitelist"),
    )  # fmt: skip
    assert item_ids(await pep.items(lucy, "roland@falcot.com", AVATAR)) == ["abc"]
    refused = await pep.items(raphael, "roland@falcot.com", AVATAR)
    assert error_condition(refused) == "not-authorized"
    assert item_ids(await pep.items(raphael, "roland@falcot.com", "bundle:1")) == ["current"]
    assert error_condition(await pep.items(lucy, "roland@falcot.com", BOOKMARKS)) == "not-allowed"
    assert item_ids(await pep.items(roland, "", BOOKMARKS)) == ["room@conf.falcot.com"]


async def test_xep0060_only_the_owner_publishes(pep: Pep) -> None:
    lucy = await pep.login("lucy@falcot.com", "home")
    reply = await pep.iq(
        lucy,
        f'type="set"><pubsub xmlns="{PUBSUB}"><publish node="n"><item><x xmlns="y"/></item>'
        "</publish></pubsub>",
        to="roland@falcot.com",
    )
    assert error_condition(reply) == "forbidden"


async def test_xep0163_4_3_notifications_go_to_resources_with_notify_caps(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop", notify=(AVATAR,))
    other = await pep.login("roland@falcot.com", "phone")
    lucy = await pep.login("lucy@falcot.com", "home", notify=(AVATAR, BOOKMARKS))
    raphael = await pep.login("raphael@falcot.com", "desk", notify=(AVATAR,))
    await subscribe(pep.server, lucy, roland)
    for session in (roland, other, lucy, raphael):
        session.take()
    await pep.server.send(
        roland,
        f'<iq type="set" id="p"><pubsub xmlns="{PUBSUB}"><publish node="{AVATAR}">'
        f'<item id="abc">{META}</item></publish></pubsub></iq>',
    )
    assert events(roland) == [("roland@falcot.com", AVATAR, "abc")]
    assert events(lucy) == [("roland@falcot.com", AVATAR, "abc")]
    assert events(other) == [] and events(raphael) == []


async def test_xep0163_6_2_last_item_is_sent_when_a_resource_comes_with_notify(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    await subscribe(pep.server, lucy, roland)
    await pep.publish(roland, AVATAR, META, "abc")
    await pep.publish(roland, AVATAR, META, "def")
    laptop = await pep.login("lucy@falcot.com", "laptop", notify=(AVATAR,))
    assert events(laptop) == [("roland@falcot.com", AVATAR, "def")]
    # The same caps again (a status change) send nothing more; the cache answered.
    await pep.server.send(laptop, "<presence><show>away</show>" + "</presence>")
    assert events(laptop) == []


async def test_xep0115_5_4_caps_whose_hash_does_not_match_give_no_notifications(
    pep: Pep,
) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    await pep.answer(roland, await pep.caps_presence(roland, "bogus="), [f"{AVATAR}+notify"])
    await pep.publish(roland, AVATAR, META, "abc")
    assert events(roland) == []


async def test_xep0060_7_2_retract_with_notify_and_8_4_delete_node(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop", notify=(BOOKMARKS,))
    opts = option("pubsub#access_model", "whitelist") + option("pubsub#max_items", "max")
    await pep.publish(roland, BOOKMARKS, '<c xmlns="urn:xmpp:bookmarks:1"/>', "a@c", opts)
    await pep.publish(roland, BOOKMARKS, '<c xmlns="urn:xmpp:bookmarks:1"/>', "b@c", opts)
    roland.take()
    await pep.server.send(
        roland,
        f'<iq type="set" id="r"><pubsub xmlns="{PUBSUB}"><retract node="{BOOKMARKS}" notify="1">'
        '<item id="a@c"/></retract></pubsub></iq>',
    )
    assert events(roland) == [("roland@falcot.com", BOOKMARKS, "retract:a@c")]
    assert item_ids(await pep.items(roland, "", BOOKMARKS)) == ["b@c"]
    reply = await pep.iq(
        roland,
        f'type="set"><pubsub xmlns="{PUBSUB_OWNER}"><delete node="{BOOKMARKS}"/></pubsub>',
    )
    assert reply.get("type") == "result"
    assert error_condition(await pep.items(roland, "", BOOKMARKS)) == "item-not-found"


async def test_xep0060_8_2_configure_node_form(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    for n in range(3):
        await pep.publish(
            roland, "n", f'<x xmlns="y">{n}</x>', str(n), option("pubsub#max_items", "5")
        )
    form = await pep.iq(
        roland, f'type="get"><pubsub xmlns="{PUBSUB_OWNER}"><configure node="n"/></pubsub>'
    )
    values = {
        f.get("var"): f.findtext(qname(NS.DATA, "value"))
        for f in form.iter(qname(NS.DATA, "field"))
    }
    assert values["pubsub#access_model"] == "presence" and values["pubsub#max_items"] == "5"
    reply = await pep.iq(
        roland,
        f'type="set"><pubsub xmlns="{PUBSUB_OWNER}"><configure node="n">'
        '<x xmlns="jabber:x:data" type="submit">'
        '<field var="FORM_TYPE"><value>http://jabber.org/protocol/pubsub#node_config</value></field>'
        + option("pubsub#max_items", "1")
        + "</x></configure></pubsub>",
    )
    assert reply.get("type") == "result"
    assert item_ids(await pep.items(roland, "", "n")) == ["2"]


async def test_limits_item_size_nodes_and_account_bytes() -> None:
    pep = Pep(Limits(max_item_bytes=100, max_nodes=2, max_account_bytes=150))
    roland = await pep.login("roland@falcot.com", "laptop")
    big = await pep.publish(roland, "n", f'<x xmlns="y">{"a" * 200}</x>')
    assert error_condition(big) == "not-acceptable"
    assert big.find(f".//{{{PUBSUB}#errors}}payload-too-big") is not None
    assert (await pep.publish(roland, "n", f'<x xmlns="y">{"a" * 60}</x>')).get("type") == "result"
    full = await pep.publish(roland, "m", f'<x xmlns="y">{"a" * 60}</x>')
    assert error_condition(full) == "resource-constraint"
    assert (
        error_condition(await pep.publish(roland, "o", '<x xmlns="y"/>')) == "resource-constraint"
    )


@pytest.mark.parametrize(
    "payload",
    [
        f'<pubsub xmlns="{PUBSUB}"><publish node="n"><item/></publish></pubsub>',
        f'<pubsub xmlns="{PUBSUB}"><publish node="n"><item><a xmlns="x"/><b xmlns="x"/></item>'
        "</publish></pubsub>",
        f'<pubsub xmlns="{PUBSUB}"><publish><item><a xmlns="x"/></item></publish></pubsub>',
        f'<pubsub xmlns="{PUBSUB}"><publish node="n"/><retract node="n"/></pubsub>',
        f'<pubsub xmlns="{PUBSUB}"><publish node="n"><item id="{"i" * 300}"><a xmlns="x"/>'
        "</item></publish></pubsub>",
        f'<pubsub xmlns="{PUBSUB}"><retract node="n"><item id="x"/></retract></pubsub>',
        f'<pubsub xmlns="{PUBSUB}"><subscribe node="n" jid="roland@falcot.com"/></pubsub>',
        f'<pubsub xmlns="{PUBSUB_OWNER}"><delete/></pubsub>',
        f'<pubsub xmlns="{PUBSUB_OWNER}"><delete node="none"/></pubsub>',
    ],
)
async def test_hostile_requests_get_errors(pep: Pep, payload: str) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    reply = await pep.iq(roland, f'type="set">{payload}')
    assert reply.get("type") == "error", text(reply)


async def test_pubsub_to_the_server_itself_is_not_pep(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    reply = await pep.iq(
        roland, f'type="get"><pubsub xmlns="{PUBSUB}"><items node="n"/></pubsub>', to="falcot.com"
    )
    assert error_condition(reply) == "service-unavailable"


async def test_xep0115_a_silent_client_does_not_stall_others_and_a_ver_is_verified_once(
    pep: Pep,
) -> None:
    features = [NS.DISCO_INFO.value, f"{AVATAR}+notify"]
    silent = await pep.server.connect("lucy@falcot.com", "silent")
    other = await pep.server.connect("raphael@falcot.com", "desk")
    assert await pep.caps_presence(silent, ver_of(features))  # never answers
    await pep.answer(other, await pep.caps_presence(other, ver_of(features)), features)
    roland = await pep.login("roland@falcot.com", "laptop")
    await subscribe(pep.server, other, roland)
    other.take()
    await pep.publish(roland, AVATAR, META, "abc")
    assert events(other) == [("roland@falcot.com", AVATAR, "abc")]
    third = await pep.server.connect("lucy@falcot.com", "third")
    assert not await pep.caps_presence(third, ver_of(features))  # verified once, cached


async def test_xep0115_a_lying_answer_is_not_cached_and_an_honest_one_serves(
    pep: Pep,
) -> None:
    features = [NS.DISCO_INFO.value, f"{AVATAR}+notify"]
    liar = await pep.server.connect("lucy@falcot.com", "liar")
    honest = await pep.server.connect("raphael@falcot.com", "desk")
    liar_query = await pep.caps_presence(liar, ver_of(features))
    honest_query = await pep.caps_presence(honest, ver_of(features))
    await pep.answer(honest, liar_query, features)  # not asked of it: ignored
    await pep.answer(liar, liar_query, [f"{BOOKMARKS}+notify"])
    await pep.answer(honest, honest_query, features)
    roland = await pep.login("roland@falcot.com", "laptop")
    for contact in (liar, honest):
        await subscribe(pep.server, contact, roland)
        contact.take()
    await pep.publish(roland, AVATAR, META, "abc")
    assert events(honest) == [("roland@falcot.com", AVATAR, "abc")]
    assert events(liar) == []


class Remote:
    """Federation as the router sees it: what went to other domains."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        self.sent.append(stanza)

    def take(self) -> list[Element]:
        sent, self.sent = self.sent, []
        return sent


async def test_xep0163_4_3_a_contact_on_another_server_is_notified_through_its_caps(
    pep: Pep,
) -> None:
    remote = Remote()
    pep.server.router.federate(remote)
    router = pep.server.router
    juliet, balcony = parse_jid("juliet@capulet.lit"), parse_jid("juliet@capulet.lit/balcony")
    roland = await pep.login("roland@falcot.com", "laptop")
    roland_jid = parse_jid("roland@falcot.com")
    await router.route(
        stanza('<presence type="subscribe" from="juliet@capulet.lit" to="roland@falcot.com"/>'),
        juliet,
        roland_jid,
    )
    await pep.server.send(roland, '<presence to="juliet@capulet.lit" type="subscribed"/>')
    await pep.publish(roland, AVATAR, META, "abc")
    remote.take()

    features = [NS.DISCO_INFO.value, f"{AVATAR}+notify"]
    ver = ver_of(features)
    caps = f'<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="t" ver="{ver}"/>'
    presence = f'<presence from="{balcony}" to="roland@falcot.com">{caps}</presence>'
    await router.route(stanza(presence), balcony, roland_jid)
    query = next(s for s in remote.take() if s.get("id", "").startswith(CAPS_QUERY_PREFIX))
    assert (query.get("from"), query.get("to")) == ("falcot.com", str(balcony))
    listed = "".join(f'<feature var="{f}"/>' for f in features)
    answer = (
        f'<iq type="result" id="{query.get("id")}" from="{balcony}" to="falcot.com">'
        f'<query xmlns="{NS.DISCO_INFO}"><identity category="client" type="pc" name="test"/>'
        f"{listed}</query></iq>"
    )
    await router.route(stanza(answer), balcony, parse_jid("falcot.com"))
    last = [m for m in remote.take() if m.find(qname(PUBSUB_EVENT, "event")) is not None]
    assert [(m.get("from"), m.get("to")) for m in last] == [("roland@falcot.com", str(balcony))]

    await pep.publish(roland, AVATAR, META, "def")
    assert [m.get("to") for m in remote.take()] == [str(balcony)]
    gone = f'<presence type="unavailable" from="{balcony}" to="roland@falcot.com"/>'
    await router.route(stanza(gone), balcony, roland_jid)
    await pep.publish(roland, AVATAR, META, "ghi")
    assert remote.take() == []


async def test_a_stranger_on_another_server_is_not_followed(pep: Pep) -> None:
    remote = Remote()
    pep.server.router.federate(remote)
    await pep.login("roland@falcot.com", "laptop")
    caps = '<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="t" ver="x"/>'
    presence = f'<presence from="eve@evil.example/x" to="roland@falcot.com">{caps}</presence>'
    await pep.server.router.route(
        stanza(presence), parse_jid("eve@evil.example/x"), parse_jid("roland@falcot.com")
    )
    assert remote.take() == []  # no caps query to someone without a subscription


PRIVATE = "jabber:iq:private"
LEGACY = "storage:bookmarks"


async def test_xep0049_private_storage_round_trips_per_namespace(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    empty = await pep.iq(
        roland, f'type="get"><query xmlns="{PRIVATE}"><notes xmlns="urn:x:notes"/></query>'
    )
    assert [child.tag for child in empty.iter() if "notes" in child.tag] == ["{urn:x:notes}notes"]
    saved = await pep.iq(
        roland,
        f'type="set"><query xmlns="{PRIVATE}"><notes xmlns="urn:x:notes">ü</notes></query>',
    )
    assert saved.get("type") == "result"
    lucy = await pep.login("lucy@falcot.com", "home")
    await subscribe(pep.server, lucy, roland)
    assert error_condition(await pep.items(lucy, "roland@falcot.com", "urn:x:notes")) == (
        "not-allowed"
    )
    again = await pep.iq(
        roland, f'type="get"><query xmlns="{PRIVATE}"><notes xmlns="urn:x:notes"/></query>'
    )
    assert again.findtext(".//{urn:x:notes}notes") == "ü"


@pytest.mark.parametrize(
    "query",
    [
        f'<query xmlns="{PRIVATE}"/>',
        f'<query xmlns="{PRIVATE}"><a xmlns="urn:a"/><b xmlns="urn:b"/></query>',
        f'<query xmlns="{PRIVATE}"><message xmlns="jabber:client"/></query>',
        f'<query xmlns="{PRIVATE}"><q xmlns="{PRIVATE}"/></query>',
    ],
)
async def test_xep0049_3_bad_private_requests(pep: Pep, query: str) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    assert (await pep.iq(roland, f'type="set">{query}')).get("type") == "error"


async def test_xep0411_legacy_bookmarks_and_xep0402_items_are_one_list(pep: Pep) -> None:
    legacy = await pep.login("roland@falcot.com", "old")
    modern = await pep.login("roland@falcot.com", "new", notify=(BOOKMARKS,))
    legacy_set = (
        f'type="set"><query xmlns="{PRIVATE}"><storage xmlns="{LEGACY}">'
        '<conference jid="kitchen@conference.falcot.com" name="Kitchen" autojoin="1">'
        "<nick>roland</nick></conference>"
        '<conference jid="not a jid@@" name="bad"/>'
        '<url name="web" url="https://falcot.com/"/>'
        "</storage></query>"
    )
    assert (await pep.iq(legacy, legacy_set)).get("type") == "result"
    assert events(modern) == [("roland@falcot.com", BOOKMARKS, "kitchen@conference.falcot.com")]
    items = await pep.items(modern, "", BOOKMARKS)
    conference = items.find(f".//{{{BOOKMARKS}}}conference")
    assert conference is not None and conference.get("autojoin") == "true"
    assert conference.findtext(f"{{{BOOKMARKS}}}nick") == "roland"

    await pep.publish(
        modern,
        BOOKMARKS,
        f'<conference xmlns="{BOOKMARKS}" name="Hall" autojoin="false"/>',
        "hall@conference.falcot.com",
        option("pubsub#access_model", "whitelist") + option("pubsub#max_items", "max"),
    )
    got = await pep.iq(
        legacy, f'type="get"><query xmlns="{PRIVATE}"><storage xmlns="{LEGACY}"/></query>'
    )
    rooms = {c.get("jid"): c.get("name") for c in got.iter(f"{{{LEGACY}}}conference")}
    assert rooms == {
        "kitchen@conference.falcot.com": "Kitchen",
        "hall@conference.falcot.com": "Hall",
    }

    modern.take()
    only_hall = legacy_set.replace("kitchen", "hall").replace("Kitchen", "Hall")
    only_hall = only_hall.replace('autojoin="1"', 'autojoin="false"').replace(
        "<nick>roland</nick>", ""
    )
    await pep.iq(legacy, only_hall)
    assert events(modern) == [
        ("roland@falcot.com", BOOKMARKS, "retract:kitchen@conference.falcot.com")
    ]


async def test_xep0402_bookmarks_published_without_options_stay_private(pep: Pep) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    lucy = await pep.login("lucy@falcot.com", "home")
    await subscribe(pep.server, lucy, roland)
    await pep.publish(roland, BOOKMARKS, f'<conference xmlns="{BOOKMARKS}"/>', "a@c.falcot.com")
    assert error_condition(await pep.items(lucy, "roland@falcot.com", BOOKMARKS)) == "not-allowed"


async def test_xep0163_6_2_a_new_mutual_subscription_brings_the_last_items_once(
    pep: Pep,
) -> None:
    roland = await pep.login("roland@falcot.com", "laptop")
    lucy = await pep.login("lucy@falcot.com", "home", notify=(AVATAR,))
    await pep.publish(roland, AVATAR, META, "abc")
    assert events(lucy) == []  # no subscription yet
    await subscribe(pep.server, lucy, roland)
    await subscribe(pep.server, roland, lucy)  # lucy's presence now reaches roland
    assert events(lucy) == [("roland@falcot.com", AVATAR, "abc")]
    await pep.server.send(lucy, "<presence><show>away</show></presence>")
    assert events(lucy) == []
    # A new resource gets them at its login, once, whichever presence comes first.
    phone = await pep.login("lucy@falcot.com", "phone", notify=(AVATAR,))
    assert events(phone) == [("roland@falcot.com", AVATAR, "abc")]
