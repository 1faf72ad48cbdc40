"""XEP-0313 archives of accounts through the router (transcripts on the memory store), with
XEP-0359 ids: what is archived and for whom, queries, paging, preferences, expiry."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.store.memory import MemoryArchiveStore
from heron.xmpp.archive import MAM, RSM, SID
from heron.xmpp.features.mam import ArchiveSettings
from heron.xmpp.jid import parse_jid
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import NOW, FakeSession, Server, error_condition, im_server, text

ROLAND = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com")


@pytest.fixture
def archive() -> MemoryArchiveStore:
    return MemoryArchiveStore()


@pytest.fixture
def server(archive: MemoryArchiveStore) -> Server:
    return im_server(archive=archive, archive_settings=ArchiveSettings(page=3, limit=100))


def bodies(archive: MemoryArchiveStore, owner: str) -> list[tuple[str, str]]:
    """(with, body) of each archived message of ``owner``, oldest first."""
    out = []
    for with_, item in archive.items.get(parse_jid(owner), []):
        body = item.stanza.partition("<body>")[2].partition("</body>")[0]
        out.append((str(with_), body))
    return out


def stanza_ids(message: Element) -> list[dict[str, str]]:
    return [dict(found.attrib) for found in message.findall(qname(SID, "stanza-id"))]


async def query(
    server: Server, session: FakeSession, inner: str = "", *, to: str = "", queryid: str = ""
) -> Element:
    """An iq set with a MAM query; the iq answer (results stay in ``session.sent``)."""
    address = f' to="{to}"' if to else ""
    qid = f' queryid="{queryid}"' if queryid else ""
    await server.send(
        session, f'<iq type="set" id="q"{address}><query xmlns="{MAM}"{qid}>{inner}</query></iq>'
    )
    return session.sent.pop()


def results(session: FakeSession) -> list[tuple[str, str]]:
    """(archive id, body) of each result sent, taken."""
    out = []
    for message in session.take():
        found = message.find(qname(MAM, "result"))
        assert found is not None, text(message)
        body = message.findtext(f".//{qname(NS.CLIENT, 'body')}")
        out.append((found.get("id", ""), body or ""))
    return out


async def test_xep0313_a_chat_is_archived_on_both_sides_once(
    server: Server, archive: MemoryArchiveStore
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "phone")
    lucy_desk = await server.login("lucy@falcot.com", "desk")
    for session in (roland, lucy, lucy_desk):
        session.take()
    await server.send(roland, '<message to="lucy@falcot.com" type="chat"><body>hi</body></message>')
    assert bodies(archive, "roland@falcot.com") == [("lucy@falcot.com", "hi")]
    # Once for lucy's account, however many of her devices got it (RFC 6121 §8.5.2.1.1).
    assert bodies(archive, "lucy@falcot.com") == [("roland@falcot.com/laptop", "hi")]
    delivered = [lucy.take_one("message"), lucy_desk.take_one("message")]
    # XEP-0359 §3: her archive's id on what she gets; the sender's archive id is not shown.
    for message in delivered:
        assert stanza_ids(message) == [{"id": "a2", "by": "lucy@falcot.com"}]


async def test_xep0313_a_message_to_oneself_is_archived_once(
    server: Server, archive: MemoryArchiveStore
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(
        roland, '<message to="roland@falcot.com" type="chat"><body>note</body></message>'
    )
    assert bodies(archive, "roland@falcot.com") == [("roland@falcot.com/laptop", "note")]


async def test_xep0313_offline_messages_are_archived_with_their_id(
    server: Server, archive: MemoryArchiveStore
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, '<message to="lucy@falcot.com"><body>later</body></message>')
    assert bodies(archive, "lucy@falcot.com") == [("roland@falcot.com/laptop", "later")]
    lucy = await server.login("lucy@falcot.com", "phone")
    held = [m for m in lucy.take() if m.findtext(qname(NS.CLIENT, "body")) == "later"]
    assert [stanza_ids(m) for m in held] == [[{"id": "a2", "by": "lucy@falcot.com"}]]


@pytest.mark.parametrize(
    "message",
    [
        '<message type="error"><body>x</body><error type="cancel"/></message>',
        '<message type="headline"><body>news</body></message>',
        '<message type="chat"><active xmlns="http://jabber.org/protocol/chatstates"/></message>',
        '<message type="chat"><body>x</body><no-store xmlns="urn:xmpp:hints"/></message>',
        '<message type="chat"><body>x</body><no-permanent-store xmlns="urn:xmpp:hints"/></message>',
    ],
    ids=["error", "headline", "chat-state", "no-store", "no-permanent-store"],
)
async def test_xep0313_what_is_not_archived(
    server: Server, archive: MemoryArchiveStore, message: str
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.login("lucy@falcot.com", "phone")
    await server.send(roland, message.replace("<message ", '<message to="lucy@falcot.com" ', 1))
    assert archive.items == {}


async def test_xep0359_a_forged_id_is_removed_even_when_not_archived(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "phone")
    lucy.take()
    await server.send(
        roland,
        f'<message to="lucy@falcot.com" type="headline"><body>x</body>'
        f'<stanza-id xmlns="{SID}" by="lucy@falcot.com" id="forged"/></message>',
    )
    assert stanza_ids(lucy.take_one("message")) == []


async def test_xep0313_4_pages_forward_and_back_with_fin(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.login("lucy@falcot.com", "phone")
    for n in range(5):
        await server.send(roland, f'<message to="lucy@falcot.com"><body>m{n}</body></message>')
    roland.take()
    fin = await query(server, roland, queryid="f1")
    page = results(roland)
    # The page limit (3) applies though the client asked no max.
    assert [body for _, body in page] == ["m0", "m1", "m2"]
    done = fin.find(qname(MAM, "fin"))
    assert done is not None and done.get("complete") is None
    assert done.findtext(f".//{qname(RSM, 'last')}") == page[-1][0]
    assert done.findtext(f".//{qname(RSM, 'count')}") == "5"
    rsm = f'<set xmlns="{RSM}"><max>10</max><after>{page[-1][0]}</after></set>'
    fin = await query(server, roland, rsm)
    assert [body for _, body in results(roland)] == ["m3", "m4"]
    assert fin.find(qname(MAM, "fin")) is not None
    assert fin.find(qname(MAM, "fin")).get("complete") == "true"  # type: ignore[union-attr]
    # From the end: an empty <before/> (XEP-0059 §2.5), two at a time, flipped.
    rsm = f'<set xmlns="{RSM}"><max>2</max><before/></set><flip-page/>'
    await query(server, roland, rsm)
    assert [body for _, body in results(roland)] == ["m4", "m3"]


async def test_xep0313_4_results_carry_query_id_delay_and_come_from_the_archive(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, '<message to="lucy@falcot.com"><body>stamped</body></message>')
    roland.take()
    await query(server, roland, queryid="qq")
    (message,) = roland.take()
    assert (message.get("from"), message.get("to")) == (str(ROLAND), "roland@falcot.com/laptop")
    found = message.find(qname(MAM, "result"))
    assert found is not None and found.get("queryid") == "qq"
    delay = message.find(f".//{qname(NS.DELAY, 'delay')}")
    assert delay is not None and delay.get("stamp") == "2026-01-02T03:04:05.000Z"
    assert NOW == 1_767_323_045.0


async def test_xep0313_4_another_accounts_archive_is_forbidden(server: Server) -> None:
    mallory = await server.login("raphael@falcot.com", "x")
    mallory.take()
    for to in ("lucy@falcot.com", "falcot.com"):
        answer = await query(server, mallory, to=to)
        assert error_condition(answer) == "forbidden", to


async def test_xep0313_4_1_the_form_lists_the_fields(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    await server.send(roland, f'<iq type="get" id="f"><query xmlns="{MAM}"/></iq>')
    fields = [f.get("var") for f in roland.take_one("iq").iter(qname(NS.DATA, "field"))]
    assert fields == ["FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"]


async def test_xep0313_6_prefs_never_and_roster(
    server: Server, archive: MemoryArchiveStore
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    prefs = (
        f'<iq type="set" id="p"><prefs xmlns="{MAM}" default="roster">'
        "<always><jid>raphael@falcot.com</jid></always>"
        "<never><jid>lucy@falcot.com</jid></never></prefs></iq>"
    )
    await server.send(roland, prefs)
    answer = roland.take_one("iq")
    assert answer.get("type") == "result"
    await server.send(roland, f'<iq type="get" id="g"><prefs xmlns="{MAM}"/></iq>')
    got = roland.take_one("iq").find(qname(MAM, "prefs"))
    assert got is not None and got.get("default") == "roster"
    assert [j.text for j in got.iter(qname(MAM, "jid"))] == [
        "raphael@falcot.com",
        "lucy@falcot.com",
    ]
    for to in ("lucy@falcot.com", "raphael@falcot.com", "stranger@example.org"):
        await server.send(roland, f'<message to="{to}"><body>to {to}</body></message>')
    # never wins for lucy, always for raphael; a stranger is no roster contact.
    assert bodies(archive, "roland@falcot.com") == [("raphael@falcot.com", "to raphael@falcot.com")]


async def test_xep0313_6_bad_prefs_are_refused(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    await server.send(roland, f'<iq type="set" id="p"><prefs xmlns="{MAM}" default="maybe"/></iq>')
    assert error_condition(roland.take_one("iq")) == "bad-request"


async def test_expiry_drops_old_messages(server: Server, archive: MemoryArchiveStore) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, '<message to="lucy@falcot.com"><body>old</body></message>')
    server.clock[0] += 10
    await server.send(roland, '<message to="lucy@falcot.com"><body>new</body></message>')
    assert server.router.archive is not None
    assert await server.router.archive.expire(NOW + 5) == 2
    assert [body for _, body in bodies(archive, "roland@falcot.com")] == ["new"]


async def test_without_an_archive_nothing_is_archived_nor_answered() -> None:
    server = im_server()
    roland = await server.login("roland@falcot.com", "laptop")
    lucy = await server.login("lucy@falcot.com", "phone")
    lucy.take()
    roland.take()
    await server.send(roland, '<message to="lucy@falcot.com" type="chat"><body>hi</body></message>')
    assert stanza_ids(lucy.take_one("message")) == []
    assert error_condition(await query(server, roland)) == "service-unavailable"
