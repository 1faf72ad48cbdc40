"""PEP's sans-IO rules: XEP-0115 verification strings (the XEP's own examples), forms and
publish-options (XEP-0060 §7.1.5, §16.4), access models (§4.5) and notification targets
(XEP-0163 §4.3)."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import parse_jid
from heron.xmpp.pep.bookmarks import from_legacy, to_legacy
from heron.xmpp.pep.caps import Caps, CapsCache, parse_caps, verification_string, verify
from heron.xmpp.pep.model import (
    PUBLISH_OPTIONS,
    AccessModel,
    Limits,
    Listener,
    NodeConfig,
    PubsubError,
    apply_options,
    check_node,
    form_options,
    may_read,
    notify_targets,
)
from heron.xmpp.stanza import NS, qname

DISCO = NS.DISCO_INFO.value
DATA = NS.DATA.value

SIMPLE = f"""<query xmlns="{DISCO}">
  <identity category="client" name="Exodus 0.9.1" type="pc"/>
  <feature var="http://jabber.org/protocol/caps"/>
  <feature var="http://jabber.org/protocol/disco#info"/>
  <feature var="http://jabber.org/protocol/disco#items"/>
  <feature var="http://jabber.org/protocol/muc"/>
</query>"""

COMPLEX = f"""<query xmlns="{DISCO}" xmlns:xml="http://www.w3.org/XML/1998/namespace">
  <identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>
  <identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>
  <feature var="http://jabber.org/protocol/caps"/>
  <feature var="http://jabber.org/protocol/disco#info"/>
  <feature var="http://jabber.org/protocol/disco#items"/>
  <feature var="http://jabber.org/protocol/muc"/>
  <x xmlns="{DATA}" type="result">
    <field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var="ip_version"><value>ipv4</value><value>ipv6</value></field>
    <field var="os"><value>Mac</value></field>
    <field var="os_version"><value>10.5.1</value></field>
    <field var="software"><value>Psi</value></field>
    <field var="software_version"><value>0.11</value></field>
  </x>
</query>"""


def test_xep0115_5_2_simple_generation_example() -> None:
    query = fromstring(SIMPLE)
    assert verification_string(query) == (
        "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
        "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
        "http://jabber.org/protocol/muc<"
    )
    features = verify(
        Caps("sha-1", "http://code.google.com/p/exodus", "QgayPKawpkPSDYmwT/WM94uAlu0="), query
    )
    assert features is not None and "http://jabber.org/protocol/muc" in features


def test_xep0115_5_3_complex_generation_example() -> None:
    caps = Caps("sha-1", "http://psi-im.org", "q07IKJEyjvHSyhy//CH0CxmKi8w=")
    assert verify(caps, fromstring(COMPLEX)) is not None


def test_xep0115_5_4_a_wrong_hash_or_duplicate_features_are_not_trusted() -> None:
    wrong = Caps("sha-1", "n", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert verify(wrong, fromstring(SIMPLE)) is None
    query = fromstring(SIMPLE)
    SubElement(query, qname(DISCO, "feature"), {"var": "http://jabber.org/protocol/muc"})
    assert verification_string(query) is None


def test_xep0115_caps_without_a_hash_are_legacy_and_ignored() -> None:
    presence = Element(qname(NS.CLIENT, "presence"))
    SubElement(presence, "{http://jabber.org/protocol/caps}c", {"node": "n", "ver": "1.0"})
    assert parse_caps(presence) is None
    presence[0].set("hash", "md5")
    assert parse_caps(presence) is None
    presence[0].set("hash", "sha-1")
    assert parse_caps(presence) == Caps("sha-1", "n", "1.0")


def test_caps_cache_forgets_the_least_recently_used() -> None:
    cache = CapsCache(size=2)
    a, b, c = (Caps("sha-1", "n", ver) for ver in "abc")
    cache.put(a, frozenset({"a"}))
    cache.put(b, frozenset({"b"}))
    assert cache.get(a) == frozenset({"a"})
    cache.put(c, frozenset({"c"}))
    assert cache.get(b) is None and cache.get(a) is not None


def options_form(form_type: str, **fields: str) -> Element:
    form = Element(qname(DATA, "x"), {"type": "submit"})
    for var, value in {"FORM_TYPE": form_type, **fields}.items():
        field = SubElement(form, qname(DATA, "field"), {"var": var})
        SubElement(field, qname(DATA, "value")).text = value
    return form


def test_xep0060_7_1_5_publish_options_apply_what_heron_knows() -> None:
    form = options_form(
        PUBLISH_OPTIONS,
        **{
            "pubsub#access_model": "whitelist",
            "pubsub#max_items": "max",
            "pubsub#persist_items": "true",
            "pubsub#send_last_published_item": "never",
        },
    )
    config = apply_options(NodeConfig(), form_options(form, PUBLISH_OPTIONS), Limits())
    assert config == NodeConfig(AccessModel.WHITELIST, Limits().max_items, True)
    assert NodeConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "fields",
    [
        {"pubsub#access_model": "roster"},
        {"pubsub#max_items": "0"},
        {"pubsub#max_items": "100000"},
        {"pubsub#max_items": "-1"},
        {"pubsub#persist_items": "yes"},
    ],
)
def test_xep0060_16_4_bad_option_values_are_not_acceptable(fields: dict[str, str]) -> None:
    with pytest.raises(StanzaError) as caught:
        apply_options(
            NodeConfig(),
            form_options(options_form(PUBLISH_OPTIONS, **fields), PUBLISH_OPTIONS),
            Limits(),
        )
    assert caught.value.condition is StanzaCondition.NOT_ACCEPTABLE


def test_a_form_of_another_type_is_a_bad_request() -> None:
    with pytest.raises(StanzaError) as caught:
        form_options(options_form("urn:example"), PUBLISH_OPTIONS)
    assert caught.value.condition is StanzaCondition.BAD_REQUEST


def test_hostile_forms_are_bounded() -> None:
    many = options_form(PUBLISH_OPTIONS, **{f"f{i}": "v" for i in range(100)})
    with pytest.raises(StanzaError):
        form_options(many, PUBLISH_OPTIONS)
    with pytest.raises(StanzaError):
        form_options(options_form(PUBLISH_OPTIONS, x="v" * 5000), PUBLISH_OPTIONS)


@pytest.mark.parametrize("name", ["", "a" * 257, "bad\x00name", "tab\tname"])
def test_bad_node_names_are_refused(name: str) -> None:
    with pytest.raises(StanzaError):
        check_node(name, Limits())


OWNER = parse_jid("roland@falcot.com")
LUCY = parse_jid("lucy@falcot.com/home")


def test_xep0060_4_5_access_models() -> None:
    may_read(NodeConfig(AccessModel.OPEN), OWNER, LUCY, subscribed=False)
    may_read(NodeConfig(AccessModel.PRESENCE), OWNER, LUCY, subscribed=True)
    may_read(NodeConfig(AccessModel.WHITELIST), OWNER, OWNER.with_resource("x"), False)
    with pytest.raises(PubsubError) as caught:
        may_read(NodeConfig(AccessModel.PRESENCE), OWNER, LUCY, subscribed=False)
    assert caught.value.app == "presence-subscription-required"
    with pytest.raises(PubsubError) as caught:
        may_read(NodeConfig(AccessModel.WHITELIST), OWNER, LUCY, subscribed=True)
    assert caught.value.app == "closed-node"


def test_xep0163_4_3_only_resources_that_asked_are_notified_and_whitelists_stay_home() -> None:
    own = [
        Listener(OWNER.with_resource("a"), frozenset({"urn:xmpp:avatar:metadata+notify"})),
        Listener(OWNER.with_resource("b"), frozenset()),
    ]
    contacts = [Listener(LUCY, frozenset({"urn:xmpp:avatar:metadata+notify"}))]
    node = "urn:xmpp:avatar:metadata"
    assert notify_targets(node, NodeConfig(), own, contacts) == [own[0].jid, LUCY]
    assert notify_targets(node, NodeConfig(AccessModel.WHITELIST), own, contacts) == [own[0].jid]


@given(st.recursive(st.text(max_size=20), lambda inner: st.lists(inner, max_size=4)))
def test_verification_string_never_raises_on_any_query(shape: object) -> None:
    query = Element(qname(DISCO, "query"))

    def build(parent: Element, node: object) -> None:
        if isinstance(node, str):
            SubElement(parent, qname(DISCO, "feature"), {"var": node})
            SubElement(parent, qname(DISCO, "identity"), {"category": node, "type": node})
        else:
            assert isinstance(node, list)
            form = SubElement(parent, qname(DATA, "x"))
            for child in node:
                build(form, child)

    build(query, shape)
    verification_string(query)


def test_xep0411_conversion_round_trips() -> None:
    storage = fromstring(
        '<storage xmlns="storage:bookmarks">'
        '<conference jid="Kitchen@Conference.Falcot.com/x" name="K" autojoin="true">'
        "<nick>roland</nick><password>secret</password></conference>"
        '<conference jid="hall@conference.falcot.com"/></storage>'
    )
    converted = from_legacy(storage, max_items=10)
    assert converted is not None and set(converted) == {
        "kitchen@conference.falcot.com",
        "hall@conference.falcot.com",
    }
    back = to_legacy(sorted(converted.items()))
    hall, kitchen = back.findall("{storage:bookmarks}conference")
    assert (kitchen.get("jid"), kitchen.get("name"), kitchen.get("autojoin")) == (
        "kitchen@conference.falcot.com",
        "K",
        "true",
    )
    assert kitchen.findtext("{storage:bookmarks}password") == "secret"
    assert hall.get("autojoin") == "false" and hall.get("name") is None
    assert from_legacy(storage, max_items=1) is None


@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=8))
def test_xep0411_any_legacy_storage_converts_without_raising(
    conferences: list[tuple[str, str]],
) -> None:
    storage = Element("{storage:bookmarks}storage")
    for jid, name in conferences:
        SubElement(storage, "{storage:bookmarks}conference", {"jid": jid, "name": name})
    converted = from_legacy(storage, max_items=256)
    assert converted is not None
    to_legacy(list(converted.items()))
