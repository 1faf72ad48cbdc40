"""The vocabulary of XEP-0045: roles, affiliations, status codes, the room
configuration with its muc#roomconfig data form (XEP-0004), the service's limits,
and the records a room hands to the service and to its :class:`RoomStore`.

Sans-IO: nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import Routed
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, qname

__all__ = [
    "ROOMCONFIG",
    "ROOMINFO",
    "Affiliated",
    "Affiliation",
    "Limits",
    "Occupant",
    "Outcome",
    "Role",
    "RoomConfig",
    "RoomRecord",
    "RoomStore",
    "RoomSummary",
    "MucStatus",
    "Whois",
    "apply_form",
    "bounded_text",
    "config_form",
    "form_values",
]

ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig"  # XEP-0045 §15.5.3
ROOMINFO = "http://jabber.org/protocol/muc#roominfo"  # XEP-0045 §15.5.4


class Role(StrEnum):
    """An occupant's role, for this visit only (XEP-0045 §5.1)."""

    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VISITOR = "visitor"
    NONE = "none"


class Affiliation(StrEnum):
    """A user's long-lived relation to the room (XEP-0045 §5.2)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    NONE = "none"
    OUTCAST = "outcast"

    @property
    def rank(self) -> int:
        """§5.2: the affiliations are ordered owner > admin > member > none > outcast."""
        return _RANKS[self]

    @property
    def default_role(self) -> Role:
        """§5.1.2 table 'Default roles': admins and owners moderate, members take part."""
        if self in (Affiliation.OWNER, Affiliation.ADMIN):
            return Role.MODERATOR
        return Role.NONE if self is Affiliation.OUTCAST else Role.PARTICIPANT


_RANKS = {
    Affiliation.OWNER: 4,
    Affiliation.ADMIN: 3,
    Affiliation.MEMBER: 2,
    Affiliation.NONE: 1,
    Affiliation.OUTCAST: 0,
}


class MucStatus(IntEnum):
    """muc#user status codes (XEP-0045 §15.6.2 registry)."""

    NON_ANONYMOUS = 100  # §7.2.3: any occupant may see your full JID
    CONFIG_CHANGED = 104  # §10.2.1: a non-privacy configuration change
    SELF = 110  # §7.2.3: this presence is about you
    NOW_NON_ANONYMOUS = 172  # §10.2.1
    NOW_SEMI_ANONYMOUS = 173  # §10.2.1
    CREATED = 201  # §10.1.1: a new room was created
    BANNED = 301  # §9.1
    NEW_NICK = 303  # §7.6
    KICKED = 307  # §8.2
    AFFILIATION_CHANGED = 321  # §9.4: removed, no longer a member of a members-only room
    MEMBERS_ONLY = 322  # §15.6.2: removed, the room became members-only
    ERROR = 333  # §7.14: removed after an error reached the occupant's client


class Whois(StrEnum):
    """muc#roomconfig_whois (§15.5.3): who sees occupants' full JIDs."""

    MODERATORS = "moderators"  # semi-anonymous room (§4.1)
    ANYONE = "anyone"  # non-anonymous room (§4.1)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one group chat service accepts; hostile clients meet these, not memory exhaustion."""

    max_rooms: int = 1000
    """Rooms the service holds at once (created or loaded)."""
    rooms_per_user: int = 20
    """Rooms one account may own at once (server admins are not counted), so that one user
    cannot take all of ``max_rooms``; 0 is unlimited."""
    max_occupants: int = 500
    """Upper bound of any room's maxusers."""
    history: int = 20
    """Messages kept per room, and sent on join by default (Prosody's max_history_messages)."""
    history_chars: int = 100_000
    """Characters of serialized messages kept per room, oldest dropped first: the history's
    memory stays bounded however big the messages (each may be up to xmpp.max_stanza_size)."""
    max_room_name: int = 64
    """Characters in a room's localpart."""
    max_nick: int = 64
    """Characters in a nickname."""
    max_text: int = 1024
    """Characters in a room title, description, password or reason."""
    max_subject: int = 4096
    """Characters in a subject."""
    max_affiliations: int = 5000
    """Affiliated JIDs (members, admins, owners, outcasts) per room."""
    max_items: int = 100
    """Items in one muc#admin query."""
    archive: bool = False
    """Rooms keep their groupchat messages in a MAM archive (XEP-0313 §5)."""


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """A room's configuration (§10.2); the defaults are Prosody's."""

    name: str = ""
    description: str = ""
    persistent: bool = False
    public: bool = True
    members_only: bool = False
    password: str = ""
    moderated: bool = False
    whois: Whois = Whois.MODERATORS
    max_users: int = 500
    change_subject: bool = False
    archive: bool = True
    """XEP-0313 §5 muc#roomconfig_enablearchiving, offered while the service archives
    (``xmpp.archive``): on by default, as Prosody's muc_log_by_default."""

    @property
    def password_protected(self) -> bool:
        return bool(self.password)

    @property
    def features(self) -> tuple[str, ...]:
        """The disco#info features describing this configuration (§6.4, §15.4)."""
        return (
            "muc_passwordprotected" if self.password else "muc_unsecured",
            "muc_membersonly" if self.members_only else "muc_open",
            "muc_persistent" if self.persistent else "muc_temporary",
            "muc_public" if self.public else "muc_hidden",
            "muc_moderated" if self.moderated else "muc_unmoderated",
            "muc_nonanonymous" if self.whois is Whois.ANYONE else "muc_semianonymous",
        )


@dataclass(frozen=True, slots=True)
class Occupant:
    """Someone in the room: the nickname others see, the full JID behind it, the role (§5.1)."""

    nick: str
    jid: JID
    role: Role
    server_admin: bool = False
    presence: tuple[Element, ...] = ()  # show, status, caps... of the last presence


@dataclass(frozen=True, slots=True)
class Affiliated:
    """A bare JID's affiliation with the room (§5.2), with the reason an admin gave."""

    jid: JID
    affiliation: Affiliation
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """What a persistent room keeps across restarts (§10.2 muc#roomconfig_persistentroom)."""

    name: str
    config: RoomConfig
    affiliations: tuple[Affiliated, ...] = ()
    subject: str = ""
    subject_nick: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One line of the admin view of the rooms."""

    jid: JID
    title: str
    occupants: int
    persistent: bool
    public: bool
    members_only: bool
    password_protected: bool
    locked: bool


@dataclass(frozen=True, slots=True)
class Archived:
    """A groupchat message for the room's archive, from ``sender`` (room/nick), with the
    ``id`` of its XEP-0359 stanza-id."""

    message: Element
    sender: JID
    id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one stanza did: stanzas to route in order, each with the JIDs it was addressed
    from, whether lasting state changed, and what goes to the room's archive first."""

    stanzas: tuple[Routed, ...] = ()
    changed: bool = False
    messages: int = 0
    archive: tuple[Archived, ...] = ()


class RoomStore(Protocol):
    """Where persistent rooms live; :class:`heron.store.rooms.SqlRoomStore` is the default."""

    async def load(self, service: str) -> list[RoomRecord]:
        """Every persistent room of the service ``service`` (its domain)."""

    async def save(self, service: str, room: RoomRecord) -> None:
        """Create or replace the room, its configuration and its affiliations, atomically."""

    async def delete(self, service: str, name: str) -> None:
        """Forget the room; nothing happens when it was never saved."""


def bounded_text(element: Element | None, tag: str, limit: int) -> str:
    """The text of ``element``'s child ``tag``, "" if none; refused past ``limit`` characters."""
    value = element.findtext(tag) if element is not None else None
    if value is not None and len(value) > limit:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "text too long")
    return value or ""


_MAX_USERS_CHOICES = (10, 20, 30, 50, 100, 200, 500, 1000)


def _field(form: Element, var: str, type_: str, label: str, *values: str) -> Element:
    field = SubElement(form, qname(NS.DATA, "field"), {"var": var, "type": type_})
    if label:
        field.set("label", label)
    for value in values:
        SubElement(field, qname(NS.DATA, "value")).text = value
    return field


def _bool(value: bool) -> str:
    return "1" if value else "0"


def config_form(config: RoomConfig, limits: Limits) -> Element:
    """The muc#roomconfig form an owner fills in (§10.2, fields of §15.5.3)."""
    form = Element(qname(NS.DATA, "x"), {"type": "form"})
    SubElement(form, qname(NS.DATA, "title")).text = "Room configuration"
    _field(form, "FORM_TYPE", "hidden", "", ROOMCONFIG)
    _field(form, "muc#roomconfig_roomname", "text-single", "Title", config.name)
    _field(form, "muc#roomconfig_roomdesc", "text-single", "Description", config.description)
    _field(
        form,
        "muc#roomconfig_persistentroom",
        "boolean",
        "Persistent",
        _bool(config.persistent),
    )
    _field(form, "muc#roomconfig_publicroom", "boolean", "Listed", _bool(config.public))
    _field(
        form, "muc#roomconfig_membersonly", "boolean", "Members only", _bool(config.members_only)
    )
    _field(
        form,
        "muc#roomconfig_passwordprotectedroom",
        "boolean",
        "Password protected",
        _bool(config.password_protected),
    )
    _field(form, "muc#roomconfig_roomsecret", "text-private", "Password", config.password)
    _field(form, "muc#roomconfig_moderatedroom", "boolean", "Moderated", _bool(config.moderated))
    whois = _field(
        form, "muc#roomconfig_whois", "list-single", "Who may see real JIDs", config.whois
    )
    for choice in Whois:
        option = SubElement(whois, qname(NS.DATA, "option"), {"label": choice.value})
        SubElement(option, qname(NS.DATA, "value")).text = choice.value
    maxusers = _field(
        form, "muc#roomconfig_maxusers", "list-single", "Maximum occupants", str(config.max_users)
    )
    choices = sorted(
        {n for n in _MAX_USERS_CHOICES if n < limits.max_occupants} | {limits.max_occupants}
    )
    for choice_value in choices:
        option = SubElement(maxusers, qname(NS.DATA, "option"), {"label": str(choice_value)})
        SubElement(option, qname(NS.DATA, "value")).text = str(choice_value)
    _field(
        form,
        "muc#roomconfig_changesubject",
        "boolean",
        "Occupants may change the subject",
        _bool(config.change_subject),
    )
    if limits.archive:
        var = "muc#roomconfig_enablearchiving"  # XEP-0313 §5
        _field(form, var, "boolean", "Archive messages", _bool(config.archive))
    return form


def form_values(form: Element, limits: Limits) -> dict[str, list[str]]:
    """The submitted fields of a XEP-0004 form, bounded in count and size."""
    values: dict[str, list[str]] = {}
    fields = form.findall(qname(NS.DATA, "field"))
    if len(fields) > 64:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "too many form fields")
    for field in fields:
        var = field.get("var")
        if not var:
            continue
        texts = [value.text or "" for value in field.findall(qname(NS.DATA, "value"))][:16]
        if any(len(text) > limits.max_text for text in texts):
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} is too long")
        values[var] = texts
    return values


def _not_acceptable(var: str) -> StanzaError:
    return StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"bad value for {var}")


def _parse_bool(var: str, values: list[str]) -> bool:
    # XEP-0004 §3.3: a boolean is "0", "1", "false" or "true".
    text = values[0].strip() if values else ""
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise _not_acceptable(var)


def apply_form(config: RoomConfig, form: Element, limits: Limits) -> RoomConfig:
    """The configuration after an owner's submitted form (§10.2); fields left out are kept.

    Raises not-acceptable for a value out of range, as Prosody does.
    """
    values = form_values(form, limits)
    kept = values.get("FORM_TYPE")
    if kept is not None and kept[:1] != [ROOMCONFIG]:
        raise _not_acceptable("FORM_TYPE")
    changes: dict[str, object] = {}
    for var, attribute in (
        ("muc#roomconfig_roomname", "name"),
        ("muc#roomconfig_roomdesc", "description"),
    ):
        if var in values:
            changes[attribute] = values[var][0] if values[var] else ""
    for var, attribute in (
        ("muc#roomconfig_persistentroom", "persistent"),
        ("muc#roomconfig_publicroom", "public"),
        ("muc#roomconfig_membersonly", "members_only"),
        ("muc#roomconfig_moderatedroom", "moderated"),
        ("muc#roomconfig_changesubject", "change_subject"),
        ("muc#roomconfig_enablearchiving", "archive"),
    ):
        if var in values:
            changes[attribute] = _parse_bool(var, values[var])
    if "muc#roomconfig_whois" in values:
        try:
            changes["whois"] = Whois(values["muc#roomconfig_whois"][0])
        except (ValueError, IndexError):
            raise _not_acceptable("muc#roomconfig_whois") from None
    if "muc#roomconfig_maxusers" in values:
        changes["max_users"] = _max_users(values["muc#roomconfig_maxusers"], limits)
    secret_values = values.get("muc#roomconfig_roomsecret")
    secret = (secret_values[0] if secret_values else "") if secret_values is not None else None
    secret = config.password if secret is None else secret
    var = "muc#roomconfig_passwordprotectedroom"
    protected = _parse_bool(var, values[var]) if var in values else bool(secret)
    if protected and not secret:
        raise _not_acceptable("muc#roomconfig_roomsecret")
    changes["password"] = secret if protected else ""
    return replace(config, **changes)  # type: ignore[arg-type]


def _max_users(values: list[str], limits: Limits) -> int:
    text = values[0].strip() if values else ""
    if text in ("", "none"):
        return limits.max_occupants
    if not text.isdigit() or not 1 <= int(text) <= limits.max_occupants:
        raise _not_acceptable("muc#roomconfig_maxusers")
    return int(text)
