"""The s2s negotiation as tables: states, inputs, every edge per role, and what the rest does.

RFC 6120 §9.2 walks through a server-to-server negotiation (header, STARTTLS,
restart, SASL EXTERNAL, restart); XEP-0220 §2 adds dialback, which needs no
restart and may authenticate more domains on a stream that is already up.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StreamCondition, StreamError, loggable
from heron.xmpp.s2s.events import Role
from heron.xmpp.stanza import NS, qname

__all__ = ["CALLER_INPUTS", "REJECTIONS", "TRANSITIONS", "Input", "State", "classify"]


class State(Enum):
    """Where a stream is; some states belong to one role only."""

    IDLE = "outgoing: start() not called yet"
    HEADER = "waiting for the peer's stream header"  # §4.2, and after each restart (§4.3.3)
    TLS_REQUIRED = "incoming: only <starttls/> was offered"  # §5.3.1 mandatory-to-negotiate
    TLS_OFFERED = "incoming: <starttls/> offered, dialback allowed without"  # §5.3.1 voluntary
    FEATURES = "outgoing: waiting for the peer's features"  # §4.3.2
    PROCEED = "outgoing: <starttls/> sent, waiting for <proceed/>"  # §5.4.2.3
    TLS_HANDSHAKE = "the server around runs the TLS handshake"  # §5.4.3.3
    AUTH = "incoming: waiting for <auth/> or <db:result/>"  # §6.4.1, XEP-0220 §2.2.1
    SASL = "outgoing: EXTERNAL sent, waiting for <success/>"  # §6.4.6, XEP-0178 §3
    DIALBACK = "outgoing: <db:result/> sent, waiting for its answer"  # XEP-0220 §2.1.1
    ESTABLISHED = "a domain pair is authenticated: stanzas may flow"  # §4.3.5
    CLOSED = "closed"  # §4.4


class Input(Enum):
    """What moves a stream: a first-level element from the peer or a call of the server."""

    START = "start()"
    HEADER = "stream header"
    FEATURES = "<stream:features/>"
    STARTTLS = "<starttls/>"
    PROCEED = "<proceed/>"
    TLS_FAILURE = "<failure/> of STARTTLS"
    TLS_DONE = "start_tls_done()"
    AUTH = "<auth/>"
    SASL_SUCCESS = "<success/>"
    SASL_FAILURE = "<failure/> of SASL"
    DB_REQUEST = "<db:result/> with a key"
    DB_ANSWER = "<db:result type=.../>"
    VERIFY_REQUEST = "<db:verify/> with a key"
    VERIFY_ANSWER = "<db:verify type=.../>"
    VERDICT = "dialback_verified() or dialback_failed()"
    BIDI = "<bidi/>"
    STANZA = "stanza"
    FOOTER = "</stream:stream> or <stream:error/>"


_S, _I = State, Input
_IN, _OUT = Role.INCOMING, Role.OUTGOING
_ALIVE = [state for state in State if state is not _S.CLOSED]
TRANSITIONS: Final[Mapping[tuple[Role, State, Input], frozenset[State]]] = MappingProxyType(
    {
        # --- incoming: we are the receiving server ---
        # §4.3.2: features after each header: STARTTLS first, then authentication, then none.
        (_IN, _S.HEADER, _I.HEADER): frozenset(
            {_S.TLS_REQUIRED, _S.TLS_OFFERED, _S.AUTH, _S.ESTABLISHED}
        ),
        (_IN, _S.TLS_REQUIRED, _I.STARTTLS): frozenset({_S.TLS_HANDSHAKE}),
        # A verification request needs no authentication (XEP-0220 §2.2.2).
        (_IN, _S.TLS_REQUIRED, _I.VERIFY_REQUEST): frozenset({_S.TLS_REQUIRED}),
        (_IN, _S.TLS_OFFERED, _I.STARTTLS): frozenset({_S.TLS_HANDSHAKE}),
        (_IN, _S.TLS_OFFERED, _I.AUTH): frozenset({_S.TLS_OFFERED}),  # EXTERNAL needs TLS
        (_IN, _S.TLS_OFFERED, _I.DB_REQUEST): frozenset({_S.TLS_OFFERED}),
        (_IN, _S.TLS_OFFERED, _I.VERDICT): frozenset({_S.TLS_OFFERED, _S.ESTABLISHED}),
        (_IN, _S.TLS_OFFERED, _I.VERIFY_REQUEST): frozenset({_S.TLS_OFFERED}),
        (_IN, _S.TLS_HANDSHAKE, _I.TLS_DONE): frozenset({_S.HEADER}),
        # §6.4.6: success restarts the stream; a failure lets the peer fall back to dialback.
        (_IN, _S.AUTH, _I.AUTH): frozenset({_S.HEADER, _S.AUTH}),
        (_IN, _S.AUTH, _I.DB_REQUEST): frozenset({_S.AUTH}),
        (_IN, _S.AUTH, _I.VERDICT): frozenset({_S.AUTH, _S.ESTABLISHED}),
        (_IN, _S.AUTH, _I.VERIFY_REQUEST): frozenset({_S.AUTH}),
        # XEP-0288 §2.2: <bidi/> after TLS, before authentication (a repeat is dropped).
        (_IN, _S.AUTH, _I.BIDI): frozenset({_S.AUTH}),
        (_IN, _S.ESTABLISHED, _I.BIDI): frozenset({_S.ESTABLISHED}),
        (_IN, _S.ESTABLISHED, _I.STANZA): frozenset({_S.ESTABLISHED}),
        # XEP-0220 §2.6: more domains on the same stream (multiplexing).
        (_IN, _S.ESTABLISHED, _I.DB_REQUEST): frozenset({_S.ESTABLISHED}),
        (_IN, _S.ESTABLISHED, _I.VERDICT): frozenset({_S.ESTABLISHED}),
        (_IN, _S.ESTABLISHED, _I.VERIFY_REQUEST): frozenset({_S.ESTABLISHED}),
        # --- outgoing: we are the initiating server ---
        (_OUT, _S.IDLE, _I.START): frozenset({_S.HEADER}),
        (_OUT, _S.HEADER, _I.HEADER): frozenset({_S.FEATURES}),
        (_OUT, _S.FEATURES, _I.FEATURES): frozenset(
            {_S.PROCEED, _S.SASL, _S.DIALBACK, _S.ESTABLISHED}
        ),
        (_OUT, _S.PROCEED, _I.PROCEED): frozenset({_S.TLS_HANDSHAKE}),
        (_OUT, _S.PROCEED, _I.TLS_FAILURE): frozenset({_S.CLOSED}),  # §5.4.2.2
        # Direct TLS before start(), or STARTTLS: then our new header goes out at once.
        (_OUT, _S.TLS_HANDSHAKE, _I.TLS_DONE): frozenset({_S.IDLE, _S.HEADER}),
        (_OUT, _S.SASL, _I.SASL_SUCCESS): frozenset({_S.HEADER}),
        (_OUT, _S.SASL, _I.SASL_FAILURE): frozenset({_S.DIALBACK, _S.CLOSED}),
        (_OUT, _S.DIALBACK, _I.DB_ANSWER): frozenset({_S.ESTABLISHED, _S.CLOSED}),
        (_OUT, _S.DIALBACK, _I.VERIFY_ANSWER): frozenset({_S.DIALBACK}),
        (_OUT, _S.DIALBACK, _I.VERIFY_REQUEST): frozenset({_S.DIALBACK}),
        (_OUT, _S.ESTABLISHED, _I.DB_ANSWER): frozenset({_S.ESTABLISHED}),
        (_OUT, _S.ESTABLISHED, _I.VERIFY_ANSWER): frozenset({_S.ESTABLISHED}),
        (_OUT, _S.ESTABLISHED, _I.VERIFY_REQUEST): frozenset({_S.ESTABLISHED}),
        # XEP-0288: the receiving server's stanzas, refused unless we asked for them.
        (_OUT, _S.ESTABLISHED, _I.STANZA): frozenset({_S.ESTABLISHED}),
        # §4.4: either peer may close the stream at any time.
        **{(role, state, _I.FOOTER): frozenset({_S.CLOSED}) for role in Role for state in _ALIVE},
    }
)
"""Every edge: ``(role, state, input) -> the states the action may lead to``."""

CALLER_INPUTS: Final = frozenset({_I.START, _I.TLS_DONE, _I.VERDICT})
_UNSOLICITED = frozenset({_I.DB_ANSWER, _I.VERIFY_ANSWER})
REJECTIONS: Final[Mapping[Input, StreamCondition | None]] = MappingProxyType(
    {
        # RFC 6120 §4.9.3.12: stanzas before a domain is authenticated are not processed;
        # on our outgoing stream the peer may send none without XEP-0288.
        _I.STANZA: StreamCondition.NOT_AUTHORIZED,
        # Negotiation out of order, e.g. <auth/> or <db:result/> while TLS is required (§5.3.1).
        **{
            input_: StreamCondition.POLICY_VIOLATION
            for input_ in Input
            if input_ not in CALLER_INPUTS | _UNSOLICITED | {_I.STANZA}
        },
        # XEP-0220 "Unsolicited Dialback": an answer nobody asked for here must not count.
        **dict.fromkeys(_UNSOLICITED, None),
        # The server's answers are dropped when nothing waits for them (races with the peer).
        **dict.fromkeys(CALLER_INPUTS, None),
    }
)
"""What an input without an edge does: the stream error it causes, or None to drop it."""

_STANZAS = frozenset({"message", "presence", "iq"})
_ELEMENTS = {
    qname(NS.STREAM, "features"): Input.FEATURES,
    qname(NS.STREAM, "error"): Input.FOOTER,  # the peer's own stream error ends it (§4.9.1.1)
    qname(NS.TLS, "starttls"): Input.STARTTLS,
    qname(NS.TLS, "proceed"): Input.PROCEED,
    qname(NS.TLS, "failure"): Input.TLS_FAILURE,
    qname(NS.SASL, "auth"): Input.AUTH,
    qname(NS.SASL, "success"): Input.SASL_SUCCESS,
    qname(NS.SASL, "failure"): Input.SASL_FAILURE,
    qname(NS.BIDI, "bidi"): Input.BIDI,
}
# A typed dialback element is an answer; an untyped one a request (XEP-0220 §2.2).
_DIALBACK = {
    (qname(NS.DIALBACK, "result"), False): Input.DB_REQUEST,
    (qname(NS.DIALBACK, "result"), True): Input.DB_ANSWER,
    (qname(NS.DIALBACK, "verify"), False): Input.VERIFY_REQUEST,
    (qname(NS.DIALBACK, "verify"), True): Input.VERIFY_ANSWER,
}


def classify(element: Element) -> Input:
    """Which input a first-level element is; raises for what a server may never send."""
    tag = element.tag
    if tag in _ELEMENTS:
        return _ELEMENTS[tag]
    typed = (tag, bool(element.get("type")))
    if typed in _DIALBACK:
        return _DIALBACK[typed]
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if local in _STANZAS and namespace != NS.SERVER:
        raise StreamError(
            StreamCondition.INVALID_NAMESPACE, f"stanzas are in {NS.SERVER} (RFC 6120 §4.8.3)"
        )
    if local not in _STANZAS:
        raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"<{loggable(local, 40)}/>")
    return Input.STANZA
