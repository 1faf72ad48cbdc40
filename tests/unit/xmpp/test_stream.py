"""The c2s stream (RFC 6120 §4 to §9, RFC 7395): transcripts, every edge, hostile input."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.accounts import ScramHash, derive_scram_keys
from heron.xmpp.errors import StanzaCondition, StreamCondition
from heron.xmpp.jid import JID
from heron.xmpp.sasl import SaslConfig
from heron.xmpp.sm import SmLimits
from heron.xmpp.stanza import NS
from heron.xmpp.stream import (
    REJECTIONS,
    TRANSITIONS,
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    C2SStream,
    Input,
    PlainCheckNeeded,
    ScramKeysNeeded,
    StanzaReceived,
    StartTlsRequested,
    State,
    StreamEnded,
    StreamEvent,
)

HOST = "falcot.com"
ROLAND = JID("roland", HOST)
KEYS = derive_scram_keys("secret", b"salt-of-roland!!", 4096, ScramHash.SHA256)
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"

CLIENT_HEADER = (
    b"<?xml version='1.0'?><stream:stream to='falcot.com' version='1.0' xml:lang='en'"
    b" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
BIND = (
    b"<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<resource>laptop</resource></bind></iq>"
)
SESSION = b"<iq type='set' id='sess_1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
MESSAGE = b"<message to='bob@falcot.com' id='m1' type='chat'><body>Salut</body></message>"
FOOTER = b"</stream:stream>"
SM_NS = "urn:xmpp:sm:3"
ENABLE = f"<enable xmlns='{SM_NS}' resume='true'/>".encode()
RESUME = f"<resume xmlns='{SM_NS}' previd='old' h='0'/>".encode()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def auth(mechanism: str, payload: bytes | None = None) -> bytes:
    text = b64(payload) if payload is not None else ""
    return f"<auth xmlns='{SASL_NS}' mechanism='{mechanism}'>{text}</auth>".encode()


def response(payload: bytes) -> bytes:
    return f"<response xmlns='{SASL_NS}'>{b64(payload)}</response>".encode()


PLAIN = auth("PLAIN", b"\0roland\0secret")


def config(max_failures: int = 3) -> SaslConfig:
    def nonces() -> Iterator[str]:
        count = 0
        while True:
            count += 1
            yield f"SERVERNONCE{count}"

    source = nonces()
    return SaslConfig(
        server_secret=b"k" * 32, nonce=lambda: next(source), max_failures=max_failures
    )


def new_stream(**options: object) -> C2SStream:
    arguments: dict[str, object] = {
        "hosts": [HOST, "conference.falcot.com"],
        "stream_id": "s1",
        "tls_active": False,
        "tls_available": True,
        "mechanisms": config(),
    }
    arguments.update(options)
    return C2SStream(**arguments)  # type: ignore[arg-type]


class Peer:
    """The client's side of a transcript: feed bytes (in chunks), read answers and events."""

    def __init__(self, stream: C2SStream, chunk: int | None = None) -> None:
        self.stream = stream
        self.chunk = chunk

    def send(self, data: bytes) -> str:
        step = self.chunk or max(len(data), 1)
        for start in range(0, len(data), step):
            self.stream.receive_data(data[start : start + step])
        return self.stream.data_to_send().decode()

    def events(self) -> list[StreamEvent]:
        found = []
        while (event := self.stream.next_event()) is not None:
            found.append(event)
        return found


def scram_client_final(
    client_first_bare: str, server_first: str, password: str = "secret"
) -> tuple[bytes, str]:
    """RFC 5802 §3 computed here with hashlib: client-final and the expected verifier."""
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    verifier = base64.b64encode(hmac.digest(server_key, auth_message, "sha256")).decode()
    return f"{without_proof},p={b64(proof)}".encode(), f"v={verifier}"


def text_of(xml: str, tag: str) -> str:
    start = xml.index(">", xml.index(f"<{tag}")) + 1
    return xml[start : xml.index(f"</{tag}>")]


# --- the full login, as a transcript -----------------------------------------------------

SERVER_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns=\"jabber:client\""
    ' xmlns:stream="http://etherx.jabber.org/streams" id="{id}" from="falcot.com"'
    ' version="1.0" xml:lang="en">'
)
SASL_FEATURES = (
    '<stream:features><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">'
    "<mechanism>SCRAM-SHA-512-PLUS</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism>"
    "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-512</mechanism>"
    "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
    "<mechanism>PLAIN</mechanism></mechanisms>"
    '<sasl-channel-binding xmlns="urn:xmpp:sasl-cb:0"><channel-binding type="tls-exporter"/>'
    "</sasl-channel-binding></stream:features>"
)


@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "byte-by-byte"])
def test_rfc6120_9_full_login_with_starttls_and_scram_sha256(chunk: int | None) -> None:
    stream = new_stream()
    client = Peer(stream, chunk)

    # RFC 6120 §9.1.1: header, and TLS is mandatory to negotiate.
    assert client.send(CLIENT_HEADER) == SERVER_HEADER.format(id="s1") + (
        '<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/>'
        "</starttls></stream:features>"
    )
    assert stream.state is State.STARTTLS

    # §9.1.2: STARTTLS, the server's TLS handshake, a restart over TLS.
    assert client.send(STARTTLS) == '<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
    assert client.events() == [StartTlsRequested()]
    assert stream.state is State.TLS_HANDSHAKE
    stream.start_tls_done({"tls-exporter": b"exported keying material"})
    assert client.send(CLIENT_HEADER) == SERVER_HEADER.format(id="s1-1") + SASL_FEATURES

    # §9.1.3: SASL SCRAM-SHA-256, the server's messages checked by the client.
    client_first_bare = "n=roland,r=clientnonce"
    assert client.send(auth("SCRAM-SHA-256", b"n,," + client_first_bare.encode())) == ""
    assert client.events() == [ScramKeysNeeded("roland", ScramHash.SHA256)]
    stream.provide_scram_keys(KEYS)
    challenge = stream.data_to_send().decode()
    server_first = base64.b64decode(text_of(challenge, "challenge")).decode()
    assert server_first == "r=clientnonceSERVERNONCE1,s=c2FsdC1vZi1yb2xhbmQhIQ==,i=4096"
    final, verifier = scram_client_final(client_first_bare, server_first)
    success = client.send(response(final))
    assert success == f'<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl">{b64(verifier)}</success>'
    assert client.events() == [Authenticated(ROLAND)]
    assert stream.authenticated_jid == ROLAND

    # §9.1.4: restart, bind, and the legacy session (RFC 3921 §3) still answered.
    assert client.send(CLIENT_HEADER) == SERVER_HEADER.format(id="s1-2") + (
        '<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>'
        '<session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional/></session>'
        '<ver xmlns="urn:xmpp:features:rosterver"/><csi xmlns="urn:xmpp:csi:0"/>'
        "</stream:features>"
    )
    assert client.send(BIND) == ""
    assert client.events() == [BindRequested("laptop")]
    stream.bind_done(ROLAND.with_resource("laptop"))
    assert stream.data_to_send() == (
        b'<iq type="result" id="bind_1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">'
        b"<jid>roland@falcot.com/laptop</jid></bind></iq>"
    )
    assert stream.state is State.ESTABLISHED
    assert stream.jid == ROLAND.with_resource("laptop")
    assert client.send(SESSION) == '<iq type="result" id="sess_1"/>'

    # §9.1.5: stanzas, with 'from' stamped.
    assert client.send(MESSAGE) == ""
    (received,) = client.events()
    assert isinstance(received, StanzaReceived)
    assert received.stanza.get("from") == "roland@falcot.com/laptop"
    assert received.stanza.findtext("{jabber:client}body") == "Salut"
    reply = Element("{jabber:client}message", {"from": "bob@falcot.com/x", "type": "chat"})
    SubElement(reply, "{jabber:client}body").text = "Bonjour"
    stream.send_stanza(reply)
    assert stream.data_to_send() == (
        b'<message from="bob@falcot.com/x" type="chat"><body>Bonjour</body></message>'
    )

    # §4.4: the client closes, the server answers with its own closing tag.
    assert client.send(b" " + FOOTER) == "</stream:stream>"
    assert client.events() == [StreamEnded(None)]
    assert stream.closed


def login(stream: C2SStream, *, through: State = State.ESTABLISHED) -> Peer:
    """Drive ``stream`` (STARTTLS, PLAIN) up to the state ``through``."""
    client = Peer(stream)
    target = {State.CLOSED: State.ESTABLISHED, State.HIBERNATED: State.ESTABLISHED}.get(
        through, State.BIND if through is State.RESUMING else through
    )
    steps: list[tuple[State, object]] = [
        (State.HEADER, lambda: client.send(CLIENT_HEADER)),
        (State.STARTTLS, lambda: client.send(STARTTLS)),
        (State.TLS_HANDSHAKE, lambda: stream.start_tls_done({})),
        (State.TLS_HEADER, lambda: client.send(CLIENT_HEADER)),
        (State.SASL, lambda: client.send(PLAIN)),
        (State.SASL_EXCHANGE, lambda: stream.plain_verified(True)),
        (State.SASL_HEADER, lambda: client.send(CLIENT_HEADER)),
        (State.BIND, lambda: client.send(BIND)),
        (State.BINDING, lambda: stream.bind_done(ROLAND.with_resource("laptop"))),
    ]
    for state, step in steps:
        if stream.state is target:
            break
        assert stream.state is state
        step()  # type: ignore[operator]
    if through is State.CLOSED:
        stream.close()
    elif through is State.RESUMING:
        client.send(RESUME)
    elif through is State.HIBERNATED:
        client.send(ENABLE)
        assert stream.connection_lost()
    stream.data_to_send()
    client.events()
    return client


def test_plain_login_reports_the_credentials_and_accepts_the_verdict() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    assert client.send(PLAIN) == ""
    assert client.events() == [PlainCheckNeeded("", "roland", "secret")]
    stream.plain_verified(True)
    assert stream.data_to_send() == b'<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>'
    assert client.events() == [Authenticated(ROLAND)]


def test_the_username_is_prepared_as_a_localpart() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    client.send(auth("PLAIN", b"\0Roland\0secret"))
    assert client.events() == [PlainCheckNeeded("", "roland", "secret")]


# --- every state x input edge (STYLE.md 5) -----------------------------------------------

CLIENT_INPUTS = {
    Input.STARTTLS: STARTTLS,
    Input.AUTH: PLAIN,
    Input.RESPONSE: response(b"n,,n=roland,r=x"),
    Input.ABORT: f"<abort xmlns='{SASL_NS}'/>".encode(),
    Input.BIND_IQ: BIND,
    Input.SESSION_IQ: SESSION,
    Input.CSI: b"<inactive xmlns='urn:xmpp:csi:0'/>",
    Input.SM_ENABLE: ENABLE,
    Input.SM_RESUME: RESUME,
    Input.SM_ACK: f"<r xmlns='{SM_NS}'/>".encode(),
    Input.STANZA: MESSAGE,
    Input.FOOTER: FOOTER,
}
HEADER_STATES = {State.HEADER, State.TLS_HEADER, State.SASL_HEADER}


def with_sm(**options: object) -> C2SStream:
    ids = iter(range(1000))
    arguments: dict[str, object] = {
        "sm": SmLimits(),
        "resume_ids": lambda: f"id{next(ids)}",
        "resume_max": 300,
    }
    return new_stream(**{**arguments, **options})


def hibernated() -> C2SStream:
    return in_state(State.HIBERNATED)[0]


def in_state(state: State) -> tuple[C2SStream, Peer]:
    stream = with_sm()
    client = login(stream, through=state)
    assert stream.state is state
    return stream, client


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
@pytest.mark.parametrize("input_", list(CLIENT_INPUTS), ids=lambda i: i.name)
def test_every_state_and_client_input(state: State, input_: Input) -> None:
    stream, client = in_state(state)
    client.send(CLIENT_INPUTS[input_])
    events = client.events()
    if state in (State.CLOSED, State.TLS_HANDSHAKE, State.HIBERNATED):
        # Nothing counts after the end, nor plaintext after <proceed/> (§5.4.3.3).
        assert stream.state is state
        assert events == []
    elif state in HEADER_STATES:
        # Before a header the first element is the stream's root: the wrong one.
        assert stream.state is State.CLOSED
        ended = events[-1]
        assert isinstance(ended, StreamEnded)
        assert ended.error is not None
        expected = {StreamCondition.INVALID_NAMESPACE, StreamCondition.NOT_WELL_FORMED}
        assert ended.error.condition in expected
    elif (state, input_) in TRANSITIONS:
        assert stream.state in TRANSITIONS[(state, input_)]
    else:
        assert stream.state is State.CLOSED
        ended = events[-1]
        assert isinstance(ended, StreamEnded)
        assert ended.error is not None
        assert ended.error.condition == REJECTIONS[input_]


CALLER_INPUTS = {
    Input.TLS_DONE: lambda stream: stream.start_tls_done({}),
    Input.KEYS: lambda stream: stream.provide_scram_keys(KEYS),
    Input.VERDICT: lambda stream: stream.plain_verified(True),
    Input.REFUSED: lambda stream: stream.refuse_authentication(),
    Input.BIND_DONE: lambda stream: stream.bind_done(ROLAND.with_resource("r")),
    Input.BIND_REFUSED: lambda stream: stream.bind_refused(StanzaCondition.CONFLICT),
    Input.RESUME_DONE: lambda stream: stream.resumed(hibernated()),
    Input.RESUME_FAILED: lambda stream: stream.resume_failed(),
    Input.LOST: lambda stream: stream.connection_lost(),
}


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
@pytest.mark.parametrize("input_", list(CALLER_INPUTS), ids=lambda i: i.name)
def test_every_state_and_server_answer(state: State, input_: Input) -> None:
    stream, _ = in_state(state)
    CALLER_INPUTS[input_](stream)
    if (state, input_) in TRANSITIONS:
        assert stream.state in TRANSITIONS[(state, input_)]
    else:
        # An answer nobody waits for is dropped: a race with the client, not an error.
        assert REJECTIONS[input_] is None
        assert stream.state is state
        assert stream.data_to_send() == b""


def test_the_header_is_expected_only_in_the_header_states() -> None:
    # The walks above take every other edge; login() takes these three.
    assert {s for s, i in TRANSITIONS if i is Input.HEADER} == HEADER_STATES
    assert set(REJECTIONS) == set(Input) - {Input.FOOTER}


# --- stream header rules (RFC 6120 §4.7) -------------------------------------------------


def ended_with(stream: C2SStream, data: bytes) -> tuple[StreamCondition, str]:
    client = Peer(stream)
    output = client.send(data)
    events = client.events()
    ended = events[-1]
    assert isinstance(ended, StreamEnded)
    assert ended.error is not None
    assert stream.closed
    return ended.error.condition, output


def test_rfc6120_4_9_1_1_an_error_in_the_header_still_gets_our_header_first() -> None:
    condition, output = ended_with(new_stream(), CLIENT_HEADER.replace(b"falcot.com", b"x.org"))
    assert condition == StreamCondition.HOST_UNKNOWN
    assert output == SERVER_HEADER.format(id="s1") + (
        '<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        '<text xmlns="urn:ietf:params:xml:ns:xmpp-streams">this server does not serve that host'
        "</text></stream:error></stream:stream>"
    )


@pytest.mark.parametrize(
    ("header", "condition"),
    [
        (CLIENT_HEADER.replace(b" to='falcot.com'", b""), StreamCondition.HOST_UNKNOWN),
        (CLIENT_HEADER.replace(b"falcot.com", b"falcot.com@x"), StreamCondition.HOST_UNKNOWN),
        (CLIENT_HEADER.replace(b" version='1.0' xml", b" xml"), "unsupported-version"),
        (CLIENT_HEADER.replace(b"'1.0' xml", b"'0.9' xml"), StreamCondition.UNSUPPORTED_VERSION),
        (CLIENT_HEADER.replace(b"'1.0' xml", b"'2.0' xml"), StreamCondition.UNSUPPORTED_VERSION),
        (CLIENT_HEADER.replace(b"'1.0' xml", b"'1.x' xml"), StreamCondition.UNSUPPORTED_VERSION),
        (CLIENT_HEADER.replace(b"etherx.jabber.org", b"evil.org"), "invalid-namespace"),
        (b"<stream to='falcot.com' version='1.0'>", StreamCondition.INVALID_NAMESPACE),
    ],
    ids=["no-to", "bad-to", "no-version", "0.9", "2.0", "1.x", "stream-ns", "no-ns"],
)
def test_bad_stream_headers(header: bytes, condition: StreamCondition) -> None:
    assert ended_with(new_stream(), header)[0] == condition


def test_the_domain_is_compared_prepared_and_version_1_1_is_answered_with_1_0() -> None:
    stream = new_stream()
    output = Peer(stream).send(
        CLIENT_HEADER.replace(b"falcot.com", b"FALCOT.com.").replace(b"'1.0' xml", b"'1.1' xml")
    )
    assert 'version="1.0"' in output
    assert stream.host == HOST
    assert stream.state is State.STARTTLS


def test_the_restarted_header_must_name_the_same_host() -> None:
    stream = new_stream()
    login(stream, through=State.TLS_HEADER)
    other = CLIENT_HEADER.replace(b"falcot.com", b"conference.falcot.com")
    assert ended_with(stream, other)[0] == StreamCondition.HOST_UNKNOWN


def test_the_clients_from_is_echoed_as_to() -> None:
    header = CLIENT_HEADER.replace(b"to=", b"from='roland@falcot.com' to=")
    assert ' to="roland@falcot.com"' in Peer(new_stream()).send(header)


# --- TLS policy --------------------------------------------------------------------------


def test_direct_tls_offers_sasl_at_once_with_plus_when_there_is_channel_binding() -> None:
    stream = new_stream(tls_active=True, channel_binding={"tls-server-end-point": b"h"})
    output = Peer(stream).send(CLIENT_HEADER)
    assert "starttls" not in output
    assert "<mechanism>SCRAM-SHA-256-PLUS</mechanism>" in output
    assert "<mechanism>PLAIN</mechanism>" in output
    assert '<channel-binding type="tls-server-end-point"/>' in output
    assert stream.state is State.SASL


def test_auth_before_required_starttls_is_a_policy_violation() -> None:
    stream = new_stream()
    login(stream, through=State.STARTTLS)
    assert ended_with(stream, PLAIN)[0] == StreamCondition.POLICY_VIOLATION


def test_no_tls_to_offer_while_required_is_a_policy_violation() -> None:
    stream = new_stream(tls_available=False)
    assert ended_with(stream, CLIENT_HEADER)[0] == StreamCondition.POLICY_VIOLATION


def test_optional_tls_offers_starttls_and_scram_but_not_plain() -> None:
    stream = new_stream(require_tls=False)
    client = Peer(stream)
    output = client.send(CLIENT_HEADER)
    assert '<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' in output
    assert "<mechanism>SCRAM-SHA-1</mechanism>" in output
    assert "PLAIN" not in output
    client.send(auth("SCRAM-SHA-1", b"n,,n=roland,r=x"))
    assert client.events() == [ScramKeysNeeded("roland", ScramHash.SHA1)]


def test_no_tls_at_all_when_allowed_goes_straight_to_sasl() -> None:
    stream = new_stream(tls_available=False, require_tls=False)
    output = Peer(stream).send(CLIENT_HEADER)
    assert "starttls" not in output
    assert stream.state is State.SASL


def test_plaintext_after_starttls_is_never_processed() -> None:
    stream = new_stream()
    client = login(stream, through=State.STARTTLS)
    client.send(STARTTLS + PLAIN + MESSAGE)
    assert client.events() == [StartTlsRequested()]
    stream.start_tls_done({})
    assert stream.state is State.TLS_HEADER
    assert "<stream:features>" in client.send(CLIENT_HEADER)
    assert client.events() == []


# --- SASL on the stream ------------------------------------------------------------------


def test_sasl_failure_then_retry_and_the_third_failure_closes() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    failure = '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized/></failure>'
    for attempt in range(3):
        client.send(PLAIN)
        stream.plain_verified(False)
        output = stream.data_to_send().decode()
        assert output.startswith(failure)
        if attempt < 2:
            assert stream.state is State.SASL
    assert "<policy-violation" in output
    assert output.endswith("</stream:stream>")
    ended = client.events()[-1]
    assert isinstance(ended, StreamEnded)
    assert ended.error is not None
    assert ended.error.condition == StreamCondition.POLICY_VIOLATION


def test_failure_conditions_reach_the_wire() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    assert "<invalid-mechanism/>" in client.send(auth("X-OAUTH2", b"x"))
    assert "<incorrect-encoding/>" in client.send(
        f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>!!</auth>".encode()
    )


def test_abort_during_scram_then_late_keys_are_ignored() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    client.send(auth("SCRAM-SHA-256", b"n,,n=roland,r=x"))
    assert client.events() == [ScramKeysNeeded("roland", ScramHash.SHA256)]
    assert client.send(f"<abort xmlns='{SASL_NS}'/>".encode()) == (
        '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><aborted/></failure>'
    )
    stream.provide_scram_keys(KEYS)
    assert stream.data_to_send() == b""
    assert stream.state is State.SASL


def test_scram_wrong_password_is_not_authorized_and_reveals_nothing() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    bare = "n=roland,r=x"
    client.send(auth("SCRAM-SHA-256", b"n,," + bare.encode()))
    stream.provide_scram_keys(KEYS)
    server_first = base64.b64decode(text_of(stream.data_to_send().decode(), "challenge"))
    final, _ = scram_client_final(bare, server_first.decode(), "wrong")
    assert client.send(response(final)) == (
        '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized/></failure>'
    )
    # The server counts the failure against the account and the address (its lockout).
    assert AuthenticationFailed("roland") in client.events()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_a_guess_that_must_wait_is_refused_unchecked_and_not_counted(mechanism: str) -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    payload = b"\0roland\0secret" if mechanism == "PLAIN" else b"n,,n=roland,r=x"
    client.send(auth(mechanism, payload))
    assert len(client.events()) == 1  # PlainCheckNeeded or ScramKeysNeeded
    stream.refuse_authentication()
    assert stream.data_to_send() == (
        b'<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><temporary-auth-failure/></failure>'
    )
    assert client.events() == [AuthenticationFailed("roland", counted=False)]
    assert stream.state is State.SASL
    # A late answer to the refused exchange is dropped.
    stream.plain_verified(True)
    stream.provide_scram_keys(KEYS)
    assert stream.data_to_send() == b""
    assert stream.state is State.SASL


def test_unknown_accounts_get_one_fake_salt_however_the_name_is_spelled() -> None:
    salts = set()
    for name, hash_name in (("Nobody", ScramHash.SHA256), ("nobody", ScramHash.SHA1)):
        stream = new_stream()
        client = login(stream, through=State.SASL)
        client.send(auth(hash_name.mechanism, f"n,,n={name},r=x".encode()))
        assert client.events() == [ScramKeysNeeded("nobody", hash_name)]
        stream.provide_scram_keys(None)
        first = base64.b64decode(text_of(stream.data_to_send().decode(), "challenge"))
        salts.add(dict(item.split("=", 1) for item in first.decode().split(","))["s"])
    assert len(salts) == 1


def test_an_impossible_scram_username_gets_fake_keys_without_asking() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    output = client.send(auth("SCRAM-SHA-256", b"n,,n=a b,r=x"))
    assert client.events() == []
    assert "<challenge" in output


def test_plain_authzid_of_another_account_is_invalid_authzid() -> None:
    stream = new_stream()
    client = login(stream, through=State.SASL)
    assert "<invalid-authzid/>" in client.send(auth("PLAIN", b"bob@falcot.com\0roland\0pw"))
    assert client.events() == [AuthenticationFailed(None)]
    client.send(auth("PLAIN", b"roland@falcot.com\0roland\0pw"))
    assert client.events() == [PlainCheckNeeded("roland@falcot.com", "roland", "pw")]


# --- binding (RFC 6120 §7) ---------------------------------------------------------------


def test_bind_without_resource_lets_the_server_choose() -> None:
    stream = new_stream()
    client = login(stream, through=State.BIND)
    client.send(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    assert client.events() == [BindRequested(None)]


def test_rfc6120_7_7_2_1_a_bind_get_is_a_bad_request() -> None:
    stream = new_stream()
    client = login(stream, through=State.BIND)
    iq = b"<iq type='get' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
    output = client.send(iq)
    assert output == (
        '<iq type="error" id="b"><error type="modify">'
        '<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>'
    )
    assert stream.state is State.BIND


def test_rfc6120_7_7_2_1_an_unpreparable_resource_is_a_bad_request() -> None:
    stream = new_stream()
    client = login(stream, through=State.BIND)
    iq = "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + (
        "<resource>\u0085x</resource></bind></iq>"
    )
    assert "<bad-request" in client.send(iq.encode())
    assert stream.state is State.BIND


def test_bind_refused_answers_the_condition_and_allows_a_retry() -> None:
    stream = new_stream()
    client = login(stream, through=State.BINDING)
    stream.bind_refused(StanzaCondition.CONFLICT)
    assert stream.data_to_send() == (
        b'<iq type="error" id="bind_1"><error type="cancel">'
        b'<conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>'
    )
    assert stream.state is State.BIND
    client.send(BIND)
    assert client.events() == [BindRequested("laptop")]


def test_a_second_bind_is_not_allowed() -> None:
    stream = new_stream()
    client = login(stream)
    assert "<not-allowed" in client.send(BIND)
    assert stream.state is State.ESTABLISHED


# --- stanzas (RFC 6120 §8) ---------------------------------------------------------------


def test_rfc6120_8_1_2_1_from_is_stamped_whatever_the_client_claims() -> None:
    stream = new_stream()
    client = login(stream)
    client.send(b"<presence from='admin@falcot.com/x'/>")
    (event,) = client.events()
    assert isinstance(event, StanzaReceived)
    assert event.stanza.get("from") == "roland@falcot.com/laptop"


def test_a_malformed_to_gets_a_jid_malformed_stanza_error_not_a_stream_error() -> None:
    stream = new_stream()
    client = login(stream)
    output = client.send(b"<message to='a@b@c/' id='x'><body>hi</body></message>")
    assert output == (
        '<message type="error" to="roland@falcot.com/laptop" id="x"><error type="modify">'
        '<jid-malformed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">empty resourcepart</text>'
        "</error></message>"
    )
    assert client.events() == []
    assert stream.state is State.ESTABLISHED
    assert client.send(b"<message to='@x' type='error'/>") == ""  # errors are never answered


@pytest.mark.parametrize(
    ("element", "condition"),
    [
        (b"<message xmlns='jabber:server'/>", StreamCondition.INVALID_NAMESPACE),
        (b"<iq xmlns='urn:x' type='get' id='1'/>", StreamCondition.INVALID_NAMESPACE),
        (b"<foo/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (b"<enable xmlns='urn:xmpp:sm:3'/>", StreamCondition.UNSUPPORTED_STANZA_TYPE),
        (b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "unsupported-stanza-type"),
        (STARTTLS, StreamCondition.POLICY_VIOLATION),
    ],
)
def test_top_level_elements_that_are_not_stanzas(element: bytes, condition: str) -> None:
    stream = new_stream()
    login(stream)
    assert ended_with(stream, element)[0] == condition


def test_stanzas_before_binding_are_not_authorized() -> None:
    stream = new_stream()
    login(stream, through=State.SASL)
    assert ended_with(stream, MESSAGE)[0] == StreamCondition.NOT_AUTHORIZED


def test_send_stanza_before_established_or_after_close_is_dropped() -> None:
    stream = new_stream()
    login(stream, through=State.BIND)
    stream.send_stanza(Element("{jabber:client}message"))
    assert stream.data_to_send() == b""
    stream.close()
    assert stream.data_to_send() == b"</stream:stream>"
    stream.send_stanza(Element("{jabber:client}message"))
    assert stream.data_to_send() == b""


# --- ending (RFC 6120 §4.4, §4.9) --------------------------------------------------------


def test_close_with_a_condition_sends_the_error_then_the_end_once() -> None:
    stream = new_stream()
    login(stream)
    stream.close(StreamCondition.SYSTEM_SHUTDOWN, "bye")
    assert stream.data_to_send() == (
        b'<stream:error><system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-streams">bye</text></stream:error>'
        b"</stream:stream>"
    )
    stream.close()
    assert stream.data_to_send() == b""
    assert stream.closed


def test_close_before_the_header_sends_a_header_with_the_error() -> None:
    stream = new_stream()
    stream.close(StreamCondition.CONNECTION_TIMEOUT)
    output = stream.data_to_send().decode()
    assert output.startswith("<?xml version='1.0'?><stream:stream")
    assert output.endswith("<connection-timeout xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
                           "</stream:error></stream:stream>")  # fmt: skip


def test_the_peers_stream_error_ends_the_stream() -> None:
    stream = new_stream()
    client = login(stream)
    error = b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    assert client.send(error) == "</stream:stream>"
    assert client.events() == [StreamEnded(None)]


def test_input_after_the_end_is_ignored() -> None:
    stream = new_stream()
    client = login(stream)
    client.send(FOOTER)
    client.events()
    assert client.send(MESSAGE) == ""
    assert client.events() == []


# --- hostile input through the stream ----------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b"]><stream:stream>&lol3;"
)


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (BILLION_LAUGHS, StreamCondition.RESTRICTED_XML),
        (b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + CLIENT_HEADER[21:],
         StreamCondition.RESTRICTED_XML),
        (CLIENT_HEADER + b"<message>&x;</message>", StreamCondition.RESTRICTED_XML),
        (CLIENT_HEADER + b"<?pi data?>", StreamCondition.RESTRICTED_XML),
        (CLIENT_HEADER + b"<!-- comment -->", StreamCondition.RESTRICTED_XML),
        (CLIENT_HEADER + b"<a>" * 40, StreamCondition.POLICY_VIOLATION),
        (CLIENT_HEADER + b"<message>" + b"x" * 300_000, StreamCondition.POLICY_VIOLATION),
        (CLIENT_HEADER + b"<message>\xc0\xaf</message>", StreamCondition.NOT_WELL_FORMED),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?>" + CLIENT_HEADER[21:],
         StreamCondition.UNSUPPORTED_ENCODING),
    ],
    ids=["billion-laughs", "xxe", "entity", "pi", "comment", "deep", "oversize", "utf8", "latin1"],
)  # fmt: skip
def test_hostile_input_gets_its_stream_error_and_the_end(data: bytes, condition: str) -> None:
    stream = new_stream()
    found, output = ended_with(stream, data)
    assert found == condition
    assert f"<{condition} " in output
    assert output.startswith("<?xml version='1.0'?><stream:stream")
    assert output.endswith("</stream:stream>")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([State.HEADER, State.SASL, State.BIND, State.ESTABLISHED]),
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([CLIENT_HEADER, STARTTLS, PLAIN, BIND, SESSION, MESSAGE, FOOTER]),
        ),
        max_size=8,
    ),
)
def test_receive_data_never_raises_whatever_comes(state: State, pieces: list[bytes]) -> None:
    stream = new_stream()
    login(stream, through=state)
    for piece in pieces:
        stream.receive_data(piece)
        while (event := stream.next_event()) is not None:
            if isinstance(event, StreamEnded):
                assert stream.closed
    stream.data_to_send()


# --- RFC 7395: the WebSocket variant -----------------------------------------------------

WS_PLAIN = f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>" + b64(b"\0roland\0pw") + "</auth>"
WS_OPEN = '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="falcot.com" version="1.0"/>'


def ws_send(stream: C2SStream, text: str) -> list[str]:
    stream.receive_data(text.encode())
    return stream.messages_to_send()


def test_rfc7395_3_4_login_over_a_secure_websocket() -> None:
    stream = new_stream(websocket=True, tls_active=True, tls_available=False)
    client = Peer(stream)
    # §3.4: <open/> answered with <open/>, then the features as their own message.
    assert ws_send(stream, WS_OPEN) == [
        '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="s1" from="falcot.com"'
        ' version="1.0" xml:lang="en"/>',
        '<stream:features xmlns:stream="http://etherx.jabber.org/streams">'
        '<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">'
        "<mechanism>SCRAM-SHA-512</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
        "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
        "</stream:features>",
    ]
    assert ws_send(stream, WS_PLAIN) == []
    assert client.events() == [PlainCheckNeeded("", "roland", "pw")]
    stream.plain_verified(True)
    assert stream.messages_to_send() == ['<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>']
    assert client.events() == [Authenticated(ROLAND)]
    # §3.5: the restart is a new <open/>.
    opened, features = ws_send(stream, WS_OPEN)
    assert 'id="s1-1"' in opened
    assert '<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>' in features
    ws_send(stream, "<iq xmlns='jabber:client' type='set' id='b'>"
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")  # fmt: skip
    assert client.events() == [BindRequested(None)]
    stream.bind_done(ROLAND.with_resource("web"))
    assert stream.messages_to_send() == [
        '<iq xmlns="jabber:client" type="result" id="b">'
        '<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>roland@falcot.com/web</jid></bind>'
        "</iq>"
    ]
    ws_send(stream, "<message xmlns='jabber:client' to='bob@falcot.com'><body>x</body></message>")
    (event,) = client.events()
    assert isinstance(event, StanzaReceived)
    assert event.stanza.get("from") == "roland@falcot.com/web"
    stream.send_stanza(Element("{jabber:client}presence"))
    assert stream.messages_to_send() == ['<presence xmlns="jabber:client"/>']
    # §3.6: <close/> answered with <close/>.
    assert ws_send(stream, '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>') == [
        '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'
    ]
    assert client.events() == [StreamEnded(None)]


@pytest.mark.parametrize(
    ("frame", "condition"),
    [
        ("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", "invalid-namespace"),
        ("<open xmlns='jabber:client' to='falcot.com' version='1.0'/>", "invalid-namespace"),
        ("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x.org' version='1.0'/>",
         "host-unknown"),
        ("<a/><b/>", StreamCondition.NOT_WELL_FORMED),
    ],
)  # fmt: skip
def test_rfc7395_bad_first_frames(frame: str, condition: str) -> None:
    stream = new_stream(websocket=True, tls_active=True, tls_available=False)
    stream.receive_data(frame.encode())
    messages = stream.messages_to_send()
    assert messages[0].startswith("<open ")
    assert f"<{condition} " in messages[1]
    assert messages[1].startswith('<stream:error xmlns:stream="http://etherx.jabber.org/streams">')
    assert messages[-1] == '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'


def test_rfc7395_an_open_mid_stream_is_a_policy_violation() -> None:
    stream = new_stream(websocket=True, tls_active=True, tls_available=False)
    ws_send(stream, WS_OPEN)
    ws_send(stream, WS_PLAIN)
    stream.plain_verified(True)
    ws_send(stream, WS_OPEN)
    stream.receive_data(WS_OPEN.encode())
    assert stream.closed
    assert any("<policy-violation " in m for m in stream.messages_to_send())


def test_rfc7395_invalid_utf8_message_is_not_well_formed() -> None:
    stream = new_stream(websocket=True, tls_active=True, tls_available=False)
    stream.receive_data(b"\xff")
    assert any("<not-well-formed " in m for m in stream.messages_to_send())


def test_plain_websocket_with_tls_required_is_refused() -> None:
    stream = new_stream(websocket=True, tls_active=False, tls_available=False)
    stream.receive_data(WS_OPEN.encode())
    assert any("<policy-violation " in m for m in stream.messages_to_send())


def test_ws_messages_are_whole_elements() -> None:
    stream = new_stream(websocket=True, tls_active=True, tls_available=False)
    ws_send(stream, WS_OPEN)
    stream.close(StreamCondition.SYSTEM_SHUTDOWN)
    messages = stream.messages_to_send()
    assert messages == [
        '<stream:error xmlns:stream="http://etherx.jabber.org/streams">'
        '<system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>',
        '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>',
    ]
    assert NS.FRAMING in messages[-1]
