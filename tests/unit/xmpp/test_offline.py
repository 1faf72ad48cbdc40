"""Offline messages (XEP-0160) with XEP-0203 delay stamps, on a real SQLite store."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from heron.xmpp.features.offline import delay_stamp
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import NOW, Server, error_condition, im_server

BODY = qname(NS.CLIENT, "body")
DELAY = qname(NS.DELAY, "delay")


@pytest.fixture
def server() -> Server:
    return im_server()


def messages(sent: list[Element]) -> list[Element]:
    return [s for s in sent if s.tag == qname(NS.CLIENT, "message")]


async def test_xep0160_messages_wait_and_arrive_after_initial_presence_with_a_delay(
    server: Server,
) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    for n, body in enumerate(("first", "second")):
        server.clock[0] = NOW + n
        await server.send(
            roland, f'<message to="lucy@falcot.com" type="chat"><body>{body}</body></message>'
        )
    oob = '<x xmlns="jabber:x:oob"><url>https://falcot.com/a.png</url></x>'
    await server.send(roland, f'<message to="lucy@falcot.com/gone">{oob}</message>')
    assert roland.take() == []  # stored, not bounced

    lucy = await server.connect("lucy@falcot.com", "home")
    assert lucy.take() == []  # nothing before initial presence
    await server.send(lucy, "<presence/>")
    delivered = messages(lucy.take())
    assert [m.findtext(BODY) for m in delivered] == ["first", "second", None]
    assert [m.get("from") for m in delivered] == ["roland@falcot.com/laptop"] * 3
    stamps = [m.find(DELAY) for m in delivered]
    assert [(d.get("from"), d.get("stamp")) for d in stamps if d is not None] == [
        ("falcot.com", "2026-01-02T03:04:05Z"),
        ("falcot.com", "2026-01-02T03:04:06Z"),
        ("falcot.com", "2026-01-02T03:04:06Z"),
    ]
    assert delivered[2].find(qname("jabber:x:oob", "x")) is not None
    again = await server.login("lucy@falcot.com", "phone")
    assert messages(again.take()) == []


async def test_xep0160_4_negative_priority_defers_delivery(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    await server.send(roland, '<message to="lucy@falcot.com"><body>later</body></message>')
    lucy = await server.login("lucy@falcot.com", "bot", priority=-1)
    assert messages(lucy.take()) == []
    await server.send(lucy, "<presence><priority>1</priority></presence>")
    assert [m.findtext(BODY) for m in messages(lucy.take())] == ["later"]


async def test_offline_storage_is_capped_with_service_unavailable() -> None:
    server = im_server(offline_limit=2)
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    for n in range(3):
        body = f"<body>{n}</body>"
        await server.send(roland, f'<message to="lucy@falcot.com" id="m{n}">{body}</message>')
    bounced = roland.take_one()
    assert bounced.get("id") == "m2"
    assert error_condition(bounced) == "service-unavailable"


async def test_xep0160_3_headlines_and_bare_chat_states_are_not_kept(server: Server) -> None:
    roland = await server.login("roland@falcot.com", "laptop")
    roland.take()
    composing = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    await server.send(roland, f'<message to="lucy@falcot.com" type="chat">{composing}</message>')
    await server.send(roland, '<message to="lucy@falcot.com" type="headline"><body/></message>')
    assert roland.take() == []
    lucy = await server.login("lucy@falcot.com", "home")
    assert messages(lucy.take()) == []


def test_xep0082_delay_stamps_are_utc() -> None:
    assert delay_stamp(0) == "1970-01-01T00:00:00Z"
    assert delay_stamp(NOW + 0.9) == "2026-01-02T03:04:05Z"
