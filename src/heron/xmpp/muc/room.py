"""One XEP-0045 room, sans-IO: stanzas addressed to it in, stanzas to send out.

The service (``heron.xmpp.muc.service``) finds the room, calls one of
:meth:`Room.handle_presence`, :meth:`Room.handle_message` or
:meth:`Room.handle_iq` with the sender's full JID, whether it is a server
admin, and ``now``; it routes the :class:`Outcome`'s stanzas in order and saves
the room when :attr:`Outcome.changed` says its lasting state moved. A request
the room refuses raises :class:`heron.xmpp.errors.StanzaError`, which the
service bounces.

One occupant per nickname and per full JID; an occupant's role lasts the
visit, a user's affiliation lasts as long as the room (§5). Server admins are
owners of every room. History lives in memory, as in Prosody without MAM.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from typing import TypeVar
from xml.etree.ElementTree import Element, SubElement, tostring

from heron.xmpp.errors import ErrorType, StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.model import (
    ROOMINFO,
    Affiliated,
    Affiliation,
    Limits,
    Occupant,
    Outcome,
    Role,
    RoomConfig,
    RoomRecord,
    RoomSummary,
    Status,
    Whois,
    apply_form,
    config_form,
)
from heron.xmpp.muc.nickname import ByNickname, prepare_nickname
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["Room"]

STANZA_ID = "urn:xmpp:sid:0"  # XEP-0359
_PRESENCE = qname(NS.CLIENT, "presence")
_MESSAGE = qname(NS.CLIENT, "message")
_X_MUC = qname(NS.MUC, "x")
_X_USER = qname(NS.MUC_USER, "x")
_ITEM_ADMIN = qname(NS.MUC_ADMIN, "item")
_MAX_PRESENCE_CHILDREN = 16
_MAX_INVITES = 10
_E = TypeVar("_E", Role, Affiliation)


@dataclass(frozen=True, slots=True)
class _Entry:
    message: Element  # from room/nick, no 'to'
    at: float
    chars: int


def _refuse(condition: StanzaCondition, text: str, type_: ErrorType | None = None) -> StanzaError:
    return StanzaError(condition, text, type_)


def _stamp(at: float) -> str:
    """XEP-0082 DateTime in UTC, as XEP-0203 delay wants it."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count(text: str | None) -> int | None:
    """A non-negative history limit (§7.2.15); nonsense is ignored, as Prosody does."""
    if text is None or not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def _since(text: str | None) -> float | None:
    if text is None or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _enum(kind: type[_E], value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise _refuse(StanzaCondition.BAD_REQUEST, f"unknown {value!r}") from None


def _text(element: Element | None, tag: str, limit: int) -> str:
    value = element.findtext(tag) if element is not None else None
    if value is not None and len(value) > limit:
        raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "text too long")
    return value or ""


class Room:
    """A room's state and rules; see the module docstring for the calling convention."""

    def __init__(
        self,
        jid: JID,
        config: RoomConfig,
        limits: Limits,
        ids: Callable[[], str],
        *,
        affiliations: Iterable[Affiliated] = (),
        subject: str = "",
        subject_nick: str = "",
        created_at: float = 0.0,
        locked: bool = False,
    ) -> None:
        self.jid = jid
        self.config = config
        self.locked = locked
        self.destroyed = False
        self.subject = subject
        self.subject_nick = subject_nick
        self.created_at = created_at
        self._limits = limits
        self._ids = ids
        self._affiliations = {entry.jid: entry for entry in affiliations}
        self._occupants: ByNickname[Occupant] = ByNickname()
        self._nicks: dict[JID, str] = {}
        self._history: deque[_Entry] = deque(maxlen=limits.history)
        self._history_chars = 0
        self._fresh = False

    @classmethod
    def create(
        cls,
        jid: JID,
        creator: JID,
        now: float,
        limits: Limits,
        ids: Callable[[], str],
        *,
        locked: bool = True,
    ) -> Room:
        """§10.1.1: a new room whose creator is its owner, locked until configured."""
        room = cls(
            jid,
            RoomConfig(max_users=limits.max_occupants),
            limits,
            ids,
            affiliations=[Affiliated(creator.bare, Affiliation.OWNER)],
            created_at=now,
            locked=locked,
        )
        room._fresh = True
        return room

    @classmethod
    def restore(
        cls, service: str, record: RoomRecord, limits: Limits, ids: Callable[[], str]
    ) -> Room:
        return cls(
            JID(record.name, service),
            record.config,
            limits,
            ids,
            affiliations=record.affiliations,
            subject=record.subject,
            subject_nick=record.subject_nick,
            created_at=record.created_at,
        )

    def record(self) -> RoomRecord:
        entries = sorted(self._affiliations.values(), key=lambda entry: str(entry.jid))
        return RoomRecord(
            self.jid.local,
            self.config,
            tuple(entries),
            self.subject,
            self.subject_nick,
            self.created_at,
        )

    def summary(self) -> RoomSummary:
        return RoomSummary(
            self.jid,
            self.config.name or self.jid.local,
            len(self._occupants),
            self.config.persistent,
            self.config.public,
            self.config.members_only,
            self.config.password_protected,
            self.locked,
        )

    @property
    def occupant_count(self) -> int:
        return len(self._occupants)

    @property
    def gone(self) -> bool:
        """Destroyed, or temporary and empty: the service drops it (§10.1, §10.9)."""
        return self.destroyed or (not self._occupants and not self.config.persistent)

    @property
    def listed(self) -> bool:
        """Shown in the service's disco#items (§6.3): public and configured."""
        return self.config.public and not self.locked

    def affiliation(self, jid: JID, server_admin: bool = False) -> Affiliation:
        if server_admin:
            return Affiliation.OWNER
        entry = self._affiliations.get(jid.bare)
        return entry.affiliation if entry else Affiliation.NONE

    def occupant(self, jid: JID) -> Occupant | None:
        nick = self._nicks.get(jid)
        return None if nick is None else self._occupants[nick]

    def _affiliation_of(self, occupant: Occupant) -> Affiliation:
        return self.affiliation(occupant.jid, occupant.server_admin)

    # -- presence: join (§7.2), nick change (§7.6), update, leave (§7.14) --

    def handle_presence(
        self, stanza: Element, sender: JID, nick: str, server_admin: bool, now: float
    ) -> Outcome:
        kind = stanza.get("type")
        occupant = self.occupant(sender)
        if kind == "unavailable":
            return self._leave(occupant, stanza, ()) if occupant else Outcome()
        if kind == "error":
            # §7.14 status 333: the occupant's client is gone; do not write to it again.
            if occupant is None:
                return Outcome()
            out = self._remove(occupant, (Status.ERROR,))
            return Outcome(tuple(s for s in out if s.get("to") != str(sender)))
        if kind is not None:
            return Outcome()  # subscriptions and probes mean nothing to a room
        # §7.2.1: a nickname is required; RFC 8266 says which ones are the same.
        nick = prepare_nickname(nick)
        if len(nick) > self._limits.max_nick:
            raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "nickname too long")
        kept = (child for child in stanza if child.tag not in (_X_MUC, _X_USER))
        payload = tuple(deepcopy(child) for child in islice(kept, _MAX_PRESENCE_CHILDREN))
        muc = stanza.find(_X_MUC)
        if occupant is None:
            return self._join(sender, nick, server_admin, payload, muc, now)
        if nick != occupant.nick:
            return self._change_nick(occupant, nick, payload)
        updated = replace(occupant, presence=payload)
        self._occupants[nick] = updated
        if muc is not None:
            # A client that lost its state joins again: give it the whole room again.
            return Outcome(tuple(self._join_sequence(updated, muc, (), now)))
        return Outcome(tuple(self._broadcast(updated)))

    def _join(
        self,
        sender: JID,
        nick: str,
        server_admin: bool,
        payload: tuple[Element, ...],
        muc: Element | None,
        now: float,
    ) -> Outcome:
        affiliation = self.affiliation(sender, server_admin)
        if self.locked and affiliation is not Affiliation.OWNER:
            raise _refuse(StanzaCondition.ITEM_NOT_FOUND, "the room is not configured yet")
        if affiliation is Affiliation.OUTCAST:
            raise _refuse(StanzaCondition.FORBIDDEN, "you are banned from this room")  # §7.2.7
        if self.config.members_only and affiliation.rank < Affiliation.MEMBER.rank:
            raise _refuse(StanzaCondition.REGISTRATION_REQUIRED, "members only")  # §7.2.6
        if nick in self._occupants:
            raise _refuse(StanzaCondition.CONFLICT, "nickname in use")  # §7.2.8
        if self.config.password and affiliation is not Affiliation.OWNER:
            given = muc.findtext(qname(NS.MUC, "password")) if muc is not None else None
            if given != self.config.password:
                raise _refuse(StanzaCondition.NOT_AUTHORIZED, "password required")  # §7.2.5
        full = len(self._occupants) >= self.config.max_users
        if (full and affiliation.rank < Affiliation.ADMIN.rank) or len(
            self._occupants
        ) >= self._limits.max_occupants:
            raise _refuse(
                StanzaCondition.SERVICE_UNAVAILABLE, "the room is full", ErrorType.WAIT
            )  # §7.2.9
        occupant = Occupant(nick, sender, self._default_role(affiliation), server_admin, payload)
        self._occupants[nick] = occupant
        self._nicks[sender] = nick
        codes = []
        if self.config.whois is Whois.ANYONE:
            codes.append(Status.NON_ANONYMOUS)
        if self._fresh:
            codes.append(Status.CREATED)
            self._fresh = False
        return Outcome(tuple(self._join_sequence(occupant, muc, codes, now)))

    def _join_sequence(
        self, occupant: Occupant, muc: Element | None, codes: Iterable[Status], now: float
    ) -> list[Element]:
        """§7.2.3: the others to the newcomer, the newcomer to the others, then its
        self-presence last; history (§7.2.15) and subject (§7.2.16) follow.
        """
        others = [other for other in self._occupants.values() if other is not occupant]
        out = [self._presence(other, occupant) for other in others]
        out += [self._presence(occupant, other) for other in others]
        out.append(self._presence(occupant, occupant, codes))
        history = muc.find(qname(NS.MUC, "history")) if muc is not None else None
        out += self._history_for(occupant.jid, history, now)
        out.append(self._subject_message(occupant.jid))
        return out

    def _change_nick(self, occupant: Occupant, nick: str, payload: tuple[Element, ...]) -> Outcome:
        holder = self._occupants.get(nick)
        if holder is not None and holder is not occupant:  # "Roland" may become "roland"
            raise _refuse(StanzaCondition.CONFLICT, "nickname in use")  # §7.6.2
        # §7.6.1: unavailable from the old nick with 303 and the new one, then available.
        old = replace(occupant, presence=())
        out = [
            self._presence(old, viewer, (Status.NEW_NICK,), unavailable=True, nick=nick)
            for viewer in self._occupants.values()
        ]
        moved = replace(occupant, nick=nick, presence=payload)
        del self._occupants[occupant.nick]
        self._occupants[nick] = moved
        self._nicks[moved.jid] = nick
        return Outcome(tuple(out + self._broadcast(moved)))

    def _leave(self, occupant: Occupant, stanza: Element, codes: Iterable[Status]) -> Outcome:
        status = tuple(
            deepcopy(child) for child in stanza if child.tag == qname(NS.CLIENT, "status")
        )[:1]
        return Outcome(tuple(self._remove(occupant, codes, payload=status)))

    def _remove(
        self,
        occupant: Occupant,
        codes: Iterable[Status],
        *,
        affiliation: Affiliation | None = None,
        actor: str = "",
        reason: str = "",
        payload: tuple[Element, ...] = (),
    ) -> list[Element]:
        """The occupant leaves; everyone, itself included, hears it (§7.14, §8.2, §9.1)."""
        gone = replace(occupant, role=Role.NONE, presence=payload)
        out = [
            self._presence(
                gone,
                viewer,
                codes,
                unavailable=True,
                affiliation=affiliation,
                actor=actor,
                reason=reason,
            )
            for viewer in self._occupants.values()
        ]
        del self._occupants[occupant.nick]
        del self._nicks[occupant.jid]
        return out

    def _broadcast(self, about: Occupant, *, reason: str = "") -> list[Element]:
        return [self._presence(about, viewer, reason=reason) for viewer in self._occupants.values()]

    def _presence(
        self,
        about: Occupant,
        viewer: Occupant,
        codes: Iterable[Status] = (),
        *,
        unavailable: bool = False,
        affiliation: Affiliation | None = None,
        nick: str = "",
        actor: str = "",
        reason: str = "",
        destroy: Element | None = None,
    ) -> Element:
        """``about``'s presence as ``viewer`` gets it, with the muc#user item of §7.2.3."""
        presence = Element(_PRESENCE, {"from": self._nick_jid(about.nick), "to": str(viewer.jid)})
        if unavailable:
            presence.set("type", "unavailable")
        presence.extend(deepcopy(child) for child in about.presence)
        x = SubElement(presence, _X_USER)
        item = SubElement(
            x,
            qname(NS.MUC_USER, "item"),
            {
                "affiliation": (affiliation or self._affiliation_of(about)).value,
                "role": about.role.value,
            },
        )
        is_self = viewer.jid == about.jid
        # §7.2.3, §7.2.4: real JIDs go to moderators only, unless the room is non-anonymous.
        if is_self or viewer.role is Role.MODERATOR or self.config.whois is Whois.ANYONE:
            item.set("jid", str(about.jid))
        if nick:
            item.set("nick", nick)
        if actor:
            SubElement(item, qname(NS.MUC_USER, "actor"), {"nick": actor})
        if reason:
            SubElement(item, qname(NS.MUC_USER, "reason")).text = reason
        if destroy is not None:
            x.append(destroy)
        for code in sorted({*codes, *((Status.SELF,) if is_self else ())}):
            SubElement(x, qname(NS.MUC_USER, "status"), {"code": str(int(code))})
        return presence

    def _nick_jid(self, nick: str) -> str:
        # Nicks were prepared as resourceparts when they arrived; no need to prepare again.
        return str(JID(self.jid.local, self.jid.domain, nick))

    # -- history (§7.2.15) and subject (§7.2.16, §8.1) --

    def _remember(self, entry: _Entry) -> None:
        """Keep ``entry`` in the history, within both its count and its characters."""
        history = self._history
        if history.maxlen == 0:
            return
        if len(history) == history.maxlen:
            self._history_chars -= history.popleft().chars
        history.append(entry)
        self._history_chars += entry.chars
        while history and self._history_chars > self._limits.history_chars:
            self._history_chars -= history.popleft().chars

    def _history_for(self, to: JID, request: Element | None, now: float) -> list[Element]:
        entries = list(self._history)
        if request is not None:
            since = _since(request.get("since"))
            if since is not None:
                entries = [entry for entry in entries if entry.at >= since]
            seconds = _count(request.get("seconds"))
            if seconds is not None:
                entries = [entry for entry in entries if entry.at >= now - seconds]
            maxstanzas = _count(request.get("maxstanzas"))
            if maxstanzas is not None:
                entries = entries[-maxstanzas:] if maxstanzas else []
            maxchars = _count(request.get("maxchars"))
            if maxchars is not None:
                kept: list[_Entry] = []
                total = 0
                for entry in reversed(entries):
                    total += entry.chars
                    if total > maxchars:
                        break
                    kept.append(entry)
                entries = kept[::-1]
        out = []
        for entry in entries:
            message = deepcopy(entry.message)
            message.set("to", str(to))
            delay = {"from": str(self.jid), "stamp": _stamp(entry.at)}
            SubElement(message, qname(NS.DELAY, "delay"), delay)  # XEP-0203
            out.append(message)
        return out

    def _subject_message(self, to: JID) -> Element:
        """§7.2.16: the subject, empty if none, ends the join; clients wait for it."""
        origin = self._nick_jid(self.subject_nick) if self.subject_nick else str(self.jid)
        message = Element(
            _MESSAGE, {"type": "groupchat", "from": origin, "to": str(to), "id": self._ids()}
        )
        SubElement(message, qname(NS.CLIENT, "subject")).text = self.subject
        return message

    # -- messages: groupchat (§7.4), subject (§8.1), private (§7.5), invitations (§7.8.2) --

    def handle_message(
        self, stanza: Element, sender: JID, nick: str, server_admin: bool, now: float
    ) -> Outcome:
        kind = stanza.get("type", "normal")
        if kind == "error":
            return Outcome()
        occupant = self.occupant(sender)
        if nick:
            return self._private(stanza, occupant, nick, kind)
        if kind == "groupchat":
            if occupant is None:
                raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "only occupants may speak")  # §7.4
            subject = stanza.find(qname(NS.CLIENT, "subject"))
            body = stanza.find(qname(NS.CLIENT, "body"))
            if (
                subject is not None
                and body is None
                and stanza.find(qname(NS.CLIENT, "thread")) is None
            ):
                return self._set_subject(stanza, occupant, subject.text or "")
            if occupant.role is Role.VISITOR:
                raise _refuse(StanzaCondition.FORBIDDEN, "you have no voice here")  # §7.4
            return self._groupchat(stanza, occupant, body is not None, now)
        user = stanza.find(_X_USER)
        if user is not None and user.find(qname(NS.MUC_USER, "invite")) is not None:
            return self._invite(user, occupant)
        if user is not None and user.find(qname(NS.MUC_USER, "decline")) is not None:
            return self._decline(user, sender)
        raise _refuse(StanzaCondition.BAD_REQUEST, "send groupchat messages to the room")

    def _copy_for(self, message: Element, to: JID) -> Element:
        copy = deepcopy(message)
        copy.set("to", str(to))
        return copy

    def _groupchat(self, stanza: Element, occupant: Occupant, keep: bool, now: float) -> Outcome:
        message = Element(_MESSAGE, {"type": "groupchat", "from": self._nick_jid(occupant.nick)})
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        for child in stanza:
            # XEP-0359 §3: a stanza-id claiming to be ours must not come from a client.
            ours = child.tag == qname(STANZA_ID, "stanza-id") and child.get("by") == str(self.jid)
            if not ours and child.tag != _X_USER:
                message.append(deepcopy(child))
        SubElement(message, qname(STANZA_ID, "stanza-id"), {"id": self._ids(), "by": str(self.jid)})
        if keep:
            self._remember(_Entry(message, now, len(tostring(message, encoding="unicode"))))
        out = tuple(self._copy_for(message, viewer.jid) for viewer in self._occupants.values())
        return Outcome(out, messages=1)

    def _set_subject(self, stanza: Element, occupant: Occupant, text: str) -> Outcome:
        allowed = occupant.role is Role.MODERATOR or (
            occupant.role is Role.PARTICIPANT and self.config.change_subject
        )
        if not allowed:
            raise _refuse(StanzaCondition.FORBIDDEN, "you may not change the subject")  # §8.1
        if len(text) > self._limits.max_subject:
            raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "subject too long")
        self.subject, self.subject_nick = text, occupant.nick if text else ""
        message = Element(_MESSAGE, {"type": "groupchat", "from": self._nick_jid(occupant.nick)})
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        SubElement(message, qname(NS.CLIENT, "subject")).text = text
        out = tuple(self._copy_for(message, viewer.jid) for viewer in self._occupants.values())
        return Outcome(out, changed=True)

    def _private(self, stanza: Element, occupant: Occupant | None, nick: str, kind: str) -> Outcome:
        if kind == "groupchat":
            raise _refuse(StanzaCondition.BAD_REQUEST, "private messages are not groupchat")
        if occupant is None:
            raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "only occupants may write privately")
        target = self._occupants.get(nick)
        if target is None:
            raise _refuse(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")  # §7.5
        message = Element(
            _MESSAGE, {"type": kind, "from": self._nick_jid(occupant.nick), "to": str(target.jid)}
        )
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        message.extend(deepcopy(child) for child in stanza if child.tag != _X_USER)
        SubElement(message, _X_USER)  # §7.5: marks it as a private message through the room
        return Outcome((message,))

    def _invite(self, user: Element, occupant: Occupant | None) -> Outcome:
        """§7.8.2 mediated invitation; in a members-only room only admins invite, and
        their invitee becomes a member (Prosody's behaviour).
        """
        if occupant is None:
            raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "only occupants may invite")
        inviter = self._affiliation_of(occupant)
        if self.config.members_only and inviter.rank < Affiliation.ADMIN.rank:
            raise _refuse(StanzaCondition.FORBIDDEN, "only admins invite to this room")
        out = []
        changed = False
        for invite in user.findall(qname(NS.MUC_USER, "invite"))[:_MAX_INVITES]:
            invitee = parse_jid(invite.get("to") or "")
            reason = _text(invite, qname(NS.MUC_USER, "reason"), self._limits.max_text)
            message = Element(_MESSAGE, {"from": str(self.jid), "to": str(invitee)})
            x = SubElement(message, _X_USER)
            forwarded = SubElement(x, qname(NS.MUC_USER, "invite"), {"from": str(occupant.jid)})
            if reason:
                SubElement(forwarded, qname(NS.MUC_USER, "reason")).text = reason
            if self.config.password:
                SubElement(x, qname(NS.MUC_USER, "password")).text = self.config.password
            if self.config.members_only and self.affiliation(invitee) is Affiliation.NONE:
                self._check_room_for_affiliation(invitee.bare)
                self._affiliations[invitee.bare] = Affiliated(invitee.bare, Affiliation.MEMBER)
                changed = True
            out.append(message)
        return Outcome(tuple(out), changed=changed)

    def _decline(self, user: Element, sender: JID) -> Outcome:
        decline = user.find(qname(NS.MUC_USER, "decline"))
        assert decline is not None
        inviter = parse_jid(decline.get("to") or "")
        reason = _text(decline, qname(NS.MUC_USER, "reason"), self._limits.max_text)
        message = Element(_MESSAGE, {"from": str(self.jid), "to": str(inviter)})
        x = SubElement(message, _X_USER)
        forwarded = SubElement(x, qname(NS.MUC_USER, "decline"), {"from": str(sender.bare)})
        if reason:
            SubElement(forwarded, qname(NS.MUC_USER, "reason")).text = reason
        return Outcome((message,))

    # -- iq: disco (§6.4), muc#admin (§8, §9), muc#owner (§10) --

    def handle_iq(self, stanza: Element, sender: JID, nick: str, server_admin: bool) -> Outcome:
        kind = stanza.get("type")
        if kind not in ("get", "set"):
            return Outcome()
        if nick:
            raise _refuse(StanzaCondition.SERVICE_UNAVAILABLE, "occupants take no iq here")
        if len(stanza) != 1:
            raise _refuse(StanzaCondition.BAD_REQUEST, "an iq carries one payload")  # RFC 6120
        query = stanza[0]
        affiliation = self.affiliation(sender, server_admin)
        if self.locked and affiliation is not Affiliation.OWNER:
            raise _refuse(StanzaCondition.ITEM_NOT_FOUND, "the room is not configured yet")
        actor = self.occupant(sender)
        match kind, query.tag:
            case "get", tag if tag == qname(NS.DISCO_INFO, "query"):
                return Outcome((iq_result(stanza, self._disco_info()),))
            case "get", tag if tag == qname(NS.DISCO_ITEMS, "query"):
                return Outcome((iq_result(stanza, Element(qname(NS.DISCO_ITEMS, "query"))),))
            case "get", tag if tag == qname(NS.MUC_ADMIN, "query"):
                return Outcome((iq_result(stanza, self._admin_list(query, affiliation, actor)),))
            case "set", tag if tag == qname(NS.MUC_ADMIN, "query"):
                out = self._admin_set(query, affiliation, actor)
                return Outcome((iq_result(stanza), *out.stanzas), changed=out.changed)
            case _, tag if tag == qname(NS.MUC_OWNER, "query"):
                if affiliation is not Affiliation.OWNER:
                    raise _refuse(StanzaCondition.FORBIDDEN, "owners only")  # §10.2
                if kind == "get":
                    payload = Element(qname(NS.MUC_OWNER, "query"))
                    payload.append(config_form(self.config, self._limits))
                    return Outcome((iq_result(stanza, payload),))
                out = self._owner_set(query)
                return Outcome((iq_result(stanza), *out.stanzas), changed=out.changed)
        raise _refuse(StanzaCondition.SERVICE_UNAVAILABLE, "unsupported request")

    def _disco_info(self) -> Element:
        query = Element(qname(NS.DISCO_INFO, "query"))
        identity = {"category": "conference", "type": "text", "name": self.summary().title}
        SubElement(query, qname(NS.DISCO_INFO, "identity"), identity)
        for feature in (NS.MUC, NS.DISCO_INFO, NS.DISCO_ITEMS, STANZA_ID, *self.config.features):
            SubElement(query, qname(NS.DISCO_INFO, "feature"), {"var": feature})
        form = SubElement(query, qname(NS.DATA, "x"), {"type": "result"})
        for var, value in (
            ("FORM_TYPE", ROOMINFO),
            ("muc#roominfo_description", self.config.description),
            ("muc#roominfo_occupants", str(len(self._occupants))),
        ):
            field = SubElement(form, qname(NS.DATA, "field"), {"var": var})
            SubElement(field, qname(NS.DATA, "value")).text = value
        return query

    def _admin_list(
        self, query: Element, affiliation: Affiliation, actor: Occupant | None
    ) -> Element:
        """§8.5 voice list, §9.5 ban and member lists, §9.8 moderators, §10.5 owners/admins."""
        items = query.findall(_ITEM_ADMIN)
        if len(items) != 1:
            raise _refuse(StanzaCondition.BAD_REQUEST, "ask for one list")
        wanted_affiliation, wanted_role = items[0].get("affiliation"), items[0].get("role")
        result = Element(qname(NS.MUC_ADMIN, "query"))
        if wanted_affiliation is not None and wanted_role is None:
            kind = _enum(Affiliation, wanted_affiliation)
            if kind is Affiliation.NONE:
                raise _refuse(StanzaCondition.BAD_REQUEST, "there is no list of nobodies")
            if affiliation.rank < Affiliation.ADMIN.rank:
                raise _refuse(StanzaCondition.FORBIDDEN, "admins only")
            for entry in sorted(self._affiliations.values(), key=lambda e: str(e.jid)):
                if entry.affiliation is kind:
                    attributes = {"affiliation": kind.value, "jid": str(entry.jid)}
                    item = SubElement(result, _ITEM_ADMIN, attributes)
                    if entry.reason:
                        SubElement(item, qname(NS.MUC_ADMIN, "reason")).text = entry.reason
            return result
        if wanted_role is not None and wanted_affiliation is None:
            role = _enum(Role, wanted_role)
            moderator = actor is not None and actor.role is Role.MODERATOR
            if not moderator and affiliation.rank < Affiliation.ADMIN.rank:
                raise _refuse(StanzaCondition.FORBIDDEN, "moderators only")
            for occupant in self._occupants.values():
                if occupant.role is role:
                    attributes = {
                        "nick": occupant.nick,
                        "role": role.value,
                        "affiliation": self._affiliation_of(occupant).value,
                        "jid": str(occupant.jid),
                    }
                    SubElement(result, _ITEM_ADMIN, attributes)
            return result
        raise _refuse(StanzaCondition.BAD_REQUEST, "ask for a role or an affiliation")

    def _admin_set(
        self, query: Element, affiliation: Affiliation, actor: Occupant | None
    ) -> Outcome:
        """§8 and §9: role and affiliation changes, all checked before any is applied."""
        items = query.findall(_ITEM_ADMIN)
        if not 1 <= len(items) <= self._limits.max_items:
            raise _refuse(StanzaCondition.BAD_REQUEST, f"1 to {self._limits.max_items} items")
        roles: list[tuple[Occupant, Role, str]] = []
        affiliations: list[tuple[JID, Affiliation, str]] = []
        for item in items:
            reason = _text(item, qname(NS.MUC_ADMIN, "reason"), self._limits.max_text)
            role_value, affiliation_value = item.get("role"), item.get("affiliation")
            if role_value is not None and affiliation_value is None:
                target = self._occupants.get(item.get("nick") or "")
                if target is None:
                    raise _refuse(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
                role = _enum(Role, role_value)
                self._check_role(affiliation, actor, target, role)
                roles.append((target, role, reason))
            elif affiliation_value is not None and role_value is None:
                jid = self._item_jid(item)
                new = _enum(Affiliation, affiliation_value)
                self._check_affiliation(affiliation, jid, new)
                affiliations.append((jid, new, reason))
            else:
                raise _refuse(StanzaCondition.BAD_REQUEST, "an item sets a role or an affiliation")
        owners = {e.jid for e in self._affiliations.values() if e.affiliation is Affiliation.OWNER}
        remaining = set(owners)
        for jid, new, _reason in affiliations:
            if new is Affiliation.OWNER:
                remaining.add(jid)
            else:
                remaining.discard(jid)
        if owners and not remaining:
            raise _refuse(StanzaCondition.CONFLICT, "a room keeps at least one owner")  # §10.6
        actor_nick = actor.nick if actor else ""
        out: list[Element] = []
        for target, role, reason in roles:
            current = self._occupants.get(target.nick)
            if current is not None and current.jid == target.jid:  # not kicked by an earlier item
                out += self._set_role(current, role, actor_nick, reason)
        for jid, new, reason in affiliations:
            out += self._set_affiliation(jid, new, reason, actor_nick)
        return Outcome(tuple(out), changed=bool(affiliations))

    def _item_jid(self, item: Element) -> JID:
        """An affiliation item names a JID, or the nick of an occupant (as Prosody allows)."""
        if item.get("jid"):
            jid = parse_jid(item.get("jid", "")).bare
        elif item.get("nick") in self._occupants:
            jid = self._occupants[item.get("nick", "")].jid.bare
        else:
            raise _refuse(StanzaCondition.BAD_REQUEST, "an affiliation item needs a jid")
        if len(str(jid)) > 320:
            raise _refuse(StanzaCondition.NOT_ACCEPTABLE, "address too long")
        return jid

    def _check_role(
        self, affiliation: Affiliation, actor: Occupant | None, target: Occupant, role: Role
    ) -> None:
        """§5.1.3 role privileges, with §8.2's rule that nobody kicks a higher affiliation."""
        moderator = actor is not None and actor.role is Role.MODERATOR
        if not moderator and affiliation.rank < Affiliation.ADMIN.rank:
            raise _refuse(StanzaCondition.FORBIDDEN, "moderators only")
        if Role.MODERATOR in (role, target.role) and affiliation.rank < Affiliation.ADMIN.rank:
            raise _refuse(StanzaCondition.FORBIDDEN, "admins grant and revoke moderation")  # §9.6
        target_affiliation = self._affiliation_of(target)
        if target_affiliation.rank >= Affiliation.ADMIN.rank and (
            role is not Role.NONE or target_affiliation.rank >= affiliation.rank
        ):
            raise _refuse(StanzaCondition.NOT_ALLOWED, "admins and owners keep moderation")
        if target_affiliation.rank > affiliation.rank:
            raise _refuse(StanzaCondition.NOT_ALLOWED, "higher affiliation")  # §8.2

    def _check_affiliation(self, affiliation: Affiliation, jid: JID, new: Affiliation) -> None:
        """§5.2.1: admins edit the member and ban lists, owners every list."""
        if affiliation.rank < Affiliation.ADMIN.rank:
            raise _refuse(StanzaCondition.FORBIDDEN, "admins only")  # §9.1
        current = self.affiliation(jid)
        if affiliation is Affiliation.ADMIN and max(current.rank, new.rank) >= affiliation.rank:
            raise _refuse(StanzaCondition.NOT_ALLOWED, "owners only")  # §10.3
        if new is not Affiliation.NONE:
            self._check_room_for_affiliation(jid)

    def _check_room_for_affiliation(self, jid: JID) -> None:
        if jid not in self._affiliations and len(self._affiliations) >= (
            self._limits.max_affiliations
        ):
            raise _refuse(StanzaCondition.RESOURCE_CONSTRAINT, "too many affiliations")

    def _default_role(self, affiliation: Affiliation) -> Role:
        """§5.1.2: admins and owners moderate; in a moderated room, the unaffiliated listen."""
        role = affiliation.default_role
        if role is Role.PARTICIPANT and affiliation is Affiliation.NONE and self.config.moderated:
            return Role.VISITOR
        return role

    def _set_role(self, target: Occupant, role: Role, actor: str, reason: str) -> list[Element]:
        if role is Role.NONE:
            return self._remove(target, (Status.KICKED,), actor=actor, reason=reason)  # §8.2
        updated = replace(target, role=role)
        self._occupants[target.nick] = updated
        return self._broadcast(updated, reason=reason)  # §8.3, §8.4, §9.6, §9.7

    def _set_affiliation(
        self, jid: JID, new: Affiliation, reason: str, actor: str
    ) -> list[Element]:
        previous = self.affiliation(jid)
        if new is Affiliation.NONE:
            self._affiliations.pop(jid, None)
        else:
            self._affiliations[jid] = Affiliated(jid, new, reason)
        out: list[Element] = []
        present = [o for o in self._occupants.values() if o.jid.bare == jid and not o.server_admin]
        for occupant in present:
            if new is Affiliation.OUTCAST:
                out += self._remove(occupant, (Status.BANNED,), actor=actor, reason=reason)  # §9.1
            elif self.config.members_only and new.rank < Affiliation.MEMBER.rank:
                codes = (Status.AFFILIATION_CHANGED,)  # §9.4
                out += self._remove(occupant, codes, actor=actor, reason=reason)
            else:
                role = occupant.role
                if max(new.rank, previous.rank) >= Affiliation.ADMIN.rank:
                    role = self._default_role(new)  # §10.3, §10.7: moderation follows
                updated = replace(occupant, role=role)
                self._occupants[occupant.nick] = updated
                out += self._broadcast(updated, reason=reason)
        return out

    def _owner_set(self, query: Element) -> Outcome:
        destroy = query.find(qname(NS.MUC_OWNER, "destroy"))
        if destroy is not None:
            reason = _text(destroy, qname(NS.MUC_OWNER, "reason"), self._limits.max_text)
            return self.destroy(reason, destroy.get("jid"))
        form = query.find(qname(NS.DATA, "x"))
        if form is None:
            raise _refuse(StanzaCondition.BAD_REQUEST, "send a form or a destroy request")
        if form.get("type") == "cancel":
            # §10.1.3: cancelling the first configuration destroys the new room.
            return self.destroy() if self.locked else Outcome()
        if form.get("type") != "submit":
            raise _refuse(StanzaCondition.BAD_REQUEST, "submit the form")
        # An empty submit keeps the defaults: the instant room of §10.1.2.
        return self._configure(apply_form(self.config, form, self._limits))

    def _configure(self, new: RoomConfig) -> Outcome:
        old, first = self.config, self.locked
        self.config, self.locked = new, False
        out: list[Element] = []
        if new.members_only and not old.members_only:
            for occupant in list(self._occupants.values()):
                if self._affiliation_of(occupant).rank < Affiliation.MEMBER.rank:
                    out += self._remove(occupant, (Status.MEMBERS_ONLY,))
        if not first and new != old:
            codes = [Status.CONFIG_CHANGED]  # §10.2.1
            if new.whois != old.whois:
                anyone = new.whois is Whois.ANYONE
                codes.append(Status.NOW_NON_ANONYMOUS if anyone else Status.NOW_SEMI_ANONYMOUS)
            for viewer in self._occupants.values():
                attributes = {"type": "groupchat", "from": str(self.jid), "to": str(viewer.jid)}
                message = Element(_MESSAGE, {**attributes, "id": self._ids()})
                x = SubElement(message, _X_USER)
                for code in codes:
                    SubElement(x, qname(NS.MUC_USER, "status"), {"code": str(int(code))})
                out.append(message)
        return Outcome(tuple(out), changed=True)

    def destroy(self, reason: str = "", alternative: str | None = None) -> Outcome:
        """§10.9: every occupant is told, with the alternative venue if any; the room is gone."""
        element = Element(qname(NS.MUC_USER, "destroy"))
        if alternative:
            element.set("jid", str(parse_jid(alternative)))
        if reason:
            SubElement(element, qname(NS.MUC_USER, "reason")).text = reason
        out = []
        for occupant in self._occupants.values():
            gone = replace(occupant, role=Role.NONE, presence=())
            out.append(
                self._presence(
                    gone,
                    occupant,
                    unavailable=True,
                    affiliation=Affiliation.NONE,
                    destroy=deepcopy(element),
                )
            )
        self._occupants.clear()
        self._nicks.clear()
        self.destroyed = True
        return Outcome(tuple(out), changed=True)
