"""XEP-0280's rules as pure functions: which messages are copied (§6.1, §9), the wrapper
(§7, §8, XEP-0297), and whom the copies go to."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.features.carbons import Direction, copies, eligible, wrap
from heron.xmpp.features.local import Resource
from heron.xmpp.jid import parse_jid
from heron.xmpp.stanza import NS, qname
from heron.xmpp.xml import serialize
from tests.unit.xmpp.im_harness import FakeSession, stanza

BOTH = tuple(Direction)
MUC_USER = NS.MUC_USER.value
ROLAND = parse_jid("roland@falcot.com")

# Children a message may carry, as (namespace, name); the opt-outs and carbons are drawn apart.
PAYLOADS = (
    (NS.CLIENT.value, "body"),
    (NS.CLIENT.value, "thread"),
    (NS.CLIENT.value, "subject"),
    (NS.RECEIPTS.value, "request"),
    (NS.CHAT_STATES.value, "active"),
    (NS.MARKERS.value, "displayed"),
    (NS.CONFERENCE.value, "x"),
    (MUC_USER, "x"),
    ("urn:example:other", "thing"),
    ("eu.siacs.conversations.axolotl", "encrypted"),
)
OPT_OUTS = ((NS.CARBONS.value, "private"), (NS.HINTS.value, "no-copy"))
TYPES = (None, "chat", "normal", "groupchat", "headline", "error", "bogus")


def message(type_: str | None, children: list[tuple[str, str]]) -> Element:
    built = Element(qname(NS.CLIENT, "message"), {"to": "lucy@falcot.com"})
    if type_ is not None:
        built.set("type", type_)
    for namespace, name in children:
        SubElement(built, qname(namespace, name))
    return built


types = st.sampled_from(TYPES)
payloads = st.lists(st.sampled_from(PAYLOADS), max_size=5)
messages = st.builds(message, types, payloads)


@pytest.mark.parametrize("direction", BOTH)
@pytest.mark.parametrize(
    ("xml", "copied"),
    [
        ('<message type="chat"/>', True),  # a chat state alone is still type chat
        ('<message type="normal"><body>hi</body></message>', True),
        ("<message><body>hi</body></message>", True),  # no type is normal (RFC 6121 §5.2.2)
        ('<message type="bogus"><body>hi</body></message>', True),  # unknown type, too
        ('<message type="normal"><subject>s</subject></message>', False),
        ("<message/>", False),
        ('<message type="groupchat"><body>hi</body></message>', False),
        ('<message type="headline"><body>news</body></message>', False),
        ('<message type="error"><body>hi</body></message>', False),
    ],
)
def test_xep0280_6_1_chat_and_normal_with_a_body_are_copied(
    xml: str, copied: bool, direction: Direction
) -> None:
    assert eligible(stanza(xml), direction) is copied


@pytest.mark.parametrize("direction", BOTH)
@pytest.mark.parametrize(
    "payload",
    [
        f'<received xmlns="{NS.RECEIPTS}" id="m1"/>',
        f'<composing xmlns="{NS.CHAT_STATES}"/>',
        f'<displayed xmlns="{NS.MARKERS}" id="m1"/>',
    ],
)
def test_xep0280_6_1_receipts_chat_states_and_markers_are_copied_without_a_body(
    payload: str, direction: Direction
) -> None:
    assert eligible(stanza(f"<message>{payload}</message>"), direction)


@pytest.mark.parametrize("direction", BOTH)
def test_xep0280_6_1_direct_and_mediated_invitations_are_copied(direction: Direction) -> None:
    direct = f'<message><x xmlns="{NS.CONFERENCE}" jid="room@conference.falcot.com"/></message>'
    mediated = f'<message><x xmlns="{MUC_USER}"><invite to="lucy@falcot.com"/></x></message>'
    assert eligible(stanza(direct), direction)
    assert eligible(stanza(mediated), direction)


def test_xep0280_6_1_muc_private_messages_are_copied_when_sent_not_when_received() -> None:
    private = stanza(f'<message type="chat"><body>psst</body><x xmlns="{MUC_USER}"/></message>')
    assert eligible(private, Direction.SENT)
    assert not eligible(private, Direction.RECEIVED)


@pytest.mark.parametrize("carbon", ["sent", "received"])
def test_xep0280_11_a_carbon_is_never_copied_again(carbon: str) -> None:
    spoofed = stanza(f'<message type="chat"><{carbon} xmlns="{NS.CARBONS}"/></message>')
    assert not any(eligible(spoofed, direction) for direction in BOTH)


def test_only_messages_are_copied() -> None:
    assert not eligible(stanza('<iq type="set"><body/></iq>'), Direction.SENT)


@given(messages, st.sampled_from(OPT_OUTS), st.sampled_from(BOTH))
def test_xep0280_9_private_or_no_copy_opts_any_message_out(
    built: Element, opt_out: tuple[str, str], direction: Direction
) -> None:
    SubElement(built, qname(*opt_out))
    assert not eligible(built, direction)


@given(messages, st.sampled_from(BOTH))
def test_xep0280_6_1_groupchat_is_never_copied(built: Element, direction: Direction) -> None:
    built.set("type", "groupchat")
    assert not eligible(built, direction)


@given(types, payloads, st.sampled_from(BOTH), st.data())
def test_xep0280_6_1_the_order_of_the_payloads_does_not_matter(
    type_: str | None, children: list[tuple[str, str]], direction: Direction, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(children))
    copied = eligible(message(type_, children), direction)
    assert eligible(message(type_, shuffled), direction) is copied


@given(messages)
def test_xep0280_6_1_whatever_is_copied_when_received_is_copied_when_sent(
    built: Element,
) -> None:
    assert not eligible(built, Direction.RECEIVED) or eligible(built, Direction.SENT)


@given(messages, st.sampled_from(BOTH))
def test_xep0280_7_8_the_wrapper_forwards_the_original_from_the_bare_jid(
    built: Element, direction: Direction
) -> None:
    to = parse_jid("roland@falcot.com/phone")
    wrapper = wrap(built, direction, parse_jid("roland@falcot.com/laptop"), to)
    assert wrapper.get("from") == "roland@falcot.com"
    assert wrapper.get("to") == "roland@falcot.com/phone"
    assert wrapper.get("type") == built.get("type")
    assert [child.tag for child in wrapper] == [qname(NS.CARBONS, direction.value)]
    forwarded = wrapper[0].find(qname(NS.FORWARD, "forwarded"))
    assert forwarded is not None and len(forwarded) == 1
    assert serialize(forwarded[0]) == serialize(built)


def resource(name: str, *, carbons: bool) -> Resource:
    jid = ROLAND.with_resource(name)
    return Resource(FakeSession(jid), jid, carbons=carbons)


def test_copies_go_to_enabled_resources_that_did_not_get_the_original() -> None:
    laptop, phone, desk = (resource(n, carbons=n != "desk") for n in ("laptop", "phone", "desk"))
    chat = stanza('<message type="chat" to="lucy@falcot.com"><body>hi</body></message>')
    made = copies(chat, Direction.SENT, ROLAND, [laptop, phone, desk], {laptop.jid})
    assert [target for target, _ in made] == [phone]
    # A snapshot: what happens to the original later does not show in the copy.
    chat.set("to", "changed@falcot.com")
    forwarded = made[0][1].find(f"{{{NS.CARBONS}}}sent/{{{NS.FORWARD}}}forwarded")
    assert forwarded is not None and forwarded[0].get("to") == "lucy@falcot.com"


def test_no_copies_for_an_ineligible_message_or_without_enabled_resources() -> None:
    phone = resource("phone", carbons=True)
    desk = resource("desk", carbons=False)
    headline = stanza('<message type="headline"><body>news</body></message>')
    chat = stanza('<message type="chat"><body>hi</body></message>')
    assert copies(headline, Direction.RECEIVED, ROLAND, [phone], ()) == []
    assert copies(chat, Direction.RECEIVED, ROLAND, [desk], ()) == []
