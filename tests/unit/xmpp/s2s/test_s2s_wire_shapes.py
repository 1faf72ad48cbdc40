"""Transcripts with the bytes real servers send: Prosody 0.12 (mod_s2s, mod_tls,
mod_saslauth, mod_dialback) and ejabberd 23.01 (ejabberd_s2s_in/out, mod_s2s_dialback),
as their sources write them (single quotes, ``db:`` prefixes, their attribute orders)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from heron.xmpp.errors import StreamCondition
from heron.xmpp.jid import JID
from heron.xmpp.s2s import (
    Authenticated,
    AuthMethod,
    DialbackVerifyNeeded,
    Role,
    S2SStream,
    StanzaReceived,
    StartTlsRequested,
    State,
    StreamEnded,
    dialback_key,
)
from heron.xmpp.stanza import NS, qname
from tests.unit.xmpp.s2s.s2s_harness import (
    CONFERENCE,
    FALCOT,
    FALCOT_SECRET,
    outgoing,
    valid_for,
)

EXAMPLE = "example.org"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def prosody_header(stream_id: str, from_: str = EXAMPLE, to: str = FALCOT) -> str:
    """util/xmppstream.lua open_stream with mod_s2s's stream_attrs (xmlns:db added)."""
    return (
        f"<?xml version='1.0'?><stream:stream xmlns:db='jabber:server:dialback'"
        f" xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en'"
        f" id='{stream_id}' from='{from_}' to='{to}' version='1.0' xmlns='jabber:server'>"
    )


def ejabberd_header(stream_id: str, from_: str = EXAMPLE, to: str = FALCOT) -> str:
    return (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
        " xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
        f" xml:lang='en' from='{from_}' to='{to}' id='{stream_id}' version='1.0'>"
    )


PROSODY_FEATURES_BEFORE_TLS = (
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
)
PROSODY_FEATURES_AFTER_TLS = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>EXTERNAL</mechanism></mechanisms>"
    "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
)
EJABBERD_FEATURES_AFTER_TLS = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>EXTERNAL</mechanism></mechanisms>"
    "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"
)
PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


def feed(stream: S2SStream, text: str) -> str:
    stream.receive_data(text.encode())
    return stream.data_to_send().decode()


def events(stream: S2SStream) -> list[object]:
    found: list[object] = []
    while (event := stream.next_event()) is not None:
        found.append(event)
    return found


def to_prosody_through_tls(features_after_tls: str) -> tuple[S2SStream, str]:
    out = outgoing()
    out.start()
    assert 'xmlns:db="jabber:server:dialback"' in out.data_to_send().decode()
    assert feed(out, prosody_header("p-1") + PROSODY_FEATURES_BEFORE_TLS) == (
        '<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
    )
    assert feed(out, PROCEED) == "" and events(out) == [StartTlsRequested()]
    out.start_tls_done(valid_for(EXAMPLE))
    assert out.data_to_send().decode().startswith("<?xml version='1.0'?><stream:stream")
    return out, feed(out, prosody_header("p-2") + features_after_tls)


def test_to_prosody_0_12_sasl_external() -> None:
    out, sent = to_prosody_through_tls(PROSODY_FEATURES_AFTER_TLS)
    assert sent == f'<auth xmlns="{SASL}" mechanism="EXTERNAL">ZmFsY290LmNvbQ==</auth>'
    restarted = feed(out, f"<success xmlns='{SASL}'/>")
    assert restarted.startswith("<?xml version='1.0'?><stream:stream")
    assert feed(out, prosody_header("p-3") + "<stream:features/>") == ""
    assert events(out) == [Authenticated(EXAMPLE, AuthMethod.EXTERNAL, FALCOT)]
    assert out.state is State.ESTABLISHED


def test_to_prosody_0_12_external_refused_falls_back_to_dialback() -> None:
    out, _ = to_prosody_through_tls(PROSODY_FEATURES_AFTER_TLS)
    sent = feed(out, f"<failure xmlns='{SASL}'><not-authorized/></failure>")
    key = dialback_key(FALCOT_SECRET, EXAMPLE, FALCOT, "p-2")
    assert sent == f'<db:result from="falcot.com" to="example.org">{key}</db:result>'
    feed(out, "<db:result from='example.org' to='falcot.com' type='valid'/>")
    assert events(out) == [Authenticated(EXAMPLE, AuthMethod.DIALBACK, FALCOT)]


def test_to_ejabberd_23_01_dialback_error_ends_a_stream_with_no_other_pair() -> None:
    out, _ = to_prosody_through_tls(
        EJABBERD_FEATURES_AFTER_TLS.replace("<mechanism>EXTERNAL</mechanism>", "")
    )
    assert events(out) == []
    feed(
        out,
        "<db:result from='example.org' to='falcot.com' type='error'>"
        "<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></db:result>",
    )
    (end,) = events(out)
    assert isinstance(end, StreamEnded) and end.error is not None
    assert end.error.text == "dialback refused: not-allowed"


def incoming_falcot(**options: object) -> S2SStream:
    arguments: dict[str, object] = {
        "role": Role.INCOMING,
        "local_domains": [FALCOT, CONFERENCE],
        "stream_id": "h1",
        "dialback_secret": FALCOT_SECRET,
    }
    arguments.update(options)
    return S2SStream(**arguments)  # type: ignore[arg-type]


def from_peer_through_tls(
    header: Callable[[str], str], certificate_names: tuple[str, ...]
) -> S2SStream:
    inc = incoming_falcot()
    answer = feed(inc, header("") + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert answer.endswith('<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>')
    assert events(inc) == [StartTlsRequested()]
    inc.start_tls_done(valid_for(*certificate_names))
    return inc


@pytest.mark.parametrize(
    "authzid", [base64.b64encode(EXAMPLE.encode()).decode(), "=", ""], ids=["domain", "=", "none"]
)
def test_from_prosody_or_ejabberd_sasl_external(authzid: str) -> None:
    inc = from_peer_through_tls(prosody_header, (EXAMPLE,))
    features = feed(inc, prosody_header(""))
    assert features.endswith(
        '<stream:features><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">'
        "<mechanism>EXTERNAL</mechanism></mechanisms>"
        '<dialback xmlns="urn:xmpp:features:dialback"><errors/></dialback></stream:features>'
    )
    answer = feed(inc, f"<auth xmlns='{SASL}' mechanism='EXTERNAL'>{authzid}</auth>")
    assert answer == f'<success xmlns="{SASL}"/>'
    assert events(inc) == [Authenticated(EXAMPLE, AuthMethod.EXTERNAL, FALCOT)]
    feed(inc, prosody_header(""))
    feed(
        inc,
        "<message from='bob@example.org/phone' to='roland@falcot.com' type='chat' id='m1'>"
        "<body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    (received,) = events(inc)
    assert isinstance(received, StanzaReceived)
    assert received.stanza.tag == qname(NS.CLIENT, "message")
    assert received.stanza.findtext(qname(NS.CLIENT, "body")) == "hi"
    assert received.to == JID("roland", FALCOT)


@pytest.mark.parametrize(
    ("auth", "condition"),
    [
        (
            f"<auth xmlns='{SASL}' mechanism='EXTERNAL'>Y2FwdWxldC5leGFtcGxl</auth>",
            "invalid-authzid",
        ),
        (f"<auth xmlns='{SASL}' mechanism='EXTERNAL'>not base64!</auth>", "incorrect-encoding"),
        (f"<auth xmlns='{SASL}' mechanism='PLAIN'>AGEAYg==</auth>", "invalid-mechanism"),
    ],
)
def test_rfc6120_6_4_5_external_failures_leave_dialback_open(auth: str, condition: str) -> None:
    inc = from_peer_through_tls(ejabberd_header, (EXAMPLE,))
    feed(inc, ejabberd_header(""))
    assert feed(inc, auth) == f'<failure xmlns="{SASL}"><{condition}/></failure>'
    assert inc.state is State.AUTH
    feed(inc, auth)
    assert feed(inc, auth).endswith("</stream:stream>")  # the third failure ends it
    (end,) = [event for event in events(inc) if isinstance(event, StreamEnded)]
    assert end.error is not None and end.error.condition is StreamCondition.POLICY_VIOLATION


def test_external_is_not_offered_for_a_certificate_naming_another_domain() -> None:
    inc = from_peer_through_tls(ejabberd_header, ("other.example",))
    features = feed(inc, ejabberd_header(""))
    assert "EXTERNAL" not in features and "urn:xmpp:features:dialback" in features
    answer = feed(inc, f"<auth xmlns='{SASL}' mechanism='EXTERNAL'>=</auth>")
    assert answer == f'<failure xmlns="{SASL}"><invalid-mechanism/></failure>'


def test_from_ejabberd_23_01_dialback_request() -> None:
    inc = from_peer_through_tls(ejabberd_header, ())
    feed(inc, ejabberd_header(""))
    feed(inc, "<db:result from='example.org' to='falcot.com'>0a1b2c</db:result>")
    assert events(inc) == [DialbackVerifyNeeded("h1-1", EXAMPLE, FALCOT, "0a1b2c")]
    assert (
        feed(inc, "<db:result from='example.org' to='conference.falcot.com'>3d4e</db:result>") == ""
    )
    inc.dialback_verified(EXAMPLE, CONFERENCE, True)
    assert inc.data_to_send().decode() == (
        '<db:result from="conference.falcot.com" to="example.org" type="valid"/>'
    )
    inc.dialback_verified(EXAMPLE, FALCOT, True)
    assert inc.authenticated_domains == {EXAMPLE}
    assert [type(event) for event in events(inc)] == [
        DialbackVerifyNeeded,
        Authenticated,
        Authenticated,
    ]
