"""The muc#owner requests of XEP-0045 §10: the configuration form (§10.1–10.2) and
the destruction of the room (§10.9). The owner and admin lists (§10.3–10.7) travel
as muc#admin and live in :mod:`heron.xmpp.muc.moderation`.

Like it, these functions act on a :class:`heron.xmpp.muc.room.Room` and stay sans-IO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import Routed
from heron.xmpp.muc.model import (
    Affiliation,
    MucStatus,
    Outcome,
    RoomConfig,
    Whois,
    apply_form,
    bounded_text,
    config_form,
)
from heron.xmpp.stanza import NS, qname

if TYPE_CHECKING:
    from heron.xmpp.muc.room import Room

__all__ = ["owner_get", "owner_set"]


def owner_get(room: Room) -> Element:
    """§10.2: the muc#owner query carrying the room's configuration form."""
    payload = Element(qname(NS.MUC_OWNER, "query"))
    payload.append(config_form(room.config, room.limits))
    return payload


def owner_set(room: Room, query: Element) -> Outcome:
    """A submitted or cancelled configuration form (§10.1–10.2), or a destroy request (§10.9)."""
    destroy = query.find(qname(NS.MUC_OWNER, "destroy"))
    if destroy is not None:
        reason = bounded_text(destroy, qname(NS.MUC_OWNER, "reason"), room.limits.max_text)
        return room.destroy(reason, destroy.get("jid"))
    form = query.find(qname(NS.DATA, "x"))
    if form is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "send a form or a destroy request")
    if form.get("type") == "cancel":
        # §10.1.3: cancelling the first configuration destroys the new room.
        return room.destroy() if room.locked else Outcome()
    if form.get("type") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "submit the form")
    # An empty submit keeps the defaults: the instant room of §10.1.2.
    return _configure(room, apply_form(room.config, form, room.limits))


def _configure(room: Room, new: RoomConfig) -> Outcome:
    """The new configuration unlocks the room; occupants hear what changed (§10.2.1)."""
    old, first = room.config, room.locked
    room.config, room.locked = new, False
    out: list[Routed] = []
    if new.members_only and not old.members_only:
        for occupant in list(room.occupants.values()):
            if room.affiliation_of(occupant).rank < Affiliation.MEMBER.rank:
                out += room.remove(occupant, (MucStatus.MEMBERS_ONLY,))
    if not first and new != old:
        codes = [MucStatus.CONFIG_CHANGED]  # §10.2.1
        if new.whois != old.whois:
            anyone = new.whois is Whois.ANYONE
            codes.append(MucStatus.NOW_NON_ANONYMOUS if anyone else MucStatus.NOW_SEMI_ANONYMOUS)
        for viewer in room.occupants.values():
            attributes = {"type": "groupchat", "from": str(room.jid), "to": str(viewer.jid)}
            message = Element(qname(NS.CLIENT, "message"), {**attributes, "id": room.ids()})
            x = SubElement(message, qname(NS.MUC_USER, "x"))
            for code in codes:
                SubElement(x, qname(NS.MUC_USER, "status"), {"code": str(int(code))})
            out.append(Routed(message, room.jid, viewer.jid))
    return Outcome(tuple(out), changed=True)
