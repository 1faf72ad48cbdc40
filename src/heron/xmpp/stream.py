"""The client-to-server stream, sans-IO (RFC 6120 §4 to §7, RFC 7395 for WebSocket).

One :class:`C2SStream` per connection negotiates in the order RFC 6120 §9.1
shows: stream header, features, STARTTLS (required unless TLS is already up:
direct TLS on 5223, or a ``wss:`` WebSocket), stream restart, SASL, restart,
resource binding; then stanzas flow. It is driven like every heron core::

    stream.receive_data(bytes)        # what the socket read (one message on a WebSocket)
    stream.next_event()               # what the server must do or know, until None
    stream.data_to_send()             # bytes for the socket (messages_to_send() on WebSocket)

and the server answers the events that need the store or the router through
``start_tls_done``, ``provide_scram_keys``, ``plain_verified``,
``refuse_authentication`` (a guess that must wait, refused unchecked), ``bind_done``
and ``bind_refused``. Answers arriving when nothing waits for them (the
client aborted, the stream closed) are dropped.

XEP-0198 (:mod:`heron.xmpp.sm`) is offered with bind when ``sm`` is given: the stream
counts and acks stanzas both ways and keeps what the client has not acknowledged. When
the connection drops, ``connection_lost`` lets a session that enabled resumption
hibernate; a new stream that asks to resume it (:class:`ResumeRequested`) takes its
place with ``resumed`` (or answers ``resume_failed``), and ``take_unacked`` hands over
what is left when the session ends for good.

The states are :class:`State`; :data:`TRANSITIONS` lists every edge. An input
with no edge from the current state ends the stream with the error that
:data:`REJECTIONS` names for it. Any :class:`StreamError` sends
``<stream:error/>`` and the closing tag, emits :class:`StreamEnded` and makes
the stream ignore whatever else comes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from heron.accounts.scram import ScramHash, ScramKeys
from heron.xmpp.errors import (
    StanzaCondition,
    StanzaError,
    StreamCondition,
    StreamError,
    loggable,
)
from heron.xmpp.features.csi import DEFAULT_QUEUE, ClientState, QueueLimits
from heron.xmpp.jid import JID, parse_jid, parse_stanza_jid
from heron.xmpp.sasl import (
    Challenge,
    KeysNeeded,
    PasswordCheckNeeded,
    SaslCondition,
    SaslConfig,
    SaslFailure,
    SaslServer,
    SaslStep,
    Success,
    encode_payload,
)
from heron.xmpp.sm import Acks, SmLimits, parse_h
from heron.xmpp.stanza import NS, error_reply, iq_result, qname
from heron.xmpp.xml import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA_BYTES,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    check_version,
    serialize,
    stream_error_element,
    stream_footer,
    stream_header,
    websocket_close,
    websocket_open,
)

__all__ = [
    "REJECTIONS",
    "TRANSITIONS",
    "Authenticated",
    "AuthenticationFailed",
    "BindRequested",
    "C2SStream",
    "Input",
    "PlainCheckNeeded",
    "ResumeRequested",
    "ScramKeysNeeded",
    "SmEnabled",
    "StanzaReceived",
    "StartTlsRequested",
    "State",
    "StreamEnded",
    "StreamEvent",
]

log = logging.getLogger(__name__)

SASL_CB = "urn:xmpp:sasl-cb:0"  # XEP-0440: which channel bindings the server supports


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """<proceed/> is queued: send it, run the TLS handshake, then call ``start_tls_done``."""


@dataclass(frozen=True, slots=True)
class ScramKeysNeeded:
    """Look up the account ``username`` (a prepared localpart of ``stream.host``)."""

    username: str
    hash: ScramHash


@dataclass(frozen=True, slots=True)
class PlainCheckNeeded:
    """Verify ``password`` of ``username`` (prepared localpart), then call ``plain_verified``."""

    authzid: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """SASL succeeded for the account ``jid`` (bare)."""

    jid: JID


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """A SASL attempt failed; ``username`` is the prepared localpart tried, when one was.

    ``counted`` is False when the server refused it unchecked
    (:meth:`C2SStream.refuse_authentication`): it guessed nothing.
    """

    username: str | None
    counted: bool = True


@dataclass(frozen=True, slots=True)
class BindRequested:
    """The client asks for ``resource`` (None: the server picks); answer with ``bind_done``."""

    resource: str | None


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    """A stanza of the established stream, ``from`` stamped with the bound full JID and
    ``to`` parsed (None when absent): the router and the components take it as it is."""

    stanza: Element
    to: JID | None


@dataclass(frozen=True, slots=True)
class SmEnabled:
    """XEP-0198 §3: stream management is on; ``resume_id`` names the session for a later
    ``<resume/>`` (None: the client did not ask for resumption)."""

    resume_id: str | None


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    """XEP-0198 §5: the client wants the session ``previd`` back, having handled ``h`` of
    its stanzas; answer with ``resumed`` or ``resume_failed``."""

    previd: str
    h: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer closed the stream, or ``error`` ended it; the goodbye is in the output."""

    error: StreamError | None


StreamEvent = (
    StartTlsRequested
    | ScramKeysNeeded
    | PlainCheckNeeded
    | Authenticated
    | AuthenticationFailed
    | BindRequested
    | SmEnabled
    | ResumeRequested
    | StanzaReceived
    | StreamEnded
)


# --- the state machine -------------------------------------------------------------------


class State(Enum):
    """Where the negotiation is (RFC 6120 §9.1 walks through them in order)."""

    HEADER = "waiting for the stream header"  # §4.2
    STARTTLS = "waiting for <starttls/>"  # §5.4.2
    TLS_HANDSHAKE = "the server runs the TLS handshake"  # §5.4.3.3, after <proceed/>
    TLS_HEADER = "waiting for the stream header over TLS"  # §5.4.3.3 restart
    SASL = "waiting for <auth/>"  # §6.4.1
    SASL_EXCHANGE = "SASL exchange under way"  # §6.4.2 to §6.4.5
    SASL_HEADER = "waiting for the stream header after SASL"  # §6.4.6 restart
    BIND = "waiting for the bind request"  # §7.2
    BINDING = "the server binds the resource"  # §7.6
    RESUMING = "the server looks for the session to resume"  # XEP-0198 §5
    ESTABLISHED = "established"  # §7.6.1: stanzas may flow
    HIBERNATED = "the connection dropped; the session waits to be resumed"  # XEP-0198 §5
    CLOSED = "closed"  # §4.4


class Input(Enum):
    """What moves the stream: a first-level element from the client or an answer of the server."""

    HEADER = "stream header"
    STARTTLS = "<starttls/>"
    TLS_DONE = "start_tls_done()"
    AUTH = "<auth/>"
    RESPONSE = "<response/>"
    ABORT = "<abort/>"
    KEYS = "provide_scram_keys()"
    VERDICT = "plain_verified()"
    REFUSED = "refuse_authentication()"
    BIND_IQ = "bind iq"
    BIND_DONE = "bind_done()"
    BIND_REFUSED = "bind_refused()"
    SESSION_IQ = "session iq"
    CSI = "<active/> or <inactive/>"  # XEP-0352 §4.2
    SM_ENABLE = "<enable/>"  # XEP-0198 §3
    SM_RESUME = "<resume/>"  # XEP-0198 §5
    SM_ACK = "<a/> or <r/>"  # XEP-0198 §4
    RESUME_DONE = "resumed()"
    RESUME_FAILED = "resume_failed()"
    LOST = "connection_lost()"
    STANZA = "stanza"
    FOOTER = "</stream:stream>"


_S, _I = State, Input
TRANSITIONS: Final[Mapping[tuple[State, Input], frozenset[State]]] = MappingProxyType(
    {
        # §4.2, §5.3.1: features offer STARTTLS, or SASL when TLS can be done without.
        (_S.HEADER, _I.HEADER): frozenset({_S.STARTTLS, _S.SASL}),
        (_S.STARTTLS, _I.STARTTLS): frozenset({_S.TLS_HANDSHAKE}),  # §5.4.2.3 <proceed/>
        # Only when TLS is offered but not required (a guard in the action):
        (_S.STARTTLS, _I.AUTH): frozenset({_S.SASL_EXCHANGE, _S.SASL, _S.CLOSED}),
        (_S.TLS_HANDSHAKE, _I.TLS_DONE): frozenset({_S.TLS_HEADER}),
        (_S.TLS_HEADER, _I.HEADER): frozenset({_S.SASL}),
        # §6.4.2 to §6.4.5: a failure returns to SASL, or ends the stream after too many.
        (_S.SASL, _I.AUTH): frozenset({_S.SASL_EXCHANGE, _S.SASL, _S.CLOSED}),
        (_S.SASL, _I.ABORT): frozenset({_S.SASL, _S.CLOSED}),
        (_S.SASL_EXCHANGE, _I.AUTH): frozenset({_S.SASL, _S.CLOSED}),
        (_S.SASL_EXCHANGE, _I.RESPONSE): frozenset(
            {_S.SASL_EXCHANGE, _S.SASL_HEADER, _S.SASL, _S.CLOSED}
        ),
        (_S.SASL_EXCHANGE, _I.ABORT): frozenset({_S.SASL, _S.CLOSED}),
        (_S.SASL_EXCHANGE, _I.KEYS): frozenset({_S.SASL_EXCHANGE}),
        (_S.SASL_EXCHANGE, _I.VERDICT): frozenset({_S.SASL_HEADER, _S.SASL, _S.CLOSED}),
        (_S.SASL_EXCHANGE, _I.REFUSED): frozenset({_S.SASL, _S.CLOSED}),
        (_S.SASL_HEADER, _I.HEADER): frozenset({_S.BIND}),
        # §7.6: a bad request is answered with an iq error and the client may try again.
        (_S.BIND, _I.BIND_IQ): frozenset({_S.BINDING, _S.BIND}),
        (_S.BINDING, _I.BIND_DONE): frozenset({_S.ESTABLISHED}),
        (_S.BINDING, _I.BIND_REFUSED): frozenset({_S.BIND}),
        # XEP-0198 §3: enabling before binding fails; §5: resuming takes the place of bind.
        (_S.BIND, _I.SM_ENABLE): frozenset({_S.BIND}),
        (_S.BIND, _I.SM_RESUME): frozenset({_S.RESUMING, _S.BIND}),
        (_S.RESUMING, _I.RESUME_DONE): frozenset({_S.ESTABLISHED, _S.CLOSED}),
        (_S.RESUMING, _I.RESUME_FAILED): frozenset({_S.BIND}),
        (_S.ESTABLISHED, _I.SM_ENABLE): frozenset({_S.ESTABLISHED}),
        (_S.ESTABLISHED, _I.SM_RESUME): frozenset({_S.ESTABLISHED}),  # failed: too late
        (_S.ESTABLISHED, _I.SM_ACK): frozenset({_S.ESTABLISHED, _S.CLOSED}),
        # Only a session that enabled resumption hibernates; the server ends the others.
        (_S.ESTABLISHED, _I.LOST): frozenset({_S.HIBERNATED, _S.ESTABLISHED}),
        (_S.ESTABLISHED, _I.STANZA): frozenset({_S.ESTABLISHED}),
        (_S.ESTABLISHED, _I.SESSION_IQ): frozenset({_S.ESTABLISHED}),  # RFC 3921 §3
        (_S.ESTABLISHED, _I.CSI): frozenset({_S.ESTABLISHED}),  # XEP-0352 §4.2
        (_S.ESTABLISHED, _I.BIND_IQ): frozenset({_S.ESTABLISHED}),  # a second bind: not-allowed
        # §4.4: the peer may close the stream at any time.
        **{
            (state, _I.FOOTER): frozenset({_S.CLOSED})
            for state in State
            if state not in (_S.CLOSED, _S.HIBERNATED)
        },
    }
)
"""Every edge: ``(state, input) -> the states the action may lead to``."""

_CALLER_INPUTS = frozenset(
    {
        _I.TLS_DONE,
        _I.KEYS,
        _I.VERDICT,
        _I.REFUSED,
        _I.BIND_DONE,
        _I.BIND_REFUSED,
        _I.RESUME_DONE,
        _I.RESUME_FAILED,
        _I.LOST,
    }
)
_NOT_AUTHORIZED = StreamError(StreamCondition.NOT_AUTHORIZED, "bind a resource first")
REJECTIONS: Final[Mapping[Input, StreamCondition | None]] = MappingProxyType(
    {
        # RFC 6120 §7.1: a stanza before binding is not processed, the stream is closed.
        _I.STANZA: StreamCondition.NOT_AUTHORIZED,
        _I.SESSION_IQ: StreamCondition.NOT_AUTHORIZED,
        _I.BIND_IQ: StreamCondition.NOT_AUTHORIZED,
        _I.CSI: StreamCondition.NOT_AUTHORIZED,  # a state of the session, which comes with bind
        # XEP-0198 needs an authenticated stream (§3, §5).
        _I.SM_ENABLE: StreamCondition.NOT_AUTHORIZED,
        _I.SM_RESUME: StreamCondition.NOT_AUTHORIZED,
        _I.SM_ACK: StreamCondition.NOT_AUTHORIZED,
        # Negotiation out of order: e.g. <auth/> while TLS is required (§5.3.1).
        _I.HEADER: StreamCondition.POLICY_VIOLATION,
        _I.STARTTLS: StreamCondition.POLICY_VIOLATION,
        _I.AUTH: StreamCondition.POLICY_VIOLATION,
        _I.RESPONSE: StreamCondition.POLICY_VIOLATION,
        _I.ABORT: StreamCondition.POLICY_VIOLATION,
        # The server's answers are dropped when nothing waits for them (races with the peer).
        **dict.fromkeys(_CALLER_INPUTS, None),
    }
)
"""What an input without an edge does: the stream error it causes, or None to drop it."""

_STANZAS = frozenset({"message", "presence", "iq"})
_HEADER_STATES = frozenset({State.HEADER, State.TLS_HEADER, State.SASL_HEADER})
_STOPPED = frozenset({State.CLOSED, State.TLS_HANDSHAKE, State.HIBERNATED})
_NEGOTIATION = {
    qname(NS.TLS, "starttls"): Input.STARTTLS,
    qname(NS.SASL, "auth"): Input.AUTH,
    qname(NS.SASL, "response"): Input.RESPONSE,
    qname(NS.SASL, "abort"): Input.ABORT,
    qname(NS.STREAM, "error"): Input.FOOTER,  # the peer's own stream error ends it (§4.9.1.1)
    qname(NS.CSI, "active"): Input.CSI,
    qname(NS.CSI, "inactive"): Input.CSI,
    qname(NS.SM, "enable"): Input.SM_ENABLE,
    qname(NS.SM, "resume"): Input.SM_RESUME,
    qname(NS.SM, "a"): Input.SM_ACK,
    qname(NS.SM, "r"): Input.SM_ACK,
}
_SM_A = qname(NS.SM, "a")
_SM_INPUTS = frozenset({Input.SM_ENABLE, Input.SM_RESUME, Input.SM_ACK})
_SM_PREFIX = f"{{{NS.SM}}}"  # XEP-0198 elements are unknown where it is not offered


def _element(namespace: str, tag: str) -> Element:
    return Element(qname(namespace, tag))


def _element_with(namespace: str, tag: str, attributes: dict[str, str]) -> Element:
    return Element(qname(namespace, tag), attributes)


class C2SStream:
    """One client connection's XMPP stream: negotiation, then stanzas both ways."""

    def __init__(
        self,
        *,
        hosts: Collection[str],
        stream_id: str,
        tls_active: bool,
        tls_available: bool,
        mechanisms: SaslConfig,
        websocket: bool = False,
        require_tls: bool = True,
        channel_binding: Mapping[str, bytes] | None = None,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        csi_queue: int = DEFAULT_QUEUE,
        sm: SmLimits | None = None,
        resume_ids: Callable[[], str] | None = None,
        resume_max: int = 0,
    ) -> None:
        """``hosts`` are the domains served; ``channel_binding`` is for direct TLS (5223);
        ``csi_queue`` bounds the stanzas held back while the client is inactive (XEP-0352).
        XEP-0198 is offered with ``sm``; resumption too with ``resume_ids``, which makes
        unguessable ids, and ``resume_max``, the seconds a session waits to be resumed."""
        self._hosts = tuple(JID.make("", host).domain for host in hosts)
        self._stream_id = stream_id
        self._restarts = 0
        self._tls_active = tls_active
        self._tls_available = tls_available and not tls_active
        self._require_tls = require_tls
        self._websocket = websocket
        self._sasl_config = mechanisms
        self._channel_binding = dict(channel_binding or {})
        self._parser = XmlStreamParser(max_stanza_bytes=max_stanza_bytes, max_depth=max_depth)
        self._sasl = self._new_sasl()
        self._state = State.TLS_HEADER if tls_active else State.HEADER
        self._events: deque[StreamEvent] = deque()
        self._output: list[bytes] = []
        self._header_sent = False
        self._host = ""
        self._authenticated: JID | None = None
        self._jid: JID | None = None
        self._jid_text = ""
        self._bind_iq: Element | None = None
        self._sasl_username: str | None = None
        self._csi: ClientState[bytes] = ClientState(QueueLimits(stanzas=csi_queue))
        self._sm_limits = sm
        self._resume_ids = resume_ids
        self._resume_max = resume_max
        self._acks: Acks[Element] | None = None
        self._resume_id: str | None = None
        self._resume_request: ResumeRequested | None = None

    # --- properties ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is State.CLOSED

    @property
    def host(self) -> str:
        """The served domain the client addressed (its stream header's ``to``), once known."""
        return self._host

    @property
    def authenticated_jid(self) -> JID | None:
        """The account's bare JID once SASL succeeded."""
        return self._authenticated

    @property
    def jid(self) -> JID | None:
        """The bound full JID once established."""
        return self._jid

    @property
    def resume_id(self) -> str | None:
        """The XEP-0198 resumption id, once the client enabled resumption."""
        return self._resume_id

    @property
    def hibernated(self) -> bool:
        return self._state is State.HIBERNATED

    @property
    def handled(self) -> int | None:
        """XEP-0198's count of stanzas handled from the client, once it enabled acks."""
        return None if self._acks is None else self._acks.inbound

    # --- the I/O surface -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the socket; with ``websocket=True``, one whole message's text as UTF-8."""
        if self._state in _STOPPED:
            # After <proceed/> nothing in plaintext counts (RFC 6120 §5.4.3.3).
            return
        try:
            events = self._parse(data)
            parser = self._parser
            for event in events:
                self._handle(event)
                # A restart, STARTTLS or the end makes the rest of this input meaningless.
                if self._parser is not parser or self._state in _STOPPED:
                    return
            if parser.error is not None:
                raise parser.error  # what followed the events in this input was bad
        except StreamError as error:
            self._fail(error)

    def next_event(self) -> StreamEvent | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Everything queued for a TCP stream, as one string of bytes."""
        output, self._output = self._output, []
        return b"".join(output)

    def messages_to_send(self) -> list[str]:
        """Everything queued for a WebSocket, one str per message (RFC 7395 §3.3.3)."""
        output, self._output = self._output, []
        return [piece.decode() for piece in output]

    # --- the server's answers ------------------------------------------------------------

    def start_tls_done(self, channel_binding: Mapping[str, bytes]) -> None:
        """TLS is up: the client restarts the stream (RFC 6120 §5.4.3.3)."""
        if not self._accepts(Input.TLS_DONE):
            return
        self._tls_active = True
        self._channel_binding = dict(channel_binding)
        self._sasl = self._new_sasl()
        self._restart()
        self._move(Input.TLS_DONE, State.TLS_HEADER)

    def provide_scram_keys(self, keys: ScramKeys | None) -> None:
        """The keys :class:`ScramKeysNeeded` asked for; None when there is no such account."""
        if not self._accepts(Input.KEYS) or not self._sasl.waiting_for_keys:
            return
        account = f"{self._sasl_username}@{self._host}" if self._sasl_username else None
        self._sasl_step(Input.KEYS, self._sasl.provide_scram_keys(keys, account))

    def plain_verified(self, ok: bool) -> None:
        """The verdict on :class:`PlainCheckNeeded`."""
        if not self._accepts(Input.VERDICT) or not self._sasl.waiting_for_verdict:
            return
        try:
            step: SaslStep = self._sasl.plain_verified(ok)
        except SaslFailure as failure:
            self._sasl_failed(Input.VERDICT, failure)
            return
        self._sasl_step(Input.VERDICT, step)

    def refuse_authentication(
        self, condition: SaslCondition = SaslCondition.TEMPORARY_AUTH_FAILURE, text: str = ""
    ) -> None:
        """Answer :class:`ScramKeysNeeded` or :class:`PlainCheckNeeded` with a failure without
        checking anything (RFC 6120 §6.5.11: the server cannot check now; try later)."""
        sasl = self._sasl
        if not self._accepts(Input.REFUSED) or not (
            sasl.waiting_for_keys or sasl.waiting_for_verdict
        ):
            return
        self._sasl_failed(Input.REFUSED, sasl.abort(condition, text), counted=False)

    def bind_done(self, jid: JID) -> None:
        """The resource is bound as ``jid`` (RFC 6120 §7.6.1)."""
        iq = self._bind_iq
        if not self._accepts(Input.BIND_DONE) or iq is None:
            return
        payload = _element(NS.BIND, "bind")
        SubElement(payload, qname(NS.BIND, "jid")).text = str(jid)
        self._send(iq_result(iq, payload))
        self._jid, self._jid_text, self._bind_iq = jid, str(jid), None
        self._move(Input.BIND_DONE, State.ESTABLISHED)

    def bind_refused(self, condition: StanzaCondition) -> None:
        """Binding failed (RFC 6120 §7.6.2): the client may try again."""
        iq = self._bind_iq
        if not self._accepts(Input.BIND_REFUSED) or iq is None:
            return
        self._send(error_reply(iq, StanzaError(condition)))
        self._bind_iq = None
        self._move(Input.BIND_REFUSED, State.BIND)

    def send_stanza(self, stanza: Element) -> None:
        """Deliver a stanza to the client, or hold it back while the client is inactive
        (:mod:`heron.xmpp.features.csi`); dropped unless the stream is established."""
        if self._state in (State.ESTABLISHED, State.HIBERNATED):
            data = self._serialize(stanza)
            if self._acks is not None:
                try:
                    self._acks.queue(stanza, len(data))
                except StreamError as error:
                    self._fail(error)
                    return
            if self._state is State.HIBERNATED:
                return  # kept for the resumption, and only there
            written = self._csi.send(stanza, data, len(data))
            self._output.extend(written)
            if self._acks is not None and self._acks.request_due(len(written)):
                self._send(_element(NS.SM, "r"))  # XEP-0198 §4
        else:
            log.debug("stream %s: stanza dropped in state %s", self._stream_id, self._state.name)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """End the stream, with a stream error when ``condition`` is given (RFC 6120 §4.4)."""
        if self._state is State.CLOSED:
            return
        self._goodbye(StreamError(condition, text) if condition is not None else None)

    # --- XEP-0198 resumption ---------------------------------------------------------------

    def connection_lost(self) -> bool:
        """The connection dropped without a closing tag: whether the session hibernates
        (it enabled resumption); stanzas sent meanwhile wait for :meth:`resumed`."""
        if self._resume_id is None or not self._accepts(Input.LOST):
            return False
        self._output.clear()
        self._move(Input.LOST, State.HIBERNATED)
        return True

    def resumed(self, previous: C2SStream) -> None:
        """XEP-0198 §5: the session of ``previous`` (hibernated or still connected; its
        account was checked) goes on over this stream: its counters, its JID and what it
        never got acknowledged, which is sent again after ``<resumed/>``, in order."""
        request = self._resume_request
        acks = previous._acks
        if not self._accepts(Input.RESUME_DONE) or request is None or acks is None:
            return
        previous._acks = None
        previous._state = State.CLOSED
        self._acks, self._resume_id = acks, previous._resume_id
        self._jid, self._jid_text = previous._jid, previous._jid_text
        try:
            acks.ack(request.h)
        except StreamError as error:
            self._fail(error)
            return
        self._move(Input.RESUME_DONE, State.ESTABLISHED)
        self._send(
            _element_with(NS.SM, "resumed", {"previd": request.previd, "h": str(acks.inbound)})
        )
        again = acks.unacked
        for stanza in again:
            self._send(stanza)
        if acks.request_due(len(again)):
            self._send(_element(NS.SM, "r"))

    def resume_failed(self, handled: int | None = None) -> None:
        """XEP-0198 §5: no such session for this account; the client may bind instead.
        ``handled``: the 'h' of the session if it ended recently, which the <failed/>
        carries (since XEP-0198 1.6) so the client resends only what never arrived."""
        if not self._accepts(Input.RESUME_FAILED):
            return
        self._sm_failed("item-not-found", handled)
        self._move(Input.RESUME_FAILED, State.BIND)

    def take_unacked(self) -> list[Element]:
        """What the client never acknowledged, taken out: the session ends for good."""
        return [] if self._acks is None else self._acks.drain()

    # --- internals -----------------------------------------------------------------------

    def _new_sasl(self) -> SaslServer:
        return SaslServer(
            self._sasl_config, tls_active=self._tls_active, channel_binding=self._channel_binding
        )

    def _parse(self, data: bytes) -> list[XmlEvent]:
        if not self._websocket:
            return self._parser.feed(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamError(StreamCondition.NOT_WELL_FORMED, "invalid UTF-8") from None
        return [self._parser.parse_frame(text)]

    def _accepts(self, input_: Input) -> bool:
        """Whether an answer of the server has an edge now; if not it is dropped."""
        if (self._state, input_) in TRANSITIONS:
            return True
        log.debug("stream %s: %s ignored in state %s", self._stream_id, input_, self._state)
        return False

    def _move(self, input_: Input, to: State) -> None:
        allowed = TRANSITIONS.get((self._state, input_), frozenset())
        if to not in allowed:
            raise RuntimeError(f"no edge {self._state} --{input_}--> {to}")
        self._state = to

    def _reject(self, input_: Input) -> None:
        condition = REJECTIONS[input_]
        if condition is not None:
            raise StreamError(condition, f"unexpected {input_.value} in state {self._state.name}")

    def _handle(self, event: XmlEvent) -> None:
        if isinstance(event, StreamClosed):
            self._goodbye(None, peer=True)
            return
        if isinstance(event, StreamOpened):
            input_, element = Input.HEADER, None
        elif self._state in _HEADER_STATES:
            # On TCP the first element is the header whatever it is; the same on a WebSocket.
            raise StreamError(StreamCondition.INVALID_NAMESPACE, "the stream must open first")
        else:
            input_, element = self._classify(event.element), event.element
        if (self._state, input_) not in TRANSITIONS:
            self._reject(input_)
            return
        if element is None:
            assert isinstance(event, StreamOpened)
            self._on_header(event)
        elif input_ is Input.STARTTLS:
            self._on_starttls()
        elif input_ is Input.AUTH:
            self._on_auth(element)
        elif input_ is Input.RESPONSE:
            self._on_response(element)
        elif input_ is Input.ABORT:
            self._sasl_failed(Input.ABORT, self._sasl.abort())
        elif input_ is Input.BIND_IQ:
            self._on_bind(element)
        elif input_ is Input.SESSION_IQ:
            self._on_session(element)
        elif input_ is Input.CSI:
            self._on_csi(element)
        elif input_ in _SM_INPUTS:
            self._on_sm(input_, element)
        elif input_ is Input.FOOTER:
            self._goodbye(None, peer=True)
        else:
            self._on_stanza(element)

    def _classify(self, element: Element) -> Input:
        """Which input a first-level element is; raises for what a client may never send."""
        tag = element.tag
        if tag in _NEGOTIATION and (self._sm_limits is not None or not tag.startswith(_SM_PREFIX)):
            return _NEGOTIATION[tag]
        namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if local in _STANZAS and namespace != NS.CLIENT:
            raise StreamError(
                StreamCondition.INVALID_NAMESPACE, f"stanzas are in {NS.CLIENT} (RFC 6120 §4.8.3)"
            )
        if namespace != NS.CLIENT or local not in _STANZAS:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, f"<{local}/>")
        if local == "iq" and len(element) == 1 and element.get("type") in ("set", "get"):
            if element[0].tag == qname(NS.BIND, "bind"):
                return Input.BIND_IQ
            if element[0].tag == qname(NS.SESSION, "session"):
                return Input.SESSION_IQ
        return Input.STANZA

    # --- negotiation steps ---------------------------------------------------------------

    def _on_header(self, event: StreamOpened) -> None:
        expected = qname(NS.FRAMING, "open") if self._websocket else qname(NS.STREAM, "stream")
        if event.tag != expected:
            raise StreamError(StreamCondition.INVALID_NAMESPACE, f"the stream must be {expected}")
        self._check_host(event.attributes.get("to", ""))
        check_version(event.attributes)
        self._send_header(event.attributes)
        if self._state is State.SASL_HEADER:
            self._features(self._bind_features())
            self._move(Input.HEADER, State.BIND)
        elif self._state is State.TLS_HEADER:
            self._features(self._sasl_features())
            self._move(Input.HEADER, State.SASL)
        elif self._tls_available:
            starttls = _element(NS.TLS, "starttls")
            if self._require_tls:
                SubElement(starttls, qname(NS.TLS, "required"))
                self._features([starttls])
            else:
                self._features([starttls, *self._sasl_features()])
            self._move(Input.HEADER, State.STARTTLS)
        elif self._require_tls:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "TLS is required")
        else:
            self._features(self._sasl_features())
            self._move(Input.HEADER, State.SASL)

    def _check_host(self, to: str) -> None:
        """RFC 6120 §4.7.2: ``to`` names a served domain, the same one after each restart."""
        try:
            host = JID.make("", to).domain if to else ""
        except StanzaError:
            host = ""
        if host not in self._hosts or (self._host and host != self._host):
            raise StreamError(StreamCondition.HOST_UNKNOWN, "this server does not serve that host")
        self._host = host

    def _send_header(self, attributes: Mapping[str, str]) -> None:
        """RFC 6120 §4.7: our header, with a new id on each restart (§4.3.3)."""
        stream_id = self._stream_id if not self._restarts else f"{self._stream_id}-{self._restarts}"
        host = self._host or (self._hosts[0] if self._hosts else "")
        try:
            to = str(parse_jid(attributes.get("from", ""))) if attributes.get("from") else ""
        except StanzaError:
            to = ""
        if self._websocket:
            self._output.append(websocket_open(stream_id=stream_id, from_=host, to=to).encode())
        else:
            self._output.append(stream_header(stream_id=stream_id, from_=host, to=to))
        self._header_sent = True

    def _features(self, children: list[Element]) -> None:
        features = _element(NS.STREAM, "features")
        features.extend(children)
        self._send(features)

    def _sasl_features(self) -> list[Element]:
        mechanisms = _element(NS.SASL, "mechanisms")
        for name in self._sasl.mechanisms:
            SubElement(mechanisms, qname(NS.SASL, "mechanism")).text = name
        features = [mechanisms]
        if self._sasl.channel_binding_types:
            bindings = _element(SASL_CB, "sasl-channel-binding")
            for name in self._sasl.channel_binding_types:
                SubElement(bindings, qname(SASL_CB, "channel-binding"), {"type": name})
            features.append(bindings)
        return features

    def _bind_features(self) -> list[Element]:
        session = _element(NS.SESSION, "session")
        SubElement(session, qname(NS.SESSION, "optional"))  # RFC 3921 made optional
        # XEP-0352 §4.1: CSI is offered with bind, "after the client has authenticated".
        csi = _element(NS.CSI, "csi")
        features = [_element(NS.BIND, "bind"), session, _element(NS.ROSTER_VER, "ver"), csi]
        if self._sm_limits is not None:
            features.append(_element(NS.SM, "sm"))  # XEP-0198 §2
        return features

    def _on_starttls(self) -> None:
        self._send(_element(NS.TLS, "proceed"))
        self._move(Input.STARTTLS, State.TLS_HANDSHAKE)
        self._events.append(StartTlsRequested())

    def _on_auth(self, element: Element) -> None:
        if self._state is State.STARTTLS and self._require_tls:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "TLS is required first")
        try:
            step = self._sasl.start(element.get("mechanism", ""), element.text)
        except SaslFailure as failure:
            self._sasl_failed(Input.AUTH, failure)
            return
        self._sasl_step(Input.AUTH, step)

    def _on_response(self, element: Element) -> None:
        try:
            step = self._sasl.respond(element.text)
        except SaslFailure as failure:
            self._sasl_failed(Input.RESPONSE, failure)
            return
        self._sasl_step(Input.RESPONSE, step)

    def _sasl_step(self, input_: Input, step: SaslStep) -> None:
        if isinstance(step, Challenge):
            challenge = _element(NS.SASL, "challenge")
            challenge.text = encode_payload(step.data) if step.data else None
            self._send(challenge)
            self._move(input_, State.SASL_EXCHANGE)
        elif isinstance(step, KeysNeeded):
            self._on_keys_needed(input_, step)
        elif isinstance(step, PasswordCheckNeeded):
            self._on_check_needed(input_, step)
        else:
            self._on_success(input_, step)

    def _account_of(self, username: str, authzid: str) -> JID:
        """The account a SASL username names on this host; raises SaslFailure if none can be."""
        try:
            account = JID.make(username, self._host)
        except StanzaError:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "not a valid username") from None
        if authzid:
            try:
                wanted = parse_jid(authzid)
            except StanzaError:
                wanted = None
            if wanted != account:
                # RFC 6120 §6.3.8: a client may act only as itself.
                raise SaslFailure(SaslCondition.INVALID_AUTHZID, "authzid is not the account")
        return account

    def _on_keys_needed(self, input_: Input, step: KeysNeeded) -> None:
        self._move(input_, State.SASL_EXCHANGE)
        try:
            account = self._account_of(step.username, "")
        except SaslFailure:
            # Not even a possible account: answer as for an unknown one, from fake keys.
            self.provide_scram_keys(None)
            return
        self._sasl_username = account.local
        self._events.append(ScramKeysNeeded(account.local, step.hash))

    def _on_check_needed(self, input_: Input, step: PasswordCheckNeeded) -> None:
        try:
            account = self._account_of(step.username, step.authzid)
        except SaslFailure as failure:
            self._sasl_failed(input_, self._sasl.abort(failure.condition))
            return
        self._move(input_, State.SASL_EXCHANGE)
        self._sasl_username = account.local
        self._events.append(PlainCheckNeeded(step.authzid, account.local, step.password))

    def _on_success(self, input_: Input, step: Success) -> None:
        try:
            account = self._account_of(step.username, step.authzid)
        except SaslFailure as failure:
            self._sasl_failed(input_, self._sasl.abort(failure.condition))
            return
        success = _element(NS.SASL, "success")
        success.text = encode_payload(step.data) if step.data else None
        self._send(success)
        self._authenticated = account
        self._restart()
        self._move(input_, State.SASL_HEADER)
        self._events.append(Authenticated(account))

    def _sasl_failed(self, input_: Input, failure: SaslFailure, *, counted: bool = True) -> None:
        """RFC 6120 §6.4.5: <failure/>, then the client may retry, a few times (§6.4.5)."""
        log.info("stream %s: SASL failed: %s", self._stream_id, loggable(failure))
        element = _element(NS.SASL, "failure")
        SubElement(element, qname(NS.SASL, failure.condition.value))
        self._send(element)
        self._events.append(AuthenticationFailed(self._sasl_username, counted))
        self._sasl_username = None
        if self._sasl.failures >= self._sasl_config.max_failures:
            self._goodbye(
                StreamError(StreamCondition.POLICY_VIOLATION, "too many failed authentications")
            )
            return
        self._move(input_, State.SASL)

    def _on_bind(self, iq: Element) -> None:
        if self._state is State.ESTABLISHED:
            self._count()
            self._send(error_reply(iq, StanzaError(StanzaCondition.NOT_ALLOWED)))
            return
        resource = iq[0].findtext(qname(NS.BIND, "resource")) or ""
        assert self._authenticated is not None  # BIND follows SASL success
        if iq.get("type") != "set":
            self._send(error_reply(iq, StanzaError(StanzaCondition.BAD_REQUEST)))
            self._move(Input.BIND_IQ, State.BIND)
            return
        if resource:
            try:
                resource = self._authenticated.with_resource(resource).resource
            except StanzaError:
                # RFC 6120 §7.7.2.1: a resource that cannot be prepared is a bad request.
                self._send(error_reply(iq, StanzaError(StanzaCondition.BAD_REQUEST)))
                self._move(Input.BIND_IQ, State.BIND)
                return
        self._bind_iq = iq
        self._move(Input.BIND_IQ, State.BINDING)
        self._events.append(BindRequested(resource or None))

    def _on_session(self, iq: Element) -> None:
        """RFC 3921 §3: establishing a session is a no-op now; answer it for old clients."""
        self._count()
        self._send(iq_result(iq))

    def _on_csi(self, element: Element) -> None:
        """XEP-0352 §4.2, no reply; §5.1: what <active/> releases goes out now, before the
        answers to whatever the client sent after it."""
        if element.tag == qname(NS.CSI, "inactive"):
            self._csi.deactivate()
            return
        self._output.extend(self._csi.activate())

    def _count(self) -> None:
        """XEP-0198 §4: every stanza the client sends after enabling counts towards 'h'."""
        if self._acks is not None:
            self._acks.handled()

    def _sm_failed(self, condition: str, handled: int | None = None) -> None:
        failed = _element(NS.SM, "failed")
        if handled is not None:
            failed.set("h", str(handled))
        SubElement(failed, qname(NS.STANZAS, condition))
        self._send(failed)

    def _on_sm(self, input_: Input, element: Element) -> None:
        if input_ is Input.SM_ENABLE:
            self._on_enable(element)
        elif input_ is Input.SM_RESUME:
            self._on_resume(element)
        else:
            self._on_ack(element)

    def _on_enable(self, element: Element) -> None:
        """XEP-0198 §3: counting starts now, both ways; resumption only if asked for."""
        limits = self._sm_limits
        assert limits is not None  # <enable/> is no input without it
        if self._state is not State.ESTABLISHED or self._acks is not None:
            self._sm_failed("unexpected-request")  # before bind, or twice
        else:
            self._acks = Acks(limits)
            attributes = {}
            if element.get("resume") in ("true", "1") and self._resume_ids is not None:
                self._resume_id = self._resume_ids()
                attributes = {
                    "id": self._resume_id,
                    "resume": "true",
                    "max": str(self._resume_max),
                }
            self._send(_element_with(NS.SM, "enabled", attributes))
            self._events.append(SmEnabled(self._resume_id))

    def _on_resume(self, element: Element) -> None:
        h = parse_h(element.get("h"))
        previd = element.get("previd", "")
        if self._state is not State.BIND:
            self._sm_failed("unexpected-request")  # §5: resumption replaces binding
            return
        if self._resume_ids is None or not previd:
            self._sm_failed("item-not-found")
            return
        self._resume_request = ResumeRequested(previd, h)
        self._move(Input.SM_RESUME, State.RESUMING)
        self._events.append(self._resume_request)

    def _on_ack(self, element: Element) -> None:
        """XEP-0198 §4: answer ``<r/>``; take ``<a/>``'s count. Before enabling, ignored."""
        acks = self._acks
        if acks is None:
            return
        if element.tag == _SM_A:
            acks.ack(parse_h(element.get("h")))
        else:
            self._send(_element_with(NS.SM, "a", {"h": str(acks.inbound)}))

    def _on_stanza(self, stanza: Element) -> None:
        self._count()
        # RFC 6120 §8.1.2.1: the server stamps the full JID; a client cannot claim another.
        stanza.set("from", self._jid_text)
        to_text = stanza.get("to")
        to = None
        if to_text:
            try:
                to = parse_stanza_jid(to_text)
            except StanzaError as error:
                if stanza.get("type") not in ("error", "result"):  # never answered (§8.2.3)
                    reply = error_reply(stanza, error)
                    reply.attrib.pop("from", None)  # the malformed address is not echoed
                    self._send(reply)
                return
        self._events.append(StanzaReceived(stanza, to))

    # --- output and endings --------------------------------------------------------------

    def _restart(self) -> None:
        """Both sides start a new stream; the client sends its header next (§4.3.3)."""
        self._restarts += 1
        self._header_sent = False
        if not self._websocket:
            self._parser = XmlStreamParser(
                max_stanza_bytes=self._parser.max_stanza_bytes, max_depth=self._parser.max_depth
            )

    def _send(self, element: Element) -> None:
        self._output.append(self._serialize(element))

    def _serialize(self, element: Element) -> bytes:
        if self._websocket:
            return serialize(element, "", stream_prefix=False)
        return serialize(element)

    def _fail(self, error: StreamError) -> None:
        log.info("stream %s: %s", self._stream_id, loggable(error))
        self._goodbye(error)

    def _goodbye(self, error: StreamError | None, *, peer: bool = False) -> None:
        """RFC 6120 §4.9.1.1: a header first if none was sent, then the error, then the end."""
        if error is not None:
            if not self._header_sent:
                self._send_header({})
            self._send(stream_error_element(error))
        if self._header_sent or peer:
            self._output.append(websocket_close().encode() if self._websocket else stream_footer())
        self._state = State.CLOSED
        self._events.append(StreamEnded(error))
