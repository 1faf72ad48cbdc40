"""The sans-IO rules of XEP-0313 (heron.xmpp.archive): queries, paging, preferences and
what is archived, with hostile input as property tests."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.archive import (
    MAM,
    RSM,
    SID,
    Default,
    Prefs,
    archivable,
    parse_prefs,
    parse_query,
    stamp_id,
)
from heron.xmpp.errors import StanzaError
from heron.xmpp.jid import parse_jid
from heron.xmpp.stanza import NS

ROOM = parse_jid("lobby@conference.falcot.com")


def element(text: str) -> Element:
    return fromstring(f'<wrapper xmlns="{NS.CLIENT}">{text}</wrapper>')[0]


def query(form: str = "", rsm: str = "", extra: str = "") -> Element:
    return fromstring(
        f'<query xmlns="{MAM}" queryid="q1">'
        + (f'<x xmlns="jabber:x:data" type="submit">{form}</x>' if form else "")
        + (f'<set xmlns="{RSM}">{rsm}</set>' if rsm else "")
        + extra
        + "</query>"
    )


def field(var: str, *values: str) -> str:
    return f'<field var="{var}">' + "".join(f"<value>{v}</value>" for v in values) + "</field>"


def test_xep0313_4_1_form_fields_become_filters() -> None:
    parsed = parse_query(
        query(
            field("FORM_TYPE", MAM)
            + field("with", "juliet@capulet.lit")
            + field("start", "2010-06-07T00:00:00Z")
            + field("end", "2010-07-07T13:23:54+02:00")
            + field("after-id", "a1")
            + field("ids", "x", "y"),
            "<max>10</max><after>a2</after>",
            "<flip-page/>",
        ),
        page_limit=50,
    )
    assert parsed.queryid == "q1" and str(parsed.with_) == "juliet@capulet.lit"
    assert (parsed.start, parsed.end) == (1275868800.0, 1278501834.0)
    assert (parsed.after, parsed.ids, parsed.max) == (("a1", "a2"), ("x", "y"), 10)
    assert (parsed.last, parsed.flip) == (False, True)


def test_xep0059_2_5_an_empty_before_asks_for_the_last_page() -> None:
    parsed = parse_query(query(rsm="<max>5</max><before/>"), page_limit=50)
    assert (parsed.last, parsed.before, parsed.max) == (True, (), 5)
    parsed = parse_query(query(rsm="<before>b7</before>"), page_limit=50)
    assert (parsed.last, parsed.before, parsed.max) == (True, ("b7",), 50)


@pytest.mark.parametrize(
    ("form", "rsm"),
    [
        (field("unknown", "1"), ""),
        (field("with", "a@b", "c@d"), ""),
        (field("start", "2010-06-07"), ""),
        (field("start", "2010-06-07T00:00:00"), ""),  # no zone
        (field("FORM_TYPE", "urn:xmpp:mam:1"), ""),
        ("", "<max>ten</max>"),
        ("", "<max>1234567890</max>"),
        ("", "<after></after>"),
        ("", f"<after>{'x' * 200}</after>"),
        ("", "<index>3</index>"),
    ],
)
def test_xep0313_malformed_queries_are_refused(form: str, rsm: str) -> None:
    with pytest.raises(StanzaError):
        parse_query(query(form, rsm), page_limit=50)


@given(st.integers(min_value=0, max_value=999_999_999), st.integers(1, 250))
def test_xep0059_2_1_max_is_cut_to_the_page_limit(asked: int, limit: int) -> None:
    assert parse_query(query(rsm=f"<max>{asked}</max>"), page_limit=limit).max == min(asked, limit)


@given(st.lists(st.tuples(st.text(max_size=20), st.lists(st.text(max_size=40), max_size=3))))
def test_hostile_forms_raise_only_stanza_errors(fields: list[tuple[str, list[str]]]) -> None:
    form = Element("{jabber:x:data}x", {"type": "submit"})
    for var, values in fields:
        item = SubElement(form, "{jabber:x:data}field", {"var": var})
        for value in values:
            SubElement(item, "{jabber:x:data}value").text = value
    wrapper = Element(f"{{{MAM}}}query")
    wrapper.append(form)
    try:
        parse_query(wrapper, page_limit=50)
    except StanzaError:
        pass


def test_xep0313_6_1_prefs_rules() -> None:
    prefs = parse_prefs(
        fromstring(
            f'<prefs xmlns="{MAM}" default="roster"><always><jid>a@x</jid><jid>b@x/r</jid></always>'
            "<never><jid>b@x</jid></never></prefs>"
        )
    )
    assert prefs.default is Default.ROSTER
    assert prefs.archives(parse_jid("a@x/phone"), in_roster=False)
    assert not prefs.archives(parse_jid("b@x"), in_roster=True)  # never wins
    assert prefs.archives(parse_jid("c@x"), in_roster=True)
    assert not prefs.archives(parse_jid("c@x"), in_roster=False)
    assert Prefs.from_json(prefs.to_json()) == prefs
    assert parse_prefs(prefs.element()) == prefs


def test_xep0313_6_1_too_many_pref_jids_are_refused() -> None:
    jids = "".join(f"<jid>u{n}@x</jid>" for n in range(201))
    with pytest.raises(StanzaError):
        parse_prefs(
            fromstring(f'<prefs xmlns="{MAM}" default="always"><always>{jids}</always></prefs>')
        )


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ('<message type="chat"><body>x</body></message>', True),
        ("<message><body>x</body></message>", True),
        (
            '<message><encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2"/></message>',
            True,
        ),
        ('<message type="groupchat"><body>x</body></message>', False),
        ('<message type="headline"><body>x</body></message>', False),
        ('<message type="error"><body>x</body></message>', False),
        ("<message><thread>t</thread></message>", False),
        ('<message><body>x</body><no-store xmlns="urn:xmpp:hints"/></message>', False),
        ('<message><received xmlns="urn:xmpp:carbons:2"/><body>x</body></message>', False),
        (f'<message><result xmlns="{MAM}"/><body>x</body></message>', False),
    ],
)
def test_prosody_mod_mam_rules_for_what_is_archived(message: str, kept: bool) -> None:
    assert archivable(element(message)) is kept


def test_xep0359_3_the_archive_id_replaces_a_forged_one() -> None:
    message = element(
        f'<message><body>x</body><stanza-id xmlns="{SID}" by="{ROOM}" id="forged"/>'
        f'<stanza-id xmlns="{SID}" by="other.example" id="theirs"/></message>'
    )
    stamp_id(message, ROOM, "ours")
    ids = [(e.get("by"), e.get("id")) for e in message.iter(f"{{{SID}}}stanza-id")]
    assert ids == [("other.example", "theirs"), (str(ROOM), "ours")]
