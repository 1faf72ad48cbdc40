"""XEP-0357's rules without I/O: parsing enable and disable, what wakes a phone, the summary."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import parse_jid
from heron.xmpp.push import (
    MAX_NODE,
    MAX_OPTIONS,
    PUSH,
    Registration,
    notification,
    parse_disable,
    parse_enable,
    worth_pushing,
)
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.im_harness import stanza

PUBSUB = "http://jabber.org/protocol/pubsub"
OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
SERVICE = parse_jid("push.example.net")


def payload(text: str) -> Element:
    return stanza(f"<iq type='set'>{text}</iq>")[0]


def form(*fields: tuple[str, str]) -> str:
    inner = "".join(f"<field var='{var}'><value>{value}</value></field>" for var, value in fields)
    return f"<x xmlns='jabber:x:data' type='submit'>{inner}</x>"


def summary(iq: Element) -> dict[str, str]:
    x = iq.find(f".//{{{PUSH}}}notification/{{{NS.DATA}}}x")
    assert x is not None
    return {
        f.get("var", ""): f.findtext(qname(NS.DATA, "value"), "")
        for f in x.findall(qname(NS.DATA, "field"))
    }


def test_xep0357_s5_enable_with_publish_options() -> None:
    enable = payload(
        f"<enable xmlns='{PUSH}' jid='push.example.net' node='yxs32uqsflafdk3iuqo'>"
        f"{form(('FORM_TYPE', OPTIONS), ('secret', 'eruio234vzxc2kla-91'))}</enable>"
    )
    assert parse_enable(enable) == Registration(
        SERVICE, "yxs32uqsflafdk3iuqo", (("secret", "eruio234vzxc2kla-91"),)
    )


@pytest.mark.parametrize(
    "attributes",
    [
        "node='n'",  # no jid
        "jid='push.example.net'",  # §5: the node is required
        "jid='push.example.net' node=''",
        f"jid='push.example.net' node='{'n' * (MAX_NODE + 1)}'",
        "jid='@push.example.net' node='n'",
        f"jid='{'a' * 1020}@push.example.net' node='n'",
    ],
)
def test_xep0357_s5_enable_without_service_or_node_is_bad_request(attributes: str) -> None:
    with pytest.raises(StanzaError) as refused:
        parse_enable(payload(f"<enable xmlns='{PUSH}' {attributes}/>"))
    assert refused.value.condition is StanzaCondition.BAD_REQUEST


@pytest.mark.parametrize(
    "options",
    [
        form(("secret", "s")),  # no FORM_TYPE
        form(("FORM_TYPE", "urn:example:other"), ("secret", "s")),
        form(("FORM_TYPE", OPTIONS)) * 2,
        form(("FORM_TYPE", OPTIONS), *[(f"v{i}", "x") for i in range(MAX_OPTIONS + 1)]),
        form(("FORM_TYPE", OPTIONS), ("secret", "x" * 1024)),
    ],
)
def test_xep0357_s5_publish_options_must_be_one_bounded_publish_options_form(
    options: str,
) -> None:
    with pytest.raises(StanzaError):
        parse_enable(
            payload(f"<enable xmlns='{PUSH}' jid='push.example.net' node='n'>{options}</enable>")
        )


def test_xep0357_s6_disable_with_and_without_node() -> None:
    assert parse_disable(payload(f"<disable xmlns='{PUSH}' jid='push.example.net'/>")) == (
        SERVICE,
        None,
    )
    assert parse_disable(payload(f"<disable xmlns='{PUSH}' jid='push.example.net' node='n'/>")) == (
        SERVICE,
        "n",
    )


@pytest.mark.parametrize(
    ("message", "worth"),
    [
        ("<message type='chat'><body>hi</body></message>", True),
        ("<message><body>hi</body></message>", True),
        ("<message type='chat'><body>  </body></message>", False),
        (
            "<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            False,
        ),
        ("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>", False),
        ("<message type='headline'><body>news</body></message>", False),
        ("<message type='groupchat'><body>hi</body></message>", False),
        ("<message type='error'><body>hi</body></message>", False),
        (
            "<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
            True,
        ),
    ],
)
def test_worth_pushing_is_a_chat_with_a_body_or_omemo(message: str, worth: bool) -> None:
    assert worth_pushing(stanza(message)) is worth


def test_xep0357_s7_summary_leaves_the_body_out_by_default() -> None:
    registration = Registration(SERVICE, "node-1", (("secret", "s3"),))
    message = stanza("<message type='chat'><body>the meeting moved to 3pm</body></message>")
    iq = notification(
        registration,
        message,
        server="falcot.com",
        sender=parse_jid("lucy@falcot.com/phone"),
        include_body=False,
        id_="push-1",
    )
    assert (iq.get("type"), iq.get("from"), iq.get("to"), iq.get("id")) == (
        "set",
        "falcot.com",
        "push.example.net",
        "push-1",
    )
    publish = iq.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
    assert publish is not None and publish.get("node") == "node-1"
    assert summary(iq) == {
        "FORM_TYPE": "urn:xmpp:push:summary",
        "message-count": "1",
        "last-message-sender": "lucy@falcot.com",
    }
    options = iq.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish-options/{{{NS.DATA}}}x")
    assert options is not None
    assert [f.get("var") for f in options] == ["FORM_TYPE", "secret"]


def test_xep0357_s7_body_only_when_configured_and_never_an_encrypted_fallback() -> None:
    registration = Registration(SERVICE, "n")
    sender = parse_jid("lucy@falcot.com")
    plain = stanza("<message type='chat'><body>hi</body></message>")
    omemo = stanza(
        "<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/>"
        "<body>I sent you an OMEMO encrypted message</body></message>"
    )
    with_body = notification(
        registration, plain, server="falcot.com", sender=sender, include_body=True, id_="p"
    )
    assert summary(with_body)["last-message-body"] == "hi"
    encrypted = notification(
        registration, omemo, server="falcot.com", sender=sender, include_body=True, id_="p"
    )
    assert "last-message-body" not in summary(encrypted)
    assert encrypted.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish-options") is None


@given(jid=st.text(max_size=40), node=st.text(max_size=40), var=st.text(max_size=10))
def test_hostile_enable_is_parsed_or_refused_as_a_stanza_error(
    jid: str, node: str, var: str
) -> None:
    enable = Element(qname(PUSH, "enable"), {"jid": jid, "node": node})
    x = Element(qname(NS.DATA, "x"))
    field = Element(qname(NS.DATA, "field"), {"var": var})
    x.append(field)
    enable.append(x)
    try:
        parse_enable(enable)
    except StanzaError:
        pass
