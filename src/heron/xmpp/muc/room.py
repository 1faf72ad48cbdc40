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
owners of every room.

Here: entering (§7.2), presence broadcast, nick changes (§7.6), leaving (§7.14),
groupchat, private messages, subject and invitations (§7.4–7.8, §8.1), disco (§6.4),
destruction (§10.9), and XEP-0410's self-ping, which the room answers itself.
Elsewhere: ``history`` (§7.2.15), ``moderation`` (muc#admin, §8, §9, §10.3–10.7),
``owner`` (muc#owner, §10.1–10.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import replace
from itertools import islice
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.archive import EXTENDED, MAM
from heron.xmpp.errors import ErrorType, StanzaCondition, StanzaError
from heron.xmpp.features import Routed
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.history import History
from heron.xmpp.muc.model import (
    ROOMINFO,
    Affiliated,
    Affiliation,
    Archived,
    Limits,
    MucStatus,
    Occupant,
    Outcome,
    Role,
    RoomConfig,
    RoomRecord,
    RoomSummary,
    Whois,
    bounded_text,
)
from heron.xmpp.muc.moderation import admin_list, admin_set
from heron.xmpp.muc.nickname import ByNickname, prepare_nickname
from heron.xmpp.muc.owner import owner_get, owner_set
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["Room", "is_ping"]

STANZA_ID = "urn:xmpp:sid:0"  # XEP-0359
_PRESENCE = qname(NS.CLIENT, "presence")
_MESSAGE = qname(NS.CLIENT, "message")
_X_MUC = qname(NS.MUC, "x")
_X_USER = qname(NS.MUC_USER, "x")
_MAX_PRESENCE_CHILDREN = 16
_MAX_INVITES = 10
_PING = qname(NS.PING, "ping")


def is_ping(stanza: Element) -> bool:
    """An XEP-0199 ping: an iq get whose one child is <ping/>. Addressed to an occupant
    JID, it is an XEP-0410 self-ping when the occupant is the sender."""
    return (
        stanza.tag == qname(NS.CLIENT, "iq")
        and stanza.get("type") == "get"
        and len(stanza) == 1
        and stanza[0].tag == _PING
    )


class Room:
    """A room's state and rules; see the module docstring for the calling convention.

    The moderation and owner modules change the room through ``occupants``,
    ``affiliations``, ``limits``, ``ids`` and the public methods below ``occupant``.
    """

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
        self.limits = limits
        self.ids = ids
        self.affiliations = {entry.jid: entry for entry in affiliations}
        self.occupants: ByNickname[Occupant] = ByNickname()
        self._nicks: dict[JID, str] = {}
        self._history = History(jid, limits.history, limits.history_chars)
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
        entries = sorted(self.affiliations.values(), key=lambda entry: str(entry.jid))
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
            len(self.occupants),
            self.config.persistent,
            self.config.public,
            self.config.members_only,
            self.config.password_protected,
            self.locked,
        )

    @property
    def occupant_count(self) -> int:
        return len(self.occupants)

    @property
    def gone(self) -> bool:
        """Destroyed, or temporary and empty: the service drops it (§10.1, §10.9)."""
        return self.destroyed or (not self.occupants and not self.config.persistent)

    @property
    def listed(self) -> bool:
        """Shown in the service's disco#items (§6.3): public and configured."""
        return self.config.public and not self.locked

    def affiliation(self, jid: JID, server_admin: bool = False) -> Affiliation:
        if server_admin:
            return Affiliation.OWNER
        entry = self.affiliations.get(jid.bare)
        return entry.affiliation if entry else Affiliation.NONE

    @property
    def archives(self) -> bool:
        """Whether groupchat messages go to the room's archive (XEP-0313 §5)."""
        return self.limits.archive and self.config.archive

    def may_read_archive(self, jid: JID, server_admin: bool) -> bool:
        """XEP-0313 §5: who may query the room's archive. Anyone who may enter and see the
        discussion: not outcasts; in a members-only room, members and above; in a
        password-protected one, occupants (who gave it) and members."""
        affiliation = self.affiliation(jid, server_admin)
        if affiliation is Affiliation.OUTCAST or self.locked and not server_admin:
            return False
        member = affiliation.rank >= Affiliation.MEMBER.rank
        if self.config.members_only:
            return member
        if self.config.password:
            return member or self.occupant(jid) is not None
        return True

    def occupant(self, jid: JID) -> Occupant | None:
        nick = self._nicks.get(jid)
        return None if nick is None else self.occupants[nick]

    def affiliation_of(self, occupant: Occupant) -> Affiliation:
        return self.affiliation(occupant.jid, occupant.server_admin)

    def default_role(self, affiliation: Affiliation) -> Role:
        """§5.1.2: admins and owners moderate; in a moderated room, the unaffiliated listen."""
        role = affiliation.default_role
        if role is Role.PARTICIPANT and affiliation is Affiliation.NONE and self.config.moderated:
            return Role.VISITOR
        return role

    def check_affiliation_space(self, jid: JID) -> None:
        """Refuse a new affiliated JID past ``limits.max_affiliations``."""
        if jid not in self.affiliations and len(self.affiliations) >= self.limits.max_affiliations:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many affiliations")

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
            out = self.remove(occupant, (MucStatus.ERROR,))
            return Outcome(tuple(routed for routed in out if routed.to != sender))
        if kind is not None:
            return Outcome()  # subscriptions and probes mean nothing to a room
        # §7.2.1: a nickname is required; RFC 8266 says which ones are the same.
        nick = prepare_nickname(nick)
        if len(nick) > self.limits.max_nick:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "nickname too long")
        kept = (child for child in stanza if child.tag not in (_X_MUC, _X_USER))
        payload = tuple(deepcopy(child) for child in islice(kept, _MAX_PRESENCE_CHILDREN))
        muc = stanza.find(_X_MUC)
        if occupant is None:
            return self._join(sender, nick, server_admin, payload, muc, now)
        if nick != occupant.nick:
            return self._change_nick(occupant, nick, payload)
        updated = replace(occupant, presence=payload)
        if muc is not None:
            self.occupants[nick] = updated
            # A client that lost its state joins again: give it the whole room again.
            return Outcome(tuple(self._join_sequence(updated, muc, (), now)))
        return Outcome(tuple(self.update(updated)))

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
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "the room is not configured yet")
        if affiliation is Affiliation.OUTCAST:
            raise StanzaError(StanzaCondition.FORBIDDEN, "you are banned from this room")  # §7.2.7
        if self.config.members_only and affiliation.rank < Affiliation.MEMBER.rank:
            raise StanzaError(StanzaCondition.REGISTRATION_REQUIRED, "members only")  # §7.2.6
        if nick in self.occupants:
            raise StanzaError(StanzaCondition.CONFLICT, "nickname in use")  # §7.2.8
        if self.config.password and affiliation is not Affiliation.OWNER:
            given = muc.findtext(qname(NS.MUC, "password")) if muc is not None else None
            if given != self.config.password:
                raise StanzaError(StanzaCondition.NOT_AUTHORIZED, "password required")  # §7.2.5
        full = len(self.occupants) >= self.config.max_users
        if (full and affiliation.rank < Affiliation.ADMIN.rank) or len(
            self.occupants
        ) >= self.limits.max_occupants:
            raise StanzaError(
                StanzaCondition.SERVICE_UNAVAILABLE, "the room is full", ErrorType.WAIT
            )  # §7.2.9
        occupant = Occupant(nick, sender, self.default_role(affiliation), server_admin, payload)
        self.occupants[nick] = occupant
        self._nicks[sender] = nick
        codes = []
        if self.config.whois is Whois.ANYONE:
            codes.append(MucStatus.NON_ANONYMOUS)
        if self._fresh:
            codes.append(MucStatus.CREATED)
            self._fresh = False
        return Outcome(tuple(self._join_sequence(occupant, muc, codes, now)))

    def _join_sequence(
        self, occupant: Occupant, muc: Element | None, codes: Iterable[MucStatus], now: float
    ) -> list[Routed]:
        """§7.2.3: the others to the newcomer, the newcomer to the others, then its
        self-presence last; history (§7.2.15) and subject (§7.2.16) follow.
        """
        others = [other for other in self.occupants.values() if other is not occupant]
        out = [self._presence(other, occupant) for other in others]
        out += [self._presence(occupant, other) for other in others]
        out.append(self._presence(occupant, occupant, codes))
        history = muc.find(qname(NS.MUC, "history")) if muc is not None else None
        out += self._history.replay(occupant.jid, history, now)
        out.append(self._subject_message(occupant.jid))
        return out

    def _change_nick(self, occupant: Occupant, nick: str, payload: tuple[Element, ...]) -> Outcome:
        holder = self.occupants.get(nick)
        if holder is not None and holder is not occupant:  # "Roland" may become "roland"
            raise StanzaError(StanzaCondition.CONFLICT, "nickname in use")  # §7.6.2
        # §7.6.1: unavailable from the old nick with 303 and the new one, then available.
        old = replace(occupant, presence=())
        out = [
            self._presence(old, viewer, (MucStatus.NEW_NICK,), unavailable=True, nick=nick)
            for viewer in self.occupants.values()
        ]
        moved = replace(occupant, nick=nick, presence=payload)
        del self.occupants[occupant.nick]
        self.occupants[nick] = moved
        self._nicks[moved.jid] = nick
        return Outcome(tuple(out + self._broadcast(moved)))

    def _leave(self, occupant: Occupant, stanza: Element, codes: Iterable[MucStatus]) -> Outcome:
        status = tuple(
            deepcopy(child) for child in stanza if child.tag == qname(NS.CLIENT, "status")
        )[:1]
        return Outcome(tuple(self.remove(occupant, codes, payload=status)))

    def remove(
        self,
        occupant: Occupant,
        codes: Iterable[MucStatus],
        *,
        actor: str = "",
        reason: str = "",
        payload: tuple[Element, ...] = (),
    ) -> list[Routed]:
        """The occupant leaves; everyone, itself included, hears it (§7.14, §8.2, §9.1)."""
        gone = replace(occupant, role=Role.NONE, presence=payload)
        out = [
            self._presence(
                gone,
                viewer,
                codes,
                unavailable=True,
                actor=actor,
                reason=reason,
            )
            for viewer in self.occupants.values()
        ]
        del self.occupants[occupant.nick]
        del self._nicks[occupant.jid]
        return out

    def update(self, occupant: Occupant, *, reason: str = "") -> list[Routed]:
        """Keep the occupant's new presence or role; everyone hears it (§7.7, §8.3, §9.6)."""
        self.occupants[occupant.nick] = occupant
        return self._broadcast(occupant, reason=reason)

    def _broadcast(self, about: Occupant, *, reason: str = "") -> list[Routed]:
        return [self._presence(about, viewer, reason=reason) for viewer in self.occupants.values()]

    def _presence(
        self,
        about: Occupant,
        viewer: Occupant,
        codes: Iterable[MucStatus] = (),
        *,
        unavailable: bool = False,
        affiliation: Affiliation | None = None,
        nick: str = "",
        actor: str = "",
        reason: str = "",
        destroy: Element | None = None,
    ) -> Routed:
        """``about``'s presence as ``viewer`` gets it, with the muc#user item of §7.2.3."""
        sender = self._nick_jid(about.nick)
        presence = Element(_PRESENCE, {"from": str(sender), "to": str(viewer.jid)})
        if unavailable:
            presence.set("type", "unavailable")
        presence.extend(deepcopy(child) for child in about.presence)
        x = SubElement(presence, _X_USER)
        affiliated = (affiliation or self.affiliation_of(about)).value
        attributes = {"affiliation": affiliated, "role": about.role.value}
        item = SubElement(x, qname(NS.MUC_USER, "item"), attributes)
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
        for code in sorted({*codes, *((MucStatus.SELF,) if is_self else ())}):
            SubElement(x, qname(NS.MUC_USER, "status"), {"code": str(int(code))})
        return Routed(presence, sender, viewer.jid)

    def _nick_jid(self, nick: str) -> JID:
        # Nicks were prepared as resourceparts when they arrived; no need to prepare again.
        return JID(self.jid.local, self.jid.domain, nick)

    # -- history (§7.2.15) and subject (§7.2.16, §8.1) --

    def _subject_message(self, to: JID) -> Routed:
        """§7.2.16: the subject, empty if none, ends the join; clients wait for it."""
        origin = self._nick_jid(self.subject_nick) if self.subject_nick else self.jid
        message = Element(
            _MESSAGE, {"type": "groupchat", "from": str(origin), "to": str(to), "id": self.ids()}
        )
        SubElement(message, qname(NS.CLIENT, "subject")).text = self.subject
        return Routed(message, origin, to)

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
                raise StanzaError(
                    StanzaCondition.NOT_ACCEPTABLE, "only occupants may speak"
                )  # §7.4
            subject = stanza.find(qname(NS.CLIENT, "subject"))
            body = stanza.find(qname(NS.CLIENT, "body"))
            if (
                subject is not None
                and body is None
                and stanza.find(qname(NS.CLIENT, "thread")) is None
            ):
                return self._set_subject(stanza, occupant, subject.text or "")
            if occupant.role is Role.VISITOR:
                raise StanzaError(StanzaCondition.FORBIDDEN, "you have no voice here")  # §7.4
            return self._groupchat(stanza, occupant, body is not None, now)
        user = stanza.find(_X_USER)
        if user is not None and user.find(qname(NS.MUC_USER, "invite")) is not None:
            return self._invite(user, occupant)
        if user is not None and user.find(qname(NS.MUC_USER, "decline")) is not None:
            return self._decline(user, sender)
        raise StanzaError(StanzaCondition.BAD_REQUEST, "send groupchat messages to the room")

    def _to_everyone(self, message: Element, sender: JID) -> tuple[Routed, ...]:
        """A copy of ``message`` for each occupant."""
        out = []
        for viewer in self.occupants.values():
            copy = deepcopy(message)
            copy.set("to", str(viewer.jid))
            out.append(Routed(copy, sender, viewer.jid))
        return tuple(out)

    def _groupchat(self, stanza: Element, occupant: Occupant, keep: bool, now: float) -> Outcome:
        sender = self._nick_jid(occupant.nick)
        message = Element(_MESSAGE, {"type": "groupchat", "from": str(sender)})
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        for child in stanza:
            # XEP-0359 §3: a stanza-id claiming to be ours must not come from a client.
            ours = child.tag == qname(STANZA_ID, "stanza-id") and child.get("by") == str(self.jid)
            if not ours and child.tag != _X_USER:
                message.append(deepcopy(child))
        id_ = self.ids()
        SubElement(message, qname(STANZA_ID, "stanza-id"), {"id": id_, "by": str(self.jid)})
        archived: tuple[Archived, ...] = ()
        if keep:
            self._history.remember(message, sender, now)
            if self.archives:
                archived = (Archived(message, sender, id_),)
        return Outcome(self._to_everyone(message, sender), messages=1, archive=archived)

    def _set_subject(self, stanza: Element, occupant: Occupant, text: str) -> Outcome:
        allowed = occupant.role is Role.MODERATOR or (
            occupant.role is Role.PARTICIPANT and self.config.change_subject
        )
        if not allowed:
            raise StanzaError(StanzaCondition.FORBIDDEN, "you may not change the subject")  # §8.1
        if len(text) > self.limits.max_subject:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "subject too long")
        self.subject, self.subject_nick = text, occupant.nick if text else ""
        sender = self._nick_jid(occupant.nick)
        message = Element(_MESSAGE, {"type": "groupchat", "from": str(sender)})
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        SubElement(message, qname(NS.CLIENT, "subject")).text = text
        return Outcome(self._to_everyone(message, sender), changed=True)

    def _private(self, stanza: Element, occupant: Occupant | None, nick: str, kind: str) -> Outcome:
        if kind == "groupchat":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "private messages are not groupchat")
        if occupant is None:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "only occupants may write privately")
        target = self.occupants.get(nick)
        if target is None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")  # §7.5
        sender = self._nick_jid(occupant.nick)
        message = Element(_MESSAGE, {"type": kind, "from": str(sender), "to": str(target.jid)})
        if stanza.get("id"):
            message.set("id", stanza.get("id", ""))
        message.extend(deepcopy(child) for child in stanza if child.tag != _X_USER)
        SubElement(message, _X_USER)  # §7.5: marks it as a private message through the room
        return Outcome((Routed(message, sender, target.jid),))

    def _invite(self, user: Element, occupant: Occupant | None) -> Outcome:
        """§7.8.2 mediated invitation; in a members-only room only admins invite, and
        their invitee becomes a member (Prosody's behaviour).
        """
        if occupant is None:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "only occupants may invite")
        inviter = self.affiliation_of(occupant)
        if self.config.members_only and inviter.rank < Affiliation.ADMIN.rank:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only admins invite to this room")
        out = []
        changed = False
        for invite in user.findall(qname(NS.MUC_USER, "invite"))[:_MAX_INVITES]:
            invitee = parse_jid(invite.get("to") or "")
            reason = bounded_text(invite, qname(NS.MUC_USER, "reason"), self.limits.max_text)
            message = Element(_MESSAGE, {"from": str(self.jid), "to": str(invitee)})
            x = SubElement(message, _X_USER)
            forwarded = SubElement(x, qname(NS.MUC_USER, "invite"), {"from": str(occupant.jid)})
            if reason:
                SubElement(forwarded, qname(NS.MUC_USER, "reason")).text = reason
            if self.config.password:
                SubElement(x, qname(NS.MUC_USER, "password")).text = self.config.password
            if self.config.members_only and self.affiliation(invitee) is Affiliation.NONE:
                self.check_affiliation_space(invitee.bare)
                self.affiliations[invitee.bare] = Affiliated(invitee.bare, Affiliation.MEMBER)
                changed = True
            out.append(Routed(message, self.jid, invitee))
        return Outcome(tuple(out), changed=changed)

    def _decline(self, user: Element, sender: JID) -> Outcome:
        decline = user.find(qname(NS.MUC_USER, "decline"))
        assert decline is not None
        inviter = parse_jid(decline.get("to") or "")
        reason = bounded_text(decline, qname(NS.MUC_USER, "reason"), self.limits.max_text)
        message = Element(_MESSAGE, {"from": str(self.jid), "to": str(inviter)})
        x = SubElement(message, _X_USER)
        forwarded = SubElement(x, qname(NS.MUC_USER, "decline"), {"from": str(sender.bare)})
        if reason:
            SubElement(forwarded, qname(NS.MUC_USER, "reason")).text = reason
        return Outcome((Routed(message, self.jid, inviter),))

    # -- iq: disco (§6.4); muc#admin (§8, §9) and muc#owner (§10) in their own modules --

    def handle_iq(self, stanza: Element, sender: JID, nick: str, server_admin: bool) -> Outcome:
        kind = stanza.get("type")
        if kind not in ("get", "set"):
            return Outcome()
        if nick:
            return self._iq_to_occupant(stanza, sender, nick)
        if len(stanza) != 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an iq carries one payload")  # RFC 6120
        query = stanza[0]
        affiliation = self.affiliation(sender, server_admin)
        if self.locked and affiliation is not Affiliation.OWNER:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "the room is not configured yet")
        actor = self.occupant(sender)

        def result(payload: Element | None = None) -> Routed:
            return Routed(iq_result(stanza, payload), self.jid, sender)

        match kind, query.tag:
            case "get", tag if tag == qname(NS.DISCO_INFO, "query"):
                return Outcome((result(self._disco_info()),))
            case "get", tag if tag == qname(NS.DISCO_ITEMS, "query"):
                return Outcome((result(Element(qname(NS.DISCO_ITEMS, "query"))),))
            case "get", tag if tag == qname(NS.MUC_ADMIN, "query"):
                return Outcome((result(admin_list(self, query, affiliation, actor)),))
            case "set", tag if tag == qname(NS.MUC_ADMIN, "query"):
                out = admin_set(self, query, affiliation, actor)
                return Outcome((result(), *out.stanzas), changed=out.changed)
            case _, tag if tag == qname(NS.MUC_OWNER, "query"):
                if affiliation is not Affiliation.OWNER:
                    raise StanzaError(StanzaCondition.FORBIDDEN, "owners only")  # §10.2
                if kind == "get":
                    return Outcome((result(owner_get(self)),))
                out = owner_set(self, query)
                return Outcome((result(), *out.stanzas), changed=out.changed)
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "unsupported request")

    def _iq_to_occupant(self, stanza: Element, sender: JID, nick: str) -> Outcome:
        """XEP-0410 §3.3: the room answers a self-ping itself, since the client it would
        be relayed to (another device of the same user, often a phone) may never answer.
        Other iq to occupants are not relayed.
        """
        if not is_ping(stanza):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "occupants take no iq here")
        pinger = self.occupant(sender)
        if pinger is None:
            # §3.3: "<not-acceptable>: the client is not joined to the MUC", type cancel as in
            # §3.2's example; the client rejoins on it.
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, "you are not in this room", ErrorType.CANCEL
            )
        target = self.occupants.get(nick)
        if target is pinger:
            occupant = self._nick_jid(pinger.nick)
            result = iq_result(stanza)
            result.set("from", str(occupant))
            return Outcome((Routed(result, occupant, sender),))
        if target is None:
            # §3.2, §4: "the client is joined, but the occupant just changed their name".
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
        # A ping to someone else is no self-ping, and heron relays no iq to occupants.
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "occupants take no iq here")

    def _disco_info(self) -> Element:
        query = Element(qname(NS.DISCO_INFO, "query"))
        identity = {"category": "conference", "type": "text", "name": self.summary().title}
        SubElement(query, qname(NS.DISCO_INFO, "identity"), identity)
        # XEP-0410 §3.3: the self-ping optimization is advertised "on the individual MUC
        # room JIDs", not on the service.
        features: tuple[str, ...] = (NS.MUC, NS.MUC_SELF_PING, NS.DISCO_INFO, NS.DISCO_ITEMS)
        features += (STANZA_ID, MAM, EXTENDED) if self.archives else (STANZA_ID,)
        for feature in (*features, *self.config.features):
            SubElement(query, qname(NS.DISCO_INFO, "feature"), {"var": feature})
        form = SubElement(query, qname(NS.DATA, "x"), {"type": "result"})
        for var, value in (
            ("FORM_TYPE", ROOMINFO),
            ("muc#roominfo_description", self.config.description),
            ("muc#roominfo_occupants", str(len(self.occupants))),
        ):
            field = SubElement(form, qname(NS.DATA, "field"), {"var": var})
            SubElement(field, qname(NS.DATA, "value")).text = value
        return query

    def destroy(self, reason: str = "", alternative: str | None = None) -> Outcome:
        """§10.9: every occupant is told, with the alternative venue if any; the room is gone."""
        element = Element(qname(NS.MUC_USER, "destroy"))
        if alternative:
            element.set("jid", str(parse_jid(alternative)))
        if reason:
            SubElement(element, qname(NS.MUC_USER, "reason")).text = reason
        out = []
        for occupant in self.occupants.values():
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
        self.occupants.clear()
        self._nicks.clear()
        self.destroyed = True
        return Outcome(tuple(out), changed=True)
