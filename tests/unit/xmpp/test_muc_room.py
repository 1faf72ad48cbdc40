"""Transcript tests of one XEP-0045 room, sans-IO: stanzas in, stanzas out, no I/O.

The cast is the XEP's: crone1 owns coven@chat.shakespeare.lit, wiccarocks and
hag66 join it. Stanzas are written as XML without namespaces (``jabber:client``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc import Affiliation, Limits, Outcome, Room, RoomConfig, Whois
from heron.xmpp.muc.nickname import nickname_key, prepare_nickname
from heron.xmpp.stanza import NS, qname

NOW = 1_767_323_045.0
ROOM = parse_jid("coven@chat.shakespeare.lit")
CRONE = parse_jid("crone1@shakespeare.lit/desktop")
WICCA = parse_jid("wiccarocks@shakespeare.lit/laptop")
HAG = parse_jid("hag66@shakespeare.lit/pda")
SERVER_ADMIN = parse_jid("admin@shakespeare.lit/console")
USER = NS.MUC_USER.value
ADMIN = NS.MUC_ADMIN.value
OWNER = NS.MUC_OWNER.value
DATA = NS.DATA.value


def stanza(text: str) -> Element:
    """Parse one stanza written without namespaces into ``jabber:client``."""
    return fromstring(f'<wrapper xmlns="{NS.CLIENT}">{text}</wrapper>')[0]


def codes(presence: Element) -> set[int]:
    return {int(s.get("code", "0")) for s in presence.iter(qname(NS.MUC_USER, "status"))}


def item(element: Element) -> dict[str, str]:
    found = element.find(f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'item')}")
    assert found is not None
    return dict(found.attrib)


def to(stanzas: tuple[Element, ...] | list[Element], jid: JID) -> list[Element]:
    return [s for s in stanzas if s.get("to") == str(jid)]


def sent(outcome: Outcome) -> list[Element]:
    """The outcome's stanzas, each checked to say the JIDs it is routed with."""
    for routed in outcome.stanzas:
        addresses = (routed.stanza.get("from"), routed.stanza.get("to"))
        assert addresses == (str(routed.sender), str(routed.to))
    return [routed.stanza for routed in outcome.stanzas]


def kinds(stanzas: list[Element]) -> list[str]:
    return [s.tag.rpartition("}")[2] for s in stanzas]


class Harness:
    """A room and the verbs of the transcripts."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.now = NOW

    @classmethod
    def created(cls, limits: Limits | None = None, **config: object) -> Harness:
        """crone1 creates the room, accepts the instant room, then applies ``config``."""
        counter = itertools.count(1)
        room = Room.create(ROOM, CRONE, NOW, limits or Limits(), lambda: f"id{next(counter)}")
        harness = cls(room)
        harness.join(CRONE, "firstwitch")
        harness.owner_submit(CRONE, **config)
        return harness

    def presence(self, who: JID, nick: str, body: str = "", admin: bool = False) -> list[Element]:
        element = stanza(f'<presence from="{who}" to="{ROOM}/{nick}">{body}</presence>')
        return sent(self.room.handle_presence(element, who, nick, admin, self.now))

    def join(self, who: JID, nick: str, muc: str = "", admin: bool = False) -> list[Element]:
        return self.presence(who, nick, f'<x xmlns="{NS.MUC}">{muc}</x>', admin)

    def leave(self, who: JID, nick: str, status: str = "") -> list[Element]:
        body = f"<status>{status}</status>" if status else ""
        element = stanza(
            f'<presence from="{who}" to="{ROOM}/{nick}" type="unavailable">{body}</presence>'
        )
        return sent(self.room.handle_presence(element, who, nick, False, self.now))

    def message(
        self, who: JID, body: str, nick: str = "", kind: str = "groupchat"
    ) -> list[Element]:
        target = f"{ROOM}/{nick}" if nick else str(ROOM)
        element = stanza(
            f'<message from="{who}" to="{target}" type="{kind}" id="m1">{body}</message>'
        )
        return sent(self.room.handle_message(element, who, nick, False, self.now))

    def say(self, who: JID, text: str) -> list[Element]:
        return self.message(who, f"<body>{text}</body>")

    def iq(self, who: JID, kind: str, payload: str, admin: bool = False) -> list[Element]:
        element = stanza(f'<iq from="{who}" to="{ROOM}" type="{kind}" id="q1">{payload}</iq>')
        return sent(self.room.handle_iq(element, who, "", admin))

    def admin(self, who: JID, items: str, admin: bool = False) -> list[Element]:
        return self.iq(who, "set", f'<query xmlns="{ADMIN}">{items}</query>', admin)

    def owner_submit(self, who: JID, **config: object) -> list[Element]:
        fields = "".join(
            f'<field var="muc#roomconfig_{var}"><value>{value}</value></field>'
            for var, value in config.items()
        )
        form = f'<x xmlns="{DATA}" type="submit">{fields}</x>'
        return self.iq(who, "set", f'<query xmlns="{OWNER}">{form}</query>')


@contextmanager
def refused(condition: StanzaCondition) -> Iterator[None]:
    with pytest.raises(StanzaError) as refusal:
        yield
    assert refusal.value.condition is condition


# §10.1 creating a room


def test_xep0045_10_1_1_creator_is_owner_and_room_is_locked() -> None:
    room = Room.create(ROOM, CRONE, NOW, Limits(), lambda: "id")
    harness = Harness(room)
    out = harness.join(CRONE, "firstwitch")
    assert kinds(out) == ["presence", "message"]
    assert codes(out[0]) == {110, 201}
    assert item(out[0]) == {"affiliation": "owner", "role": "moderator", "jid": str(CRONE)}
    assert room.locked and not room.listed
    with refused(StanzaCondition.ITEM_NOT_FOUND):
        harness.join(WICCA, "secondwitch")


def test_xep0045_10_1_2_instant_room_accepts_the_defaults_and_unlocks() -> None:
    harness = Harness(Room.create(ROOM, CRONE, NOW, Limits(), lambda: "id"))
    harness.join(CRONE, "firstwitch")
    out = harness.owner_submit(CRONE)
    assert kinds(out) == ["iq"] and out[0].get("type") == "result"
    assert not harness.room.locked
    assert harness.room.config == RoomConfig(max_users=Limits().max_occupants)
    assert codes(to(harness.join(WICCA, "secondwitch"), WICCA)[-2]) == {110}


def test_xep0045_10_1_3_cancelling_the_first_configuration_destroys_the_room() -> None:
    harness = Harness(Room.create(ROOM, CRONE, NOW, Limits(), lambda: "id"))
    harness.join(CRONE, "firstwitch")
    form = f'<query xmlns="{OWNER}"><x xmlns="{DATA}" type="cancel"/></query>'
    out = harness.iq(CRONE, "set", form)
    assert out[0].get("type") == "result"
    assert out[1].get("type") == "unavailable"
    assert harness.room.gone


# §7.2 entering a room


def test_xep0045_7_2_3_occupants_then_self_presence_then_history_then_subject() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    harness.say(WICCA, "Thrice the brinded cat hath mew'd.")
    out = harness.join(HAG, "thirdwitch")
    mine = to(out, HAG)
    assert kinds(mine) == ["presence", "presence", "presence", "message", "message"]
    assert [p.get("from") for p in mine[:3]] == [
        f"{ROOM}/firstwitch",
        f"{ROOM}/secondwitch",
        f"{ROOM}/thirdwitch",
    ]
    assert codes(mine[2]) == {110}
    assert mine[3].findtext(qname(NS.CLIENT, "body")) == "Thrice the brinded cat hath mew'd."
    assert mine[4].find(qname(NS.CLIENT, "subject")) is not None  # §7.2.16: even when empty
    # §7.2.4 semi-anonymous: a participant does not see real JIDs, a moderator does.
    assert "jid" not in item(mine[0])
    assert "jid" not in item(to(out, WICCA)[0])
    assert item(to(out, CRONE)[0]) == {
        "affiliation": "none",
        "role": "participant",
        "jid": str(HAG),
    }


def test_xep0045_7_2_3_non_anonymous_room_shows_jids_and_status_100() -> None:
    harness = Harness.created(whois="anyone")
    out = harness.join(WICCA, "secondwitch")
    self_presence = to(out, WICCA)[1]
    assert codes(self_presence) == {100, 110}
    assert item(to(out, WICCA)[0])["jid"] == str(CRONE)


def test_xep0045_7_2_3_presence_payload_is_reflected() -> None:
    harness = Harness.created()
    out = harness.join(WICCA, "secondwitch", "")
    harness.presence(WICCA, "secondwitch", "<show>away</show><status>brewing</status>")
    out = harness.join(HAG, "thirdwitch")
    wicca = [p for p in to(out, HAG) if p.get("from") == f"{ROOM}/secondwitch"][0]
    assert wicca.findtext(qname(NS.CLIENT, "show")) == "away"
    assert wicca.findtext(qname(NS.CLIENT, "status")) == "brewing"


def test_xep0045_7_2_5_password_protected_room() -> None:
    harness = Harness.created(passwordprotectedroom="1", roomsecret="cauldronburn")
    with refused(StanzaCondition.NOT_AUTHORIZED):
        harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.NOT_AUTHORIZED):
        harness.join(WICCA, "secondwitch", "<password>toil</password>")
    out = harness.join(WICCA, "secondwitch", "<password>cauldronburn</password>")
    assert codes(to(out, WICCA)[1]) == {110}


def test_xep0045_7_2_6_members_only_room_requires_registration() -> None:
    harness = Harness.created(membersonly="1")
    with refused(StanzaCondition.REGISTRATION_REQUIRED):
        harness.join(WICCA, "secondwitch")
    harness.admin(CRONE, f'<item affiliation="member" jid="{WICCA.bare}"/>')
    out = harness.join(WICCA, "secondwitch")
    assert item(to(out, WICCA)[1])["affiliation"] == "member"


def test_xep0045_7_2_7_banned_user_is_forbidden() -> None:
    harness = Harness.created()
    harness.admin(CRONE, f'<item affiliation="outcast" jid="{HAG.bare}"/>')
    with refused(StanzaCondition.FORBIDDEN):
        harness.join(HAG, "thirdwitch")


def test_xep0045_7_2_8_nickname_conflict() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.CONFLICT):
        harness.join(HAG, "secondwitch")
    assert harness.room.occupant_count == 2


@pytest.mark.parametrize("lookalike", ["SecondWitch", "ｓｅｃｏｎｄｗｉｔｃｈ", "  secondwitch "])
def test_rfc8266_nicknames_that_compare_equal_conflict(lookalike: str) -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.CONFLICT):
        harness.join(HAG, lookalike)
    assert harness.room.occupant_count == 2


def test_rfc8266_nicknames_are_enforced_before_the_room_shows_them() -> None:
    harness = Harness.created()
    self_presence = harness.join(WICCA, "\u00a0Second\u2003 \u2003Witch ")[-2]
    assert self_presence.get("from") == f"{ROOM}/Second Witch"
    # Its owner may change only the case; the room still knows it by either spelling.
    out = harness.presence(WICCA, "second witch")
    assert any(p.get("from") == f"{ROOM}/second witch" for p in out)
    assert harness.room.occupant_count == 2


@pytest.mark.parametrize(
    ("nick", "condition"),
    [
        ("   ", StanzaCondition.JID_MALFORMED),
        ("second\u200dwitch", StanzaCondition.NOT_ACCEPTABLE),  # zero-width joiner: invisible
        ("witch\ue000", StanzaCondition.NOT_ACCEPTABLE),  # private use
    ],
)
def test_rfc8266_nicknames_refused(nick: str, condition: StanzaCondition) -> None:
    harness = Harness.created()
    with refused(condition):
        harness.join(HAG, nick)


def test_xep0045_7_2_9_full_room_refuses_all_but_admins() -> None:
    harness = Harness.created(maxusers="10")
    for n in range(9):
        harness.join(parse_jid(f"witch{n}@shakespeare.lit/x"), f"witch{n}")
    with pytest.raises(StanzaError) as refusal:
        harness.join(HAG, "thirdwitch")
    assert refusal.value.condition is StanzaCondition.SERVICE_UNAVAILABLE
    assert refusal.value.type.value == "wait"
    harness.join(SERVER_ADMIN, "hecate", admin=True)
    assert harness.room.occupant_count == 11


def test_xep0045_7_2_1_nickname_is_required_and_bounded() -> None:
    harness = Harness.created(limits=Limits(max_nick=12))
    with refused(StanzaCondition.JID_MALFORMED):
        harness.join(WICCA, "")
    with refused(StanzaCondition.NOT_ACCEPTABLE):
        harness.join(WICCA, "n" * 13)


# §7.2.15 history


def test_history_is_bounded_in_characters_as_well_as_messages() -> None:
    harness = Harness.created(limits=Limits(history=20, history_chars=2500))
    harness.join(WICCA, "secondwitch")
    for n in range(5):
        harness.say(WICCA, f"{n}" + "x" * 600)
    mine = to(harness.join(HAG, "thirdwitch"), HAG)
    bodies = [m.findtext(qname(NS.CLIENT, "body")) for m in mine]
    kept = [body[0] for body in bodies if body]
    assert kept == ["2", "3", "4"]  # the two oldest went to stay under 2500 characters
    # A message bigger than the whole bound is not kept at all.
    harness.say(WICCA, "y" * 3000)
    mine = to(
        harness.join(parse_jid("late@shakespeare.lit/x"), "late"),
        parse_jid("late@shakespeare.lit/x"),
    )
    assert not [m for m in mine if m.findtext(qname(NS.CLIENT, "body"))]


def test_xep0045_7_2_15_default_history_is_the_last_twenty_with_delay() -> None:
    harness = Harness.created()
    for n in range(25):
        harness.now = NOW + n
        harness.say(CRONE, f"line {n}")
    mine = to(harness.join(WICCA, "secondwitch"), WICCA)
    history = [m for m in mine if m.find(qname(NS.CLIENT, "body")) is not None]
    assert [m.findtext(qname(NS.CLIENT, "body")) for m in history] == [
        f"line {n}" for n in range(5, 25)
    ]
    delay = history[0].find(qname(NS.DELAY, "delay"))
    assert delay is not None
    assert delay.get("stamp") == "2026-01-02T03:04:10.000Z"
    assert delay.get("from") == str(ROOM)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ('maxstanzas="2"', ["line 3", "line 4"]),
        ('maxstanzas="0"', []),
        ('maxchars="0"', []),
        ('seconds="1"', ["line 3", "line 4"]),
        ('since="2026-01-02T03:04:08Z"', ["line 3", "line 4"]),
        ('maxstanzas="bogus"', [f"line {n}" for n in range(5)]),
    ],
)
def test_xep0045_7_2_15_history_limits(request_: str, expected: list[str]) -> None:
    harness = Harness.created()
    for n in range(5):
        harness.now = NOW + n
        harness.say(CRONE, f"line {n}")
    mine = to(harness.join(WICCA, "secondwitch", f"<history {request_}/>"), WICCA)
    bodies = [m.findtext(qname(NS.CLIENT, "body")) for m in mine]
    assert [b for b in bodies if b] == expected


def test_xep0045_7_2_15_maxchars_counts_whole_stanzas() -> None:
    harness = Harness.created()
    harness.say(CRONE, "a")
    harness.say(CRONE, "b")
    for maxchars, expected in (("1", []), ("100000", ["a", "b"])):
        mine = to(harness.join(WICCA, "w", f'<history maxchars="{maxchars}"/>'), WICCA)
        assert [m.findtext(qname(NS.CLIENT, "body")) for m in mine[2:-1]] == expected
        harness.leave(WICCA, "w")


# §7.4 and §7.5 messages


def test_xep0045_7_4_groupchat_is_reflected_to_every_occupant() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    harness.join(HAG, "thirdwitch")
    out = harness.say(HAG, "Harpier cries")
    assert sorted(s.get("to", "") for s in out) == sorted(map(str, (CRONE, WICCA, HAG)))
    for message in out:
        assert message.get("from") == f"{ROOM}/thirdwitch"
        assert message.get("type") == "groupchat" and message.get("id") == "m1"
        stanza_id = message.find("{urn:xmpp:sid:0}stanza-id")
        assert stanza_id is not None and stanza_id.get("by") == str(ROOM)


def test_xep0045_7_4_non_occupants_may_not_speak() -> None:
    harness = Harness.created()
    with refused(StanzaCondition.NOT_ACCEPTABLE):
        harness.say(HAG, "let me in")


def test_xep0045_7_4_visitors_in_a_moderated_room_may_not_speak() -> None:
    harness = Harness.created(moderatedroom="1")
    out = harness.join(WICCA, "secondwitch")
    assert item(to(out, WICCA)[-2])["role"] == "visitor"
    with refused(StanzaCondition.FORBIDDEN):
        harness.say(WICCA, "hello?")
    # §8.3 a moderator grants voice; the new role is broadcast.
    out = harness.admin(CRONE, '<item nick="secondwitch" role="participant"/>')
    assert item(to(out, WICCA)[0])["role"] == "participant"
    assert len(harness.say(WICCA, "thanks")) == 2
    # §8.4 and revokes it.
    harness.admin(CRONE, '<item nick="secondwitch" role="visitor"/>')
    with refused(StanzaCondition.FORBIDDEN):
        harness.say(WICCA, "again?")


def test_xep0045_7_4_client_stanza_id_claiming_the_room_is_stripped() -> None:
    harness = Harness.created()
    forged = f'<body>x</body><stanza-id xmlns="urn:xmpp:sid:0" id="forged" by="{ROOM}"/>'
    (out,) = harness.message(CRONE, forged)
    ids = [s.get("id") for s in out.iter("{urn:xmpp:sid:0}stanza-id")]
    assert ids and "forged" not in ids


def test_xep0045_7_5_private_messages_between_occupants() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    (out,) = harness.message(WICCA, "<body>psst</body>", nick="firstwitch", kind="chat")
    assert out.get("from") == f"{ROOM}/secondwitch" and out.get("to") == str(CRONE)
    assert out.find(qname(NS.MUC_USER, "x")) is not None
    with refused(StanzaCondition.ITEM_NOT_FOUND):
        harness.message(WICCA, "<body>psst</body>", nick="nobody", kind="chat")
    with refused(StanzaCondition.BAD_REQUEST):
        harness.message(WICCA, "<body>psst</body>", nick="firstwitch", kind="groupchat")
    with refused(StanzaCondition.NOT_ACCEPTABLE):
        harness.message(HAG, "<body>psst</body>", nick="firstwitch", kind="chat")


# §8.1 subject


def test_xep0045_8_1_subject_changes_and_reaches_newcomers() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.FORBIDDEN):
        harness.message(WICCA, "<subject>Mine</subject>")
    out = harness.message(CRONE, "<subject>Fire Burn and Cauldron Bubble!</subject>")
    assert len(out) == 2 and harness.room.subject == "Fire Burn and Cauldron Bubble!"
    last = to(harness.join(HAG, "thirdwitch"), HAG)[-1]
    assert last.get("from") == f"{ROOM}/firstwitch"
    assert last.findtext(qname(NS.CLIENT, "subject")) == "Fire Burn and Cauldron Bubble!"


def test_xep0045_8_1_participants_change_the_subject_when_the_room_allows() -> None:
    harness = Harness.created(changesubject="1")
    harness.join(WICCA, "secondwitch")
    harness.message(WICCA, "<subject>Ours</subject>")
    assert harness.room.subject == "Ours"
    # A subject with a body is a message, not a subject change.
    harness.message(WICCA, "<subject>Not this</subject><body>hi</body>")
    assert harness.room.subject == "Ours"


# §7.6 nick change, §7.14 leaving


def test_xep0045_7_6_nickname_change() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    harness.join(HAG, "thirdwitch")
    with refused(StanzaCondition.CONFLICT):
        harness.presence(HAG, "secondwitch")
    out = harness.presence(HAG, "oldhag")
    gone, back = to(out, WICCA)
    assert gone.get("type") == "unavailable" and gone.get("from") == f"{ROOM}/thirdwitch"
    assert codes(gone) == {303} and item(gone)["nick"] == "oldhag"
    assert back.get("type") is None and back.get("from") == f"{ROOM}/oldhag"
    assert [codes(p) for p in to(out, HAG)] == [{303, 110}, {110}]
    occupant = harness.room.occupant(HAG)
    assert occupant is not None and occupant.nick == "oldhag"


def test_xep0045_7_14_leaving_and_temporary_room_disappears() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    out = harness.leave(WICCA, "secondwitch", "gone to the heath")
    assert {s.get("to") for s in out} == {str(CRONE), str(WICCA)}
    for presence in out:
        assert presence.get("type") == "unavailable"
        assert item(presence)["role"] == "none"
        assert presence.findtext(qname(NS.CLIENT, "status")) == "gone to the heath"
    assert codes(to(out, WICCA)[0]) == {110}
    assert not harness.room.gone
    harness.leave(CRONE, "firstwitch")
    assert harness.room.gone


def test_xep0045_7_14_presence_error_removes_the_occupant_with_333() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    bounced = stanza(f'<presence from="{WICCA}" to="{ROOM}/secondwitch" type="error"/>')
    out = sent(harness.room.handle_presence(bounced, WICCA, "secondwitch", False, NOW))
    assert [s.get("to") for s in out] == [str(CRONE)]
    assert codes(out[0]) == {333}


# §8 and §9: roles and affiliations


def test_xep0045_8_2_kick() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    harness.join(HAG, "thirdwitch")
    with refused(StanzaCondition.FORBIDDEN):
        harness.admin(WICCA, '<item nick="thirdwitch" role="none"/>')
    out = harness.admin(CRONE, '<item nick="thirdwitch" role="none"><reason>Avaunt</reason></item>')
    assert out[0].get("type") == "result"
    kicked = to(out, HAG)[0]
    assert kicked.get("type") == "unavailable" and codes(kicked) == {307, 110}
    x_item = kicked.find(f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'item')}")
    assert x_item is not None
    assert x_item.findtext(qname(NS.MUC_USER, "reason")) == "Avaunt"
    actor = x_item.find(qname(NS.MUC_USER, "actor"))
    assert actor is not None and actor.get("nick") == "firstwitch"
    assert codes(to(out, WICCA)[0]) == {307}
    assert harness.room.occupant(HAG) is None


def test_xep0045_8_2_nobody_kicks_a_higher_affiliation() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    harness.admin(CRONE, f'<item affiliation="admin" jid="{WICCA.bare}"/>')
    with refused(StanzaCondition.NOT_ALLOWED):
        harness.admin(WICCA, '<item nick="firstwitch" role="none"/>')
    assert harness.room.occupant(CRONE) is not None


def test_xep0045_9_1_ban_removes_and_lists_the_outcast() -> None:
    harness = Harness.created()
    harness.join(HAG, "thirdwitch")
    out = harness.admin(
        CRONE, f'<item affiliation="outcast" jid="{HAG.bare}"><reason>Treason</reason></item>'
    )
    banned = to(out, HAG)[0]
    assert banned.get("type") == "unavailable" and codes(banned) == {301, 110}
    assert item(banned)["affiliation"] == "outcast"
    listing = harness.iq(
        CRONE, "get", f'<query xmlns="{ADMIN}"><item affiliation="outcast"/></query>'
    )
    entries = listing[0].findall(f"{{{ADMIN}}}query/{{{ADMIN}}}item")
    assert [e.get("jid") for e in entries] == [str(HAG.bare)]
    assert entries[0].findtext(f"{{{ADMIN}}}reason") == "Treason"
    with refused(StanzaCondition.FORBIDDEN):
        harness.join(HAG, "thirdwitch")


def test_xep0045_9_4_revoking_membership_in_members_only_room_removes_with_321() -> None:
    harness = Harness.created(membersonly="1")
    harness.admin(CRONE, f'<item affiliation="member" jid="{WICCA.bare}"/>')
    harness.join(WICCA, "secondwitch")
    out = harness.admin(CRONE, f'<item affiliation="none" jid="{WICCA.bare}"/>')
    assert codes(to(out, WICCA)[0]) == {321, 110}
    assert harness.room.occupant(WICCA) is None


def test_xep0045_5_2_1_admins_edit_members_but_not_owners_or_admins() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    out = harness.admin(CRONE, f'<item affiliation="admin" jid="{WICCA.bare}"/>')
    assert item(to(out, WICCA)[0]) == {
        "affiliation": "admin",
        "role": "moderator",
        "jid": str(WICCA),
    }
    harness.admin(WICCA, f'<item affiliation="member" jid="{HAG.bare}"/>')
    assert harness.room.affiliation(HAG) is Affiliation.MEMBER
    with refused(StanzaCondition.NOT_ALLOWED):
        harness.admin(WICCA, f'<item affiliation="owner" jid="{HAG.bare}"/>')
    with refused(StanzaCondition.NOT_ALLOWED):
        harness.admin(WICCA, f'<item affiliation="outcast" jid="{CRONE.bare}"/>')
    # §10.7: an owner demotes the admin; moderation goes with it.
    out = harness.admin(CRONE, f'<item affiliation="member" jid="{WICCA.bare}"/>')
    assert item(to(out, WICCA)[0])["role"] == "participant"


def test_xep0045_10_6_the_last_owner_stays() -> None:
    harness = Harness.created()
    with refused(StanzaCondition.CONFLICT):
        harness.admin(CRONE, f'<item affiliation="member" jid="{CRONE.bare}"/>')
    harness.admin(
        CRONE,
        f'<item affiliation="owner" jid="{WICCA.bare}"/>'
        f'<item affiliation="member" jid="{CRONE.bare}"/>',
    )
    assert harness.room.affiliation(WICCA) is Affiliation.OWNER
    assert harness.room.affiliation(CRONE) is Affiliation.MEMBER


def test_xep0045_9_changes_are_all_or_nothing() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.ITEM_NOT_FOUND):
        harness.admin(
            CRONE,
            f'<item affiliation="member" jid="{HAG.bare}"/><item nick="nobody" role="none"/>',
        )
    assert harness.room.affiliation(HAG) is Affiliation.NONE


def test_xep0045_8_5_role_list_for_moderators_only() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    query = f'<query xmlns="{ADMIN}"><item role="participant"/></query>'
    with refused(StanzaCondition.FORBIDDEN):
        harness.iq(WICCA, "get", query)
    (result,) = harness.iq(CRONE, "get", query)
    entries = result.findall(f"{{{ADMIN}}}query/{{{ADMIN}}}item")
    assert [(e.get("nick"), e.get("jid")) for e in entries] == [("secondwitch", str(WICCA))]


def test_xep0045_server_admins_act_as_owners() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    out = harness.admin(SERVER_ADMIN, '<item nick="secondwitch" role="none"/>', admin=True)
    assert codes(to(out, WICCA)[0]) == {307, 110}
    (form,) = harness.iq(SERVER_ADMIN, "get", f'<query xmlns="{OWNER}"/>', admin=True)
    assert form.get("type") == "result"


@pytest.mark.parametrize(
    "items",
    [
        "",
        '<item nick="firstwitch" role="emperor"/>',
        '<item nick="firstwitch"/>',
        '<item role="none" affiliation="none" nick="firstwitch"/>',
        "".join(f'<item affiliation="member" jid="u{n}@x"/>' for n in range(101)),
    ],
)
def test_xep0045_malformed_admin_requests_are_bad_requests(items: str) -> None:
    harness = Harness.created()
    with refused(StanzaCondition.BAD_REQUEST):
        harness.admin(CRONE, items)


# §10.2 configuration, §10.9 destruction


def test_xep0045_10_2_configuration_form_round_trip() -> None:
    harness = Harness.created()
    (result,) = harness.iq(CRONE, "get", f'<query xmlns="{OWNER}"/>')
    form = result.find(f"{{{OWNER}}}query/{{{DATA}}}x")
    assert form is not None and form.get("type") == "form"
    fields = {f.get("var") for f in form.iter(f"{{{DATA}}}field")}
    for var in (
        "roomname",
        "roomdesc",
        "persistentroom",
        "publicroom",
        "membersonly",
        "passwordprotectedroom",
        "roomsecret",
        "moderatedroom",
        "whois",
        "maxusers",
        "changesubject",
    ):
        assert f"muc#roomconfig_{var}" in fields
    harness.join(WICCA, "secondwitch")
    with refused(StanzaCondition.FORBIDDEN):
        harness.iq(WICCA, "get", f'<query xmlns="{OWNER}"/>')
    out = harness.owner_submit(CRONE, roomname="The Coven", persistentroom="1", whois="anyone")
    assert harness.room.config.name == "The Coven" and harness.room.config.persistent
    assert harness.room.config.whois is Whois.ANYONE
    notices = [s for s in out if s.tag == qname(NS.CLIENT, "message")]
    assert {s.get("to") for s in notices} == {str(CRONE), str(WICCA)}
    assert codes(notices[0]) == {104, 172}


@pytest.mark.parametrize(
    "config",
    [
        {"maxusers": "0"},
        {"maxusers": "100000"},
        {"persistentroom": "perhaps"},
        {"whois": "everyone"},
        {"passwordprotectedroom": "1"},
    ],
)
def test_xep0045_10_2_bad_values_are_not_acceptable(config: dict[str, str]) -> None:
    harness = Harness.created()
    with refused(StanzaCondition.NOT_ACCEPTABLE):
        harness.owner_submit(CRONE, **config)


def test_xep0045_10_2_becoming_members_only_removes_non_members_with_322() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    out = harness.owner_submit(CRONE, membersonly="1")
    assert codes(to(out, WICCA)[0]) == {322, 110}
    assert harness.room.occupant(WICCA) is None and harness.room.occupant(CRONE) is not None


def test_xep0045_10_9_destroy() -> None:
    harness = Harness.created()
    harness.join(WICCA, "secondwitch")
    destroy = (
        f'<query xmlns="{OWNER}"><destroy jid="heath@chat.shakespeare.lit">'
        "<reason>Macbeth doth come.</reason></destroy></query>"
    )
    with refused(StanzaCondition.FORBIDDEN):
        harness.iq(WICCA, "set", destroy)
    out = harness.iq(CRONE, "set", destroy)
    assert out[0].get("type") == "result"
    notice = to(out, WICCA)[0]
    assert notice.get("type") == "unavailable"
    gone = notice.find(f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'destroy')}")
    assert gone is not None and gone.get("jid") == "heath@chat.shakespeare.lit"
    assert gone.findtext(qname(NS.MUC_USER, "reason")) == "Macbeth doth come."
    assert harness.room.gone and harness.room.occupant_count == 0


# §6.4 disco, §7.8.2 invitations


def test_xep0045_6_4_room_disco_info_describes_the_configuration() -> None:
    harness = Harness.created(persistentroom="1", membersonly="1", roomsecret="s")
    (result,) = harness.iq(WICCA, "get", f'<query xmlns="{NS.DISCO_INFO}"/>')
    features = {f.get("var") for f in result.iter(qname(NS.DISCO_INFO, "feature"))}
    assert {
        NS.MUC.value,
        "muc_passwordprotected",
        "muc_membersonly",
        "muc_persistent",
        "muc_public",
        "muc_unmoderated",
        "muc_semianonymous",
    } <= features
    identity = result.find(f"{{{NS.DISCO_INFO}}}query/{{{NS.DISCO_INFO}}}identity")
    assert identity is not None and identity.get("category") == "conference"


def test_xep0045_7_8_2_mediated_invitation() -> None:
    harness = Harness.created(membersonly="1")
    invite = f'<x xmlns="{USER}"><invite to="{HAG.bare}"><reason>Hey</reason></invite></x>'
    (out,) = harness.message(CRONE, invite, kind="normal")
    assert out.get("from") == str(ROOM) and out.get("to") == str(HAG.bare)
    forwarded = out.find(f"{qname(NS.MUC_USER, 'x')}/{qname(NS.MUC_USER, 'invite')}")
    assert forwarded is not None and forwarded.get("from") == str(CRONE)
    assert harness.room.affiliation(HAG) is Affiliation.MEMBER
    harness.join(HAG, "thirdwitch")
    with refused(StanzaCondition.FORBIDDEN):
        harness.message(HAG, invite.replace(str(HAG.bare), "x@y"), kind="normal")


# Properties


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(range(4)), st.sampled_from(["join", "leave", "nick", "say"])),
        max_size=40,
    )
)
def test_occupants_and_nicks_stay_consistent(steps: list[tuple[int, str]]) -> None:
    """Whatever the order of joins, leaves, nick changes and messages: one nick per
    occupant, every message reaches exactly the occupants present.
    """
    harness = Harness.created(limits=Limits(history=3))
    users = [parse_jid(f"u{n}@shakespeare.lit/r") for n in range(4)]
    present: dict[JID, str] = {CRONE: "firstwitch"}
    for index, action in steps:
        user = users[index]
        try:
            if action == "join":
                harness.join(user, f"n{index}")
                present[user] = f"n{index}"
            elif action == "leave" and user in present:
                harness.leave(user, present.pop(user))
            elif action == "nick" and user in present:
                harness.presence(user, f"m{index}")
                present[user] = f"m{index}"
            elif action == "say":
                out = harness.say(user, "hi")
                assert {s.get("to") for s in out} == {str(j) for j in present}
        except StanzaError as error:
            assert error.condition in (StanzaCondition.NOT_ACCEPTABLE, StanzaCondition.CONFLICT)
        assert harness.room.occupant_count == len(present)
        for jid, nick in present.items():
            occupant = harness.room.occupant(jid)
            assert occupant is not None and occupant.nick == nick
    mine = to(harness.join(HAG, "late"), HAG)
    assert len([m for m in mine if m.find(qname(NS.CLIENT, "body")) is not None]) <= 3


@given(st.text(min_size=1, max_size=30))
@settings(max_examples=200)
def test_rfc8266_enforcement_is_idempotent_and_keys_agree(text: str) -> None:
    try:
        prepared = prepare_nickname(text)
    except StanzaError:
        return
    assert prepare_nickname(prepared) == prepared
    assert nickname_key(prepared) == nickname_key(text)
