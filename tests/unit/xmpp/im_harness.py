"""A router on the in-memory stores with fake client sessions, for transcript tests.

Stanzas are written as XML text in the ``jabber:client`` namespace; a
:class:`FakeSession` collects what the server sends it.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable
from xml.etree.ElementTree import Element, fromstring, tostring

from heron.store.memory import MemoryArchiveStore, MemoryOfflineStore, MemoryRosterStore
from heron.xmpp.errors import StreamCondition
from heron.xmpp.features.mam import ArchiveSettings
from heron.xmpp.features.presence import SeparateReads
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.router import Router
from heron.xmpp.stanza import NS, qname

NOW = 1_767_323_045.0
ACCOUNTS = ("roland@falcot.com", "lucy@falcot.com", "raphael@falcot.com")
ROSTER = NS.ROSTER.value
STANZAS = NS.STANZAS.value


def stanza(text: str) -> Element:
    """Parse one stanza written without namespaces into ``jabber:client``."""
    return fromstring(f'<wrapper xmlns="{NS.CLIENT}">{text}</wrapper>')[0]


def text(element: Element) -> str:
    return tostring(element, encoding="unicode")


class FakeSession:
    """A bound client: remembers what it was sent and how it was closed."""

    def __init__(self, jid: JID) -> None:
        self.jid = jid
        self.sent: list[Element] = []
        self.closed: StreamCondition | None = None

    def send(self, stanza: Element) -> None:
        self.sent.append(stanza)

    def close(self, condition: StreamCondition) -> None:
        self.closed = condition

    def take(self) -> list[Element]:
        sent, self.sent = self.sent, []
        return sent

    def take_one(self, tag: str | None = None) -> Element:
        """The single stanza sent since the last take (of ``tag`` when given)."""
        sent = [s for s in self.take() if tag is None or s.tag == qname(NS.CLIENT, tag)]
        assert len(sent) == 1, [text(s) for s in sent]
        return sent[0]


def error_condition(reply: Element) -> str:
    """The defined condition of an error reply (RFC 6120 §8.3.2)."""
    assert reply.get("type") == "error", text(reply)
    error = reply.find(qname(NS.CLIENT, "error"))
    assert error is not None
    condition = next(c for c in error if c.tag != qname(NS.STANZAS, "text"))
    return condition.tag.rpartition("}")[2]


def items(query: Element | None) -> dict[str, dict[str, str]]:
    """Roster items of a result or push, by JID, with their attributes."""
    assert query is not None
    return {item.get("jid", ""): dict(item.attrib) for item in query}


class Server:
    """One router for falcot.com and its fake clients."""

    def __init__(self, router: Router, clock: list[float]) -> None:
        self.router = router
        self.clock = clock

    async def connect(self, account: str, resource: str | None = None) -> FakeSession:
        session = FakeSession(parse_jid(account))
        session.jid = self.router.bind(session, resource)
        return session

    async def send(self, session: FakeSession, xml: str) -> None:
        """As the client stream hands it over: ``from`` stamped with the session's full
        JID, ``to`` parsed."""
        sent = stanza(xml)
        sent.set("from", str(session.jid))
        to = sent.get("to")
        await self.router.receive_from_session(session, sent, parse_jid(to) if to else None)

    async def login(
        self, account: str, resource: str, *, priority: int = 0, roster: bool = True
    ) -> FakeSession:
        """Bind, fetch the roster (becoming interested) and send initial presence."""
        session = await self.connect(account, resource)
        if roster:
            await self.send(session, f'<iq type="get" id="r1"><query xmlns="{ROSTER}"/></iq>')
        await self.send(session, f"<presence><priority>{priority}</priority></presence>")
        return session

    async def roster(self, session: FakeSession) -> dict[str, dict[str, str]]:
        session.take()
        await self.send(session, f'<iq type="get" id="get"><query xmlns="{ROSTER}"/></iq>')
        reply = session.take_one("iq")
        return items(reply.find(qname(ROSTER, "query")))


def im_server(
    accounts: Iterable[str] = ACCOUNTS,
    *,
    offline_limit: int = 500,
    max_roster_items: int = 1000,
    blocked: Callable[[JID, JID], Awaitable[bool]] | None = None,
    admins: Iterable[str] = (),
    archive: MemoryArchiveStore | None = None,
    archive_settings: ArchiveSettings | None = None,
) -> Server:
    """``archive``: keep message archives (XEP-0313) there, with ids a1, a2, ..."""
    known = {parse_jid(a) for a in accounts}
    admin_set = set(admins)
    clock = [NOW]
    names = itertools.count(1)
    archive_ids = itertools.count(1)

    async def exists(bare: JID) -> bool:
        return bare in known

    roster = MemoryRosterStore()
    offline = MemoryOfflineStore(limit=offline_limit)
    router = Router(
        hosts=["falcot.com"],
        exists=exists,
        roster=roster,
        offline=offline,
        clock=lambda: clock[0],
        new_resource=lambda: f"r{next(names)}",
        blocked=blocked,
        is_admin=lambda account: str(account) in admin_set,
        max_roster_items=max_roster_items,
        login=SeparateReads(roster, offline),
        archive=archive,
        archive_settings=archive_settings,
        archive_ids=lambda: f"a{next(archive_ids)}",
    )
    return Server(router, clock)
