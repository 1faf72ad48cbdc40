"""Service Administration (XEP-0133) over Ad-Hoc Commands (XEP-0050), for heron's admins.

Two commands, each in two stages: ``execute`` answers with a XEP-0004 form
and a session id, ``complete`` with the filled form runs it. Sessions are kept
in a small bounded table keyed by id and bound to the admin's full JID, so one
admin cannot finish another's command. Everyone else gets forbidden, and the
commands node lists nothing to them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.features.disco import DiscoInfo, DiscoItem, Identity
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["AdminCommands", "Command", "OnlineUsers"]

ADMIN = "http://jabber.org/protocol/admin"  # XEP-0133 §5, the FORM_TYPE
_MAX_SESSIONS = 64
_MAX_ITEMS = ("25", "50", "75", "100", "150", "200", "none")  # XEP-0133 §4.16 options

_COMMAND = qname(NS.COMMANDS, "command")
_X = qname(NS.DATA, "x")
_FIELD = qname(NS.DATA, "field")
_VALUE = qname(NS.DATA, "value")


class Command(StrEnum):
    """Command nodes (XEP-0133 §4) heron implements."""

    GET_ONLINE_USERS_LIST = f"{ADMIN}#get-online-users-list"  # §4.16
    ANNOUNCE = f"{ADMIN}#announce"  # §4.23


_NAMES = {
    Command.GET_ONLINE_USERS_LIST: "Get List of Online Users",
    Command.ANNOUNCE: "Send Announcement to Online Users",
}


class Action(StrEnum):
    """XEP-0050 §3.4 actions."""

    EXECUTE = "execute"
    NEXT = "next"
    COMPLETE = "complete"
    CANCEL = "cancel"


class OnlineUsers(Protocol):
    """The full JIDs of every connected session."""

    def online(self) -> list[JID]: ...


@dataclass(frozen=True, slots=True)
class _Session:
    node: Command
    admin: JID


def _field(form: Element, var: str, kind: str, label: str | None = None) -> Element:
    attributes = {"var": var, "type": kind}
    if label:
        attributes["label"] = label
    return SubElement(form, _FIELD, attributes)


def _form(kind: str, title: str) -> Element:
    form = Element(_X, {"type": kind})
    SubElement(form, qname(NS.DATA, "title")).text = title
    SubElement(_field(form, "FORM_TYPE", "hidden"), _VALUE).text = ADMIN
    return form


def _submitted(command: Element) -> dict[str, list[str]]:
    """XEP-0004 §3.1: the values of a submitted form, by field var."""
    form = command.find(_X)
    if form is None or form.get("type") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected a submitted data form")
    return {
        field.get("var", ""): [value.text or "" for value in field.iterfind(_VALUE)]
        for field in form.iterfind(_FIELD)
    }


class AdminCommands:
    """XEP-0050 commands handler and the provider of its disco nodes (§2.2, §2.3)."""

    namespace: str = NS.COMMANDS
    disco_features: tuple[str, ...] = (NS.COMMANDS,)

    def __init__(self, online: OnlineUsers) -> None:
        self._online = online
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._session_ids = itertools.count(1)

    def disco_items(self, node: str, context: IqContext) -> Sequence[DiscoItem] | None:
        """§2.2: the command list; empty for a user who may run none of them."""
        if node != NS.COMMANDS or context.to.local:
            return None
        if not context.is_admin:
            return ()
        server = context.to.domain
        return tuple(DiscoItem(server, _NAMES[command], command) for command in Command)

    def disco_info(self, node: str, context: IqContext) -> DiscoInfo | None:
        """§2.3: a command node is an automation/command-node taking data forms."""
        if context.to.local or node not in tuple(Command) or not context.is_admin:
            return None
        identity = Identity("automation", "command-node", _NAMES[Command(node)])
        return DiscoInfo((identity,), (NS.COMMANDS.value, NS.DATA.value))

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        command = iq.find(_COMMAND)
        if iq.get("type") != "set" or command is None or context.to.local:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq set with <command/>")
        node = command.get("node", "")
        if node not in tuple(Command):
            # §4.6: "the responder MUST return an <item-not-found/> error".
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such command")
        if not context.is_admin:
            raise StanzaError(StanzaCondition.FORBIDDEN, "for administrators only")
        try:
            action = Action(command.get("action", Action.EXECUTE))
        except ValueError:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "malformed action") from None
        session_id = command.get("sessionid")
        if session_id is None:
            return iq_result(iq, self._start(Command(node), context.sender))
        session = self._sessions.get(session_id)
        if session is None or session.node != node or session.admin != context.sender:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "bad or expired session id")
        del self._sessions[session_id]
        if action is Action.CANCEL:
            # §3.4.4: the session ends with status "canceled".
            return iq_result(iq, self._reply(session.node, session_id, "canceled"))
        if action is Action.NEXT:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "both commands have one stage")
        fields = _submitted(command)
        reply = self._reply(session.node, session_id, "completed")
        if session.node is Command.GET_ONLINE_USERS_LIST:
            reply.append(self._online_users(fields))
        else:
            sent = await self._announce(fields, context)
            note = SubElement(reply, qname(NS.COMMANDS, "note"), {"type": "info"})
            note.text = f"Announcement sent to {sent} users."
        return iq_result(iq, reply)

    def _start(self, node: Command, admin: JID) -> Element:
        """§3.2: the first stage, a form to fill in, under a new session id."""
        session_id = f"admin-{next(self._session_ids)}"
        self._sessions[session_id] = _Session(node, admin)
        while len(self._sessions) > _MAX_SESSIONS:
            self._sessions.popitem(last=False)
        reply = self._reply(node, session_id, "executing")
        actions = SubElement(reply, qname(NS.COMMANDS, "actions"), {"execute": "complete"})
        SubElement(actions, qname(NS.COMMANDS, "complete"))
        form = _form("form", _NAMES[node])
        if node is Command.GET_ONLINE_USERS_LIST:
            limit = _field(form, "max_items", "list-single", "Maximum number of items to show")
            for option in _MAX_ITEMS:
                choice = SubElement(limit, qname(NS.DATA, "option"), {"label": option})
                SubElement(choice, _VALUE).text = option
        else:
            _field(form, "subject", "text-single", "Subject")
            body = _field(form, "announcement", "text-multi", "Announcement")
            SubElement(body, qname(NS.DATA, "required"))
        reply.append(form)
        return reply

    @staticmethod
    def _reply(node: Command, session_id: str, status: str) -> Element:
        attributes = {"node": node, "sessionid": session_id, "status": status}
        return Element(_COMMAND, attributes)

    def _online_users(self, fields: dict[str, list[str]]) -> Element:
        """§4.16: the bare JIDs of users with a session, at most max_items of them."""
        values = fields.get("max_items") or ["none"]
        limit = values[0] if len(values) == 1 else ""
        if limit not in _MAX_ITEMS:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "max_items is not an offered option")
        users = sorted({str(jid.bare) for jid in self._online.online()})
        if limit != "none":
            users = users[: int(limit)]
        form = _form("result", _NAMES[Command.GET_ONLINE_USERS_LIST])
        listed = _field(form, "onlineuserjids", "text-multi", "The list of all online users")
        for user in users:
            SubElement(listed, _VALUE).text = user
        return form

    async def _announce(self, fields: dict[str, list[str]], context: IqContext) -> int:
        """§4.23: a headline message from the server to each online user's bare JID.

        RFC 6121 §8.5.2.1.1: a headline to a bare JID reaches all its resources.
        """
        text = "\n".join(fields.get("announcement", []))
        if not text.strip():
            raise StanzaError(StanzaCondition.BAD_REQUEST, "the announcement is empty")
        subject = " ".join(fields.get("subject", [])).strip()
        users = sorted({jid.bare for jid in self._online.online()}, key=str)
        server = JID("", context.to.domain)
        for user in users:
            message = Element(
                qname(NS.CLIENT, "message"),
                {"type": "headline", "from": str(server), "to": str(user)},
            )
            if subject:
                SubElement(message, qname(NS.CLIENT, "subject")).text = subject
            SubElement(message, qname(NS.CLIENT, "body")).text = text
            await context.router.route(message, server, user)
        return len(users)
