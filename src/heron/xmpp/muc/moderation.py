"""The muc#admin requests of XEP-0045: moderators (§8) and admins (§9), and the owner and
admin lists owners edit with the same protocol (§10.3–10.7).

Kick (§8.2), voice (§8.3–8.5), ban (§9.1–9.2), membership (§9.3–9.5), moderator
(§9.6–9.8), owner and admin (§10.3–10.7) are one request shape: items that each set a
role (by nick) or an affiliation (by JID), or one item asking for a list. Every item is
checked before any is applied, so a refused item leaves the room as it was.

These functions act on a :class:`heron.xmpp.muc.room.Room` through the members it keeps
for them (``occupants``, ``affiliations``, ``remove``, ``update``...); sans-IO like it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import Routed
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.model import (
    Affiliated,
    Affiliation,
    MucStatus,
    Occupant,
    Outcome,
    Role,
    bounded_text,
)
from heron.xmpp.stanza import NS, qname

if TYPE_CHECKING:
    from heron.xmpp.muc.room import Room

__all__ = ["admin_list", "admin_set"]

_ITEM = qname(NS.MUC_ADMIN, "item")
_REASON = qname(NS.MUC_ADMIN, "reason")
_E = TypeVar("_E", Role, Affiliation)


def _enum(kind: type[_E], value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown {value!r}") from None


def admin_list(
    room: Room, query: Element, affiliation: Affiliation, actor: Occupant | None
) -> Element:
    """§8.5 voice list, §9.5 ban and member lists, §9.8 moderators, §10.5 owners/admins."""
    items = query.findall(_ITEM)
    if len(items) != 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "ask for one list")
    wanted_affiliation, wanted_role = items[0].get("affiliation"), items[0].get("role")
    result = Element(qname(NS.MUC_ADMIN, "query"))
    if wanted_affiliation is not None and wanted_role is None:
        kind = _enum(Affiliation, wanted_affiliation)
        if kind is Affiliation.NONE:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "there is no list of nobodies")
        if affiliation.rank < Affiliation.ADMIN.rank:
            raise StanzaError(StanzaCondition.FORBIDDEN, "admins only")
        for entry in sorted(room.affiliations.values(), key=lambda e: str(e.jid)):
            if entry.affiliation is kind:
                item = SubElement(result, _ITEM, {"affiliation": kind.value, "jid": str(entry.jid)})
                if entry.reason:
                    SubElement(item, _REASON).text = entry.reason
        return result
    if wanted_role is not None and wanted_affiliation is None:
        role = _enum(Role, wanted_role)
        moderator = actor is not None and actor.role is Role.MODERATOR
        if not moderator and affiliation.rank < Affiliation.ADMIN.rank:
            raise StanzaError(StanzaCondition.FORBIDDEN, "moderators only")
        for occupant in room.occupants.values():
            if occupant.role is role:
                attributes = {
                    "nick": occupant.nick,
                    "role": role.value,
                    "affiliation": room.affiliation_of(occupant).value,
                    "jid": str(occupant.jid),
                }
                SubElement(result, _ITEM, attributes)
        return result
    raise StanzaError(StanzaCondition.BAD_REQUEST, "ask for a role or an affiliation")


def admin_set(
    room: Room, query: Element, affiliation: Affiliation, actor: Occupant | None
) -> Outcome:
    """§8 and §9: role and affiliation changes, all checked before any is applied."""
    limits = room.limits
    items = query.findall(_ITEM)
    if not 1 <= len(items) <= limits.max_items:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"1 to {limits.max_items} items")
    roles: list[tuple[Occupant, Role, str]] = []
    affiliations: list[tuple[JID, Affiliation, str]] = []
    for item in items:
        reason = bounded_text(item, _REASON, limits.max_text)
        role_value, affiliation_value = item.get("role"), item.get("affiliation")
        if role_value is not None and affiliation_value is None:
            target = room.occupants.get(item.get("nick") or "")
            if target is None:
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such occupant")
            role = _enum(Role, role_value)
            _check_role(room, affiliation, actor, target, role)
            roles.append((target, role, reason))
        elif affiliation_value is not None and role_value is None:
            jid = _item_jid(room, item)
            new = _enum(Affiliation, affiliation_value)
            _check_affiliation(room, affiliation, jid, new)
            affiliations.append((jid, new, reason))
        else:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "an item sets a role or an affiliation")
    owners = {e.jid for e in room.affiliations.values() if e.affiliation is Affiliation.OWNER}
    remaining = set(owners)
    for jid, new, _reason in affiliations:
        if new is Affiliation.OWNER:
            remaining.add(jid)
        else:
            remaining.discard(jid)
    if owners and not remaining:
        raise StanzaError(StanzaCondition.CONFLICT, "a room keeps at least one owner")  # §10.6
    actor_nick = actor.nick if actor else ""
    out: list[Routed] = []
    for target, role, reason in roles:
        current = room.occupants.get(target.nick)
        if current is not None and current.jid == target.jid:  # not kicked by an earlier item
            out += _set_role(room, current, role, actor_nick, reason)
    for jid, new, reason in affiliations:
        out += _set_affiliation(room, jid, new, reason, actor_nick)
    return Outcome(tuple(out), changed=bool(affiliations))


def _item_jid(room: Room, item: Element) -> JID:
    """An affiliation item names a JID, or the nick of an occupant (as Prosody allows)."""
    if item.get("jid"):
        jid = parse_jid(item.get("jid", "")).bare
    elif item.get("nick") in room.occupants:
        jid = room.occupants[item.get("nick", "")].jid.bare
    else:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "an affiliation item needs a jid")
    if len(str(jid)) > 320:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "address too long")
    return jid


def _check_role(
    room: Room, affiliation: Affiliation, actor: Occupant | None, target: Occupant, role: Role
) -> None:
    """§5.1.3 role privileges, with §8.2's rule that nobody kicks a higher affiliation."""
    moderator = actor is not None and actor.role is Role.MODERATOR
    if not moderator and affiliation.rank < Affiliation.ADMIN.rank:
        raise StanzaError(StanzaCondition.FORBIDDEN, "moderators only")
    if Role.MODERATOR in (role, target.role) and affiliation.rank < Affiliation.ADMIN.rank:
        raise StanzaError(StanzaCondition.FORBIDDEN, "admins grant and revoke moderation")  # §9.6
    target_affiliation = room.affiliation_of(target)
    if target_affiliation.rank >= Affiliation.ADMIN.rank and (
        role is not Role.NONE or target_affiliation.rank >= affiliation.rank
    ):
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "admins and owners keep moderation")
    if target_affiliation.rank > affiliation.rank:
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "higher affiliation")  # §8.2


def _check_affiliation(room: Room, affiliation: Affiliation, jid: JID, new: Affiliation) -> None:
    """§5.2.1: admins edit the member and ban lists, owners every list."""
    if affiliation.rank < Affiliation.ADMIN.rank:
        raise StanzaError(StanzaCondition.FORBIDDEN, "admins only")  # §9.1
    current = room.affiliation(jid)
    if affiliation is Affiliation.ADMIN and max(current.rank, new.rank) >= affiliation.rank:
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "owners only")  # §10.3
    if new is not Affiliation.NONE:
        room.check_affiliation_space(jid)


def _set_role(room: Room, target: Occupant, role: Role, actor: str, reason: str) -> list[Routed]:
    if role is Role.NONE:
        return room.remove(target, (MucStatus.KICKED,), actor=actor, reason=reason)  # §8.2
    return room.update(replace(target, role=role), reason=reason)  # §8.3, §8.4, §9.6, §9.7


def _set_affiliation(
    room: Room, jid: JID, new: Affiliation, reason: str, actor: str
) -> list[Routed]:
    previous = room.affiliation(jid)
    if new is Affiliation.NONE:
        room.affiliations.pop(jid, None)
    else:
        room.affiliations[jid] = Affiliated(jid, new, reason)
    out: list[Routed] = []
    present = [o for o in room.occupants.values() if o.jid.bare == jid and not o.server_admin]
    for occupant in present:
        if new is Affiliation.OUTCAST:
            out += room.remove(occupant, (MucStatus.BANNED,), actor=actor, reason=reason)  # §9.1
        elif room.config.members_only and new.rank < Affiliation.MEMBER.rank:
            codes = (MucStatus.AFFILIATION_CHANGED,)  # §9.4
            out += room.remove(occupant, codes, actor=actor, reason=reason)
        else:
            role = occupant.role
            if max(new.rank, previous.rank) >= Affiliation.ADMIN.rank:
                role = room.default_role(new)  # §10.3, §10.7: moderation follows
            out += room.update(replace(occupant, role=role), reason=reason)
    return out
