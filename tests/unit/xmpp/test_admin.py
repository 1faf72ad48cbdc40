"""Service Administration (XEP-0133) over Ad-Hoc Commands (XEP-0050), for admins only."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.admin import AdminCommands, Command
from heron.xmpp.features.disco import DiscoItemsHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname

COMMAND = qname(NS.COMMANDS, "command")
X = qname(NS.DATA, "x")
FIELD = qname(NS.DATA, "field")
VALUE = qname(NS.DATA, "value")
ADMIN = parse_jid("admin@falcot.com/desk")
ONLINE = [
    parse_jid("roland@falcot.com/laptop"),
    parse_jid("roland@falcot.com/phone"),
    parse_jid("lucy@falcot.com/phone"),
    parse_jid("admin@falcot.com/desk"),
]


class Online:
    def __init__(self, users: list[JID]) -> None:
        self.users = users

    def online(self) -> list[JID]:
        return list(self.users)


class Router:
    def __init__(self) -> None:
        self.routed: list[Element] = []

    async def route(self, stanza: Element, sender: JID, to: JID) -> None:
        assert (stanza.get("from"), stanza.get("to")) == (str(sender), str(to))
        self.routed.append(stanza)


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def commands() -> AdminCommands:
    return AdminCommands(Online(ONLINE))


def context(router: Router, *, admin: bool = True, sender: JID = ADMIN) -> IqContext:
    return IqContext(sender, parse_jid("falcot.com"), admin, router)


def command(
    node: str, action: str | None = None, session: str | None = None, **fields: list[str]
) -> Element:
    iq = Element(qname(NS.CLIENT, "iq"), {"type": "set", "id": "a1", "to": "falcot.com"})
    attributes = {"node": node}
    if action:
        attributes["action"] = action
    if session:
        attributes["sessionid"] = session
    element = SubElement(iq, COMMAND, attributes)
    if fields:
        form = SubElement(element, X, {"type": "submit"})
        for var, values in fields.items():
            field = SubElement(form, FIELD, {"var": var})
            for value in values:
                SubElement(field, VALUE).text = value
    return iq


def answer(reply: Element | None) -> Element:
    assert reply is not None and reply.get("type") == "result"
    element = reply.find(COMMAND)
    assert element is not None
    return element


def values(form: Element, var: str) -> list[str]:
    field = form.find(f"{FIELD}[@var='{var}']")
    assert field is not None
    return [value.text or "" for value in field.iterfind(VALUE)]


async def start(commands: AdminCommands, router: Router, node: str) -> str:
    first = answer(await commands.handle_iq(command(node), context(router)))
    assert first.get("status") == "executing"
    session = first.get("sessionid")
    assert session
    return session


async def test_xep0050_2_2_commands_node_lists_the_commands_to_admins(
    commands: AdminCommands, router: Router
) -> None:
    items = DiscoItemsHandler([], nodes=[commands])
    iq = Element(qname(NS.CLIENT, "iq"), {"type": "get", "id": "d1"})
    SubElement(iq, qname(NS.DISCO_ITEMS, "query"), {"node": NS.COMMANDS})
    reply = await items.handle_iq(iq, context(router))
    assert reply is not None
    listed = [dict(item.attrib) for item in reply.iter(qname(NS.DISCO_ITEMS, "item"))]
    assert listed == [
        {
            "jid": "falcot.com",
            "name": "Get List of Online Users",
            "node": Command.GET_ONLINE_USERS_LIST,
        },
        {
            "jid": "falcot.com",
            "name": "Send Announcement to Online Users",
            "node": Command.ANNOUNCE,
        },
    ]
    reply = await items.handle_iq(iq, context(router, admin=False))
    assert reply is not None and list(reply.iter(qname(NS.DISCO_ITEMS, "item"))) == []


def test_xep0050_2_3_command_node_info_for_admins_only(
    commands: AdminCommands, router: Router
) -> None:
    info = commands.disco_info(Command.ANNOUNCE, context(router))
    assert info is not None
    assert (info.identities[0].category, info.identities[0].type) == ("automation", "command-node")
    assert set(info.features) == {NS.COMMANDS, NS.DATA}
    assert commands.disco_info(Command.ANNOUNCE, context(router, admin=False)) is None
    assert commands.disco_info("urn:example:other", context(router)) is None


@pytest.mark.parametrize("node", list(Command))
async def test_xep0133_non_admins_are_forbidden(
    commands: AdminCommands, router: Router, node: str
) -> None:
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(command(node), context(router, admin=False))
    assert caught.value.condition is StanzaCondition.FORBIDDEN


async def test_xep0133_4_16_get_online_users_list(commands: AdminCommands, router: Router) -> None:
    first = answer(
        await commands.handle_iq(command(Command.GET_ONLINE_USERS_LIST), context(router))
    )
    form = first.find(X)
    assert form is not None and form.get("type") == "form"
    assert values(form, "FORM_TYPE") == ["http://jabber.org/protocol/admin"]
    actions = first.find(qname(NS.COMMANDS, "actions"))
    assert actions is not None and actions.get("execute") == "complete"

    session = first.get("sessionid")
    submit = command(Command.GET_ONLINE_USERS_LIST, "complete", session, max_items=["25"])
    done = answer(await commands.handle_iq(submit, context(router)))
    assert done.get("status") == "completed" and done.get("sessionid") == session
    result = done.find(X)
    assert result is not None and result.get("type") == "result"
    assert values(result, "onlineuserjids") == [
        "admin@falcot.com",
        "lucy@falcot.com",
        "roland@falcot.com",
    ]


async def test_xep0133_4_16_max_items_truncates(router: Router) -> None:
    many = AdminCommands(Online([parse_jid(f"u{n:03}@falcot.com/r") for n in range(60)]))
    session = await start(many, router, Command.GET_ONLINE_USERS_LIST)
    submit = command(Command.GET_ONLINE_USERS_LIST, "complete", session, max_items=["50"])
    result = answer(await many.handle_iq(submit, context(router))).find(X)
    assert result is not None
    assert len(values(result, "onlineuserjids")) == 50


@pytest.mark.parametrize("max_items", [["7"], ["25", "50"], ["-1"]])
async def test_xep0133_max_items_not_offered_is_bad_request(
    commands: AdminCommands, router: Router, max_items: list[str]
) -> None:
    session = await start(commands, router, Command.GET_ONLINE_USERS_LIST)
    submit = command(Command.GET_ONLINE_USERS_LIST, "complete", session, max_items=max_items)
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(submit, context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


async def test_xep0133_4_23_announcement_reaches_each_online_user_once(
    commands: AdminCommands, router: Router
) -> None:
    session = await start(commands, router, Command.ANNOUNCE)
    submit = command(
        Command.ANNOUNCE,
        "complete",
        session,
        subject=["Maintenance"],
        announcement=["Restart at 22:00.", "Back at 22:05."],
    )
    done = answer(await commands.handle_iq(submit, context(router)))
    assert done.get("status") == "completed"
    note = done.find(qname(NS.COMMANDS, "note"))
    assert note is not None and note.text == "Announcement sent to 3 users."
    assert [m.get("to") for m in router.routed] == [
        "admin@falcot.com",
        "lucy@falcot.com",
        "roland@falcot.com",
    ]
    for message in router.routed:
        assert message.tag == qname(NS.CLIENT, "message")
        assert message.get("from") == "falcot.com" and message.get("type") == "headline"
        assert message.findtext(qname(NS.CLIENT, "subject")) == "Maintenance"
        assert message.findtext(qname(NS.CLIENT, "body")) == "Restart at 22:00.\nBack at 22:05."


async def test_xep0133_empty_announcement_is_bad_request(
    commands: AdminCommands, router: Router
) -> None:
    session = await start(commands, router, Command.ANNOUNCE)
    submit = command(Command.ANNOUNCE, "complete", session, announcement=["  "])
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(submit, context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
    assert router.routed == []


async def test_xep0050_3_4_cancel_ends_the_session(commands: AdminCommands, router: Router) -> None:
    session = await start(commands, router, Command.ANNOUNCE)
    done = answer(
        await commands.handle_iq(command(Command.ANNOUNCE, "cancel", session), context(router))
    )
    assert done.get("status") == "canceled"
    submit = command(Command.ANNOUNCE, "complete", session, announcement=["late"])
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(submit, context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
    assert router.routed == []


async def test_xep0050_session_belongs_to_the_admin_who_started_it(
    commands: AdminCommands, router: Router
) -> None:
    session = await start(commands, router, Command.ANNOUNCE)
    other = parse_jid("other-admin@falcot.com/x")
    submit = command(Command.ANNOUNCE, "complete", session, announcement=["hijack"])
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(submit, context(router, sender=other))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
    # The rightful admin can still finish it.
    submit = command(Command.ANNOUNCE, "complete", session, announcement=["hello"])
    assert answer(await commands.handle_iq(submit, context(router))).get("status") == "completed"


@pytest.mark.parametrize(
    ("node", "action", "condition"),
    [
        ("urn:example:nothing", None, StanzaCondition.ITEM_NOT_FOUND),
        (Command.ANNOUNCE, "dance", StanzaCondition.BAD_REQUEST),
    ],
)
async def test_xep0050_4_6_errors(
    commands: AdminCommands,
    router: Router,
    node: str,
    action: str | None,
    condition: StanzaCondition,
) -> None:
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(command(node, action), context(router))
    assert caught.value.condition is condition


async def test_xep0050_complete_without_a_form_is_bad_request(
    commands: AdminCommands, router: Router
) -> None:
    session = await start(commands, router, Command.ANNOUNCE)
    with pytest.raises(StanzaError) as caught:
        await commands.handle_iq(command(Command.ANNOUNCE, "complete", session), context(router))
    assert caught.value.condition is StanzaCondition.BAD_REQUEST
