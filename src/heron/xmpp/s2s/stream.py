"""One server-to-server stream, sans-IO (RFC 6120 §4 to §6 and §8, XEP-0178, XEP-0220).

An :class:`S2SStream` is one TCP connection between two XMPP servers, in
either role: ``Role.INCOMING`` (the peer connected to us: it is the
initiating server, we receive stanzas) or ``Role.OUTGOING`` (we connected: we
send them), and with ``bidi`` (XEP-0288) stanzas flow back on it too. It is
driven like the c2s stream::

    stream.receive_data(bytes)     # what the socket read
    stream.next_event()            # what the server must do or know, until None
    stream.data_to_send()          # bytes for the socket, after every call

Construct it with keyword arguments only:

- ``role``; ``local_domains``: every domain this server answers for (XMPP
  hosts and component domains such as conference.falcot.com);
- ``stream_id``: incoming, the id we give the peer (random, unguessable; a
  restart adds ``-1``, ``-2``); outgoing, ignored (the peer gives one);
- ``local`` and ``remote`` (outgoing only): our sending domain (one of
  ``local_domains``) and the peer's; ValueError without them;
- ``tls_active``: direct TLS (XEP-0368); ``require_tls`` (default True:
  Prosody's s2s_require_encryption); ``secure_auth`` (default False: Prosody's
  s2s_secure_auth, certificates only, no dialback; implies ``require_tls``);
- ``dialback_secret``: this server's secret for XEP-0185 keys, the same for
  every stream (and every process serving the same domains);
- ``bidi`` (default False): XEP-0288. Incoming, offer it after TLS and, when the
  peer asks, send stanzas back from our domain of each authenticated pair to the
  peer's. Outgoing, ask for it when offered, but only when the peer's certificate
  is valid for ``remote``: that certificate is what proves stanzas from ``remote``
  are the receiving server's own (a dialback-only peer is never asked: heron does
  not take XEP-0288's "authenticated by the DNS lookup" on trust);
- ``max_stanza_bytes`` and ``max_depth`` for the parser;
- ``refused`` (incoming): whether a domain is one this server does not federate
  with (``xmpp.s2s_deny``, ``s2s_allow``); a header from one ends the stream with
  policy-violation before any feature is offered, so EXTERNAL never succeeds for it.

The order of calls:

- outgoing: construct, [direct TLS: ``start_tls_done(check)``], ``start()``,
  then feed what the peer sends;
- incoming: construct, [direct TLS: ``start_tls_done(check)``], feed;
- :class:`StartTlsRequested`: send what is queued (incoming: <proceed/>), run
  the handshake (incoming as TLS server, outgoing as client), then call
  ``start_tls_done(certificate_valid_for)``, ``certificate_valid_for(domain)``
  answering "does the peer's certificate chain verify against our trust store
  and name this domain (RFC 6125, RFC 7590)". Input before that is ignored.

What the server answers, and the events:

- :class:`DialbackVerifyNeeded` (incoming): ``dialback_verified(originating,
  receiving, valid)``, or ``dialback_failed(originating, receiving, condition)``
  when the Authoritative Server could not be asked (XEP-0220 §2.5:
  remote-server-not-found, remote-server-timeout, ...). To ask it, call
  ``send_verify(originating, receiving, stream_id, key)`` on an outgoing
  stream to ``originating`` (False: that stream cannot); the answer comes as
  :class:`VerifyAnswered` there. Count verifications still pending when that
  stream ends as failed. A certificate valid for ``originating`` may be
  answered at once instead.
- :class:`Authenticated`: incoming, stanzas from ``domain`` are accepted;
  outgoing, ``send_stanza`` may send from ``local``. ``authenticate_more(local2)``
  asks to send from another of our domains on the same outgoing stream
  (XEP-0220 §2.6; False: open another stream); :class:`AuthenticationFailed`
  says it was refused.
- ``send_stanza(stanza)`` (outgoing, or incoming with :attr:`S2SStream.bidi`): a
  ``jabber:client`` stanza from our domain to the peer's of an authenticated pair
  (outgoing: ``from`` in :attr:`S2SStream.authenticated_domains`, ``to`` at the
  remote domain); False when it was not sent: queue or bounce it.
- :class:`StanzaReceived`: route it; its tags are in ``jabber:client``.
- ``close(condition=None, text="")``; :class:`StreamEnded` (ours or the peer's
  end): send what is queued, then close the connection.

Answers arriving when nothing waits for them are dropped. ``db:verify``
requests from the peer (we are the Authoritative Server for one of our
domains) are answered here with the secret, in either role. States and edges
are in :mod:`heron.xmpp.s2s.states`, the authentication policy and the
addressing rules in :mod:`heron.xmpp.s2s.auth`. A :class:`StreamError` sends
``<stream:error/>`` and the end, emits :class:`StreamEnded` and makes the
stream ignore the rest.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Set
from typing import ClassVar
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StreamCondition, StreamError, loggable
from heron.xmpp.s2s.auth import Policy, Step, header_addresses, may_send, stanza_addresses
from heron.xmpp.s2s.dialback import DialbackType, dialback_element, dialback_key, verify_answer
from heron.xmpp.s2s.events import (
    Authenticated,
    AuthenticationFailed,
    AuthMethod,
    DialbackVerifyNeeded,
    Role,
    S2SEvent,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    VerifyAnswered,
)
from heron.xmpp.s2s.states import REJECTIONS, TRANSITIONS, Input, State, classify
from heron.xmpp.s2s.wire import (
    bidi_feature,
    bidi_offered,
    bidi_request,
    dialback_addresses,
    dialback_condition,
    domain_of,
    external_auth,
    features,
    peer_stream_error,
    sasl_element,
    to_client,
)
from heron.xmpp.stanza import NS, qname
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
)

__all__ = ["MAX_DOMAINS", "MAX_PENDING_DIALBACKS", "MAX_SASL_FAILURES", "S2SStream"]

log = logging.getLogger(__name__)

MAX_PENDING_DIALBACKS = 16
"""Dialback requests of one incoming stream waiting for the server's verdict at once."""
MAX_DOMAINS = 64
"""Domains one incoming stream may authenticate: a peer owning a wildcard zone could
otherwise verify names without end on one connection."""
MAX_SASL_FAILURES = 3

_DECLARED: dict[str, str] = {NS.DIALBACK: "db"}  # our stream header declares xmlns:db (XEP-0220 §2)
_STOPPED = frozenset({State.CLOSED, State.TLS_HANDSHAKE, State.IDLE})


def _never_valid(_domain: str) -> bool:
    return False


class S2SStream:
    """One s2s connection's stream: negotiation, dialback, then stanzas one way."""

    def __init__(
        self,
        *,
        role: Role,
        local_domains: Collection[str],
        stream_id: str,
        dialback_secret: bytes,
        local: str = "",
        remote: str = "",
        tls_active: bool = False,
        require_tls: bool = True,
        secure_auth: bool = False,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        refused: Callable[[str], bool] = _never_valid,
        bidi: bool = False,
    ) -> None:
        self._role = role
        self._refused = refused
        self._bidi_wanted = bidi
        self._bidi = False  # XEP-0288 negotiated on this stream
        # Incoming: (ours, the peer's) for every authenticated pair, the way back under bidi;
        # stanzas sent during the restart after SASL wait for our new header.
        self._pairs: set[tuple[str, str]] = set()
        self._held: list[Element] = []
        self._local_domains = frozenset(
            domain for domain in map(domain_of, local_domains) if domain
        )
        self._base_id = stream_id
        self._restarts = 0
        self._secret = dialback_secret
        self._tls_active = tls_active
        # As Prosody: secure_auth implies required TLS.
        self._policy = Policy(require_tls=require_tls or secure_auth, secure_auth=secure_auth)
        self._certificate_valid_for: Callable[[str], bool] = _never_valid
        self._parser = XmlStreamParser(max_stanza_bytes=max_stanza_bytes, max_depth=max_depth)
        self._events: deque[S2SEvent] = deque()
        self._output: list[bytes] = []
        self._header_sent = False
        self._opened = False  # the peer's first header was taken
        self._local = domain_of(local) or ""
        self._remote = domain_of(remote) or ""
        # Incoming: the peer's authenticated domains; outgoing: ours that may send.
        self._authenticated: set[str] = set()
        # Dialback requests awaiting an answer: (the peer's domain, ours) -> key.
        self._pending: dict[tuple[str, str], str] = {}
        self._external_offered = False
        self._sasl_done = False
        self._sasl_failures = 0
        # Outgoing: the peer's stream id, our verification requests (queued until we may
        # send them: not between <auth/> and the restart).
        self._peer_id = ""
        self._external_failed = False
        self._verifies: set[tuple[str, str, str]] = set()
        self._verify_queue: list[Element] = []
        if role is Role.OUTGOING and (self._local not in self._local_domains or not self._remote):
            raise ValueError("an outgoing stream needs local (one of local_domains) and remote")
        self._state = State.TLS_HANDSHAKE if tls_active else self._initial()

    def _initial(self) -> State:
        return State.IDLE if self._role is Role.OUTGOING else State.HEADER

    # --- properties ----------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is State.CLOSED

    @property
    def stream_id(self) -> str:
        """The id dialback keys are computed with: ours (incoming) or the peer's (outgoing)."""
        if self._role is Role.OUTGOING:
            return self._peer_id
        return self._base_id if not self._restarts else f"{self._base_id}-{self._restarts}"

    @property
    def local(self) -> str:
        """Our domain: the outgoing ``local``, or the domain the peer addressed."""
        return self._local

    @property
    def remote(self) -> str:
        """The peer's domain: the outgoing ``remote``, or the incoming header's ``from``."""
        return self._remote

    @property
    def authenticated_domains(self) -> frozenset[str]:
        """Incoming: the peer's domains we accept stanzas from. Outgoing: ours we may send from."""
        return frozenset(self._authenticated)

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def bidi(self) -> bool:
        """XEP-0288 was negotiated: stanzas flow both ways on this stream."""
        return self._bidi

    # --- the I/O surface -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the socket. Ignored before ``start()``, during TLS and after the end."""
        if self._state in _STOPPED:
            return
        try:
            parser = self._parser
            for event in parser.feed(data):
                self._handle(event)
                # A restart, STARTTLS or the end makes the rest of this input meaningless.
                if self._parser is not parser or self._state in _STOPPED:
                    return
            if parser.error is not None:
                raise parser.error
        except StreamError as error:
            log.info("s2s stream %s: %s", self.stream_id, loggable(error))
            self._goodbye(error)

    def next_event(self) -> S2SEvent | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        output, self._output = self._output, []
        return b"".join(output)

    # --- the server's calls --------------------------------------------------------------

    def start(self) -> None:
        """Outgoing: open the stream (RFC 6120 §4.2)."""
        if self._accepts(Input.START):
            self._send_header()
            self._move(Input.START, State.HEADER)

    def start_tls_done(self, certificate_valid_for: Callable[[str], bool]) -> None:
        """TLS is up (STARTTLS, or direct TLS right after construction); the stream restarts."""
        if not self._accepts(Input.TLS_DONE):
            return
        self._tls_active = True
        self._certificate_valid_for = certificate_valid_for
        if self._opened:  # STARTTLS, not direct TLS: a restart (§5.4.3.3)
            self._restart()
        if self._role is Role.INCOMING:
            self._move(Input.TLS_DONE, State.HEADER)
        elif self._opened:  # the initiating server speaks first
            self._send_header()
            self._move(Input.TLS_DONE, State.HEADER)
        else:
            self._move(Input.TLS_DONE, State.IDLE)

    def dialback_verified(self, originating: str, receiving: str, valid: bool) -> None:
        """The verdict on :class:`DialbackVerifyNeeded` (XEP-0220 §2.2.1 step 4)."""
        key = (originating, receiving)
        if not self._accepts(Input.VERDICT) or key not in self._pending:
            return
        del self._pending[key]
        answer = DialbackType.VALID if valid else DialbackType.INVALID
        self._send(dialback_element("result", from_=receiving, to=originating, type_=answer))
        if not valid:
            # §2.2.1: the Initiating Server tried to spoof a domain: close the stream.
            self._goodbye(StreamError(StreamCondition.NOT_AUTHORIZED, "dialback key invalid"))
            return
        self._authenticated.add(originating)
        self._pairs.add((receiving, originating))  # XEP-0288 §2.2: the pair's inverse
        self._move(Input.VERDICT, State.ESTABLISHED)
        self._events.append(
            Authenticated(originating, AuthMethod.DIALBACK, receiving, bidi=self._bidi)
        )

    def dialback_failed(self, originating: str, receiving: str, condition: StanzaCondition) -> None:
        """The request could not be verified (XEP-0220 §2.5): a dialback error, the stream
        goes on for the domains already authenticated."""
        key = (originating, receiving)
        if not self._accepts(Input.VERDICT) or key not in self._pending:
            return
        del self._pending[key]
        self._dialback_error(receiving, originating, condition)

    def authenticate_more(self, local: str) -> bool:
        """Outgoing: ask to send from another of our domains too (XEP-0220 §2.6).

        False when this stream cannot (not established, secure_auth, not our domain):
        open another stream for that domain then.
        """
        domain = domain_of(local)
        if (
            self._role is not Role.OUTGOING
            or self._state is not State.ESTABLISHED
            or self._policy.secure_auth
            or domain not in self._local_domains
        ):
            return False
        if domain not in self._authenticated and (self._remote, domain) not in self._pending:
            self._send_dialback_key(domain)
        return True

    def send_verify(self, originating: str, receiving: str, stream_id: str, key: str) -> bool:
        """Outgoing to ``originating``: ask it whether ``key`` is its (XEP-0220 §2.1.2 step 2).

        Sent once this stream reaches authentication (queued before); the answer is
        :class:`VerifyAnswered`. False when this stream cannot carry it.
        """
        if (
            self._role is not Role.OUTGOING
            or self._state is State.CLOSED
            or originating != self._remote
            or receiving not in self._local_domains
        ):
            return False
        self._verifies.add((originating, receiving, stream_id))
        element = dialback_element(
            "verify", from_=receiving, to=originating, stream_id=stream_id, key=key
        )
        if self._state in (State.DIALBACK, State.ESTABLISHED):
            self._send(element)
        else:
            self._verify_queue.append(element)
        return True

    def send_stanza(self, stanza: Element) -> bool:
        """Send a ``jabber:client`` stanza from our domain to the peer's of a pair this
        stream authenticated (incoming: only with bidi); False (nothing sent) otherwise."""
        if self._role is Role.OUTGOING:
            pairs = {(local, self._remote) for local in self._authenticated}
        else:
            pairs = self._pairs if self._bidi else set()
        if not may_send(stanza, pairs):
            return False
        if self._state is State.ESTABLISHED:
            self._send(stanza)
        elif self._role is Role.INCOMING and self._state is State.HEADER and self._sasl_done:
            self._held.append(stanza)  # after SASL, before the peer's restart (RFC 6120 §6.4.6)
        else:
            return False
        return True

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        """End the stream, with a stream error when ``condition`` is given (RFC 6120 §4.4)."""
        if self._state is not State.CLOSED:
            self._goodbye(StreamError(condition, text) if condition is not None else None)

    # --- dispatch ------------------------------------------------------------------------

    def _accepts(self, input_: Input) -> bool:
        """Whether a call of the server has an edge now; if not it is dropped."""
        if (self._role, self._state, input_) in TRANSITIONS:
            return True
        log.debug("s2s stream %s: %s ignored in %s", self.stream_id, input_, self._state)
        return False

    def _move(self, input_: Input, to: State) -> None:
        if to not in TRANSITIONS.get((self._role, self._state, input_), frozenset()):
            raise RuntimeError(f"no edge {self._role} {self._state} --{input_}--> {to}")
        self._state = to

    def _handle(self, event: XmlEvent) -> None:
        if isinstance(event, StreamClosed):
            self._goodbye(None, by_peer=True)
            return
        if isinstance(event, StreamOpened):
            input_, element = Input.HEADER, None
        elif self._state is State.HEADER:
            raise StreamError(StreamCondition.INVALID_NAMESPACE, "the stream must open first")
        else:
            input_, element = classify(event.element), event.element
        if (self._role, self._state, input_) not in TRANSITIONS:
            condition = REJECTIONS[input_]
            if condition is not None:
                raise StreamError(condition, f"unexpected {input_.value} in {self._state.name}")
            log.info("s2s stream %s: %s dropped", self.stream_id, input_.value)
            return
        if element is None:
            assert isinstance(event, StreamOpened)
            self._on_header(event)
        elif input_ is Input.FOOTER:
            self._goodbye(peer_stream_error(element), by_peer=True)
        else:
            self._ACTIONS[input_](self, element)

    # --- headers and features ------------------------------------------------------------

    def _on_header(self, event: StreamOpened) -> None:
        if event.tag != qname(NS.STREAM, "stream"):
            raise StreamError(StreamCondition.INVALID_NAMESPACE, "the stream must be stream:stream")
        check_version(event.attributes)
        restarted, self._opened = self._opened, True
        if self._role is Role.OUTGOING:
            # RFC 6120 §4.7.3: the receiving entity gives the id dialback keys are bound to.
            self._peer_id = event.attributes.get("id", "")
            if not self._peer_id:
                raise StreamError(StreamCondition.UNDEFINED_CONDITION, "no stream id")
            self._move(Input.HEADER, State.FEATURES)
            return
        previous = (self._local, self._remote) if restarted else None
        self._local, self._remote = header_addresses(
            event.attributes, self._local_domains, previous
        )
        if self._remote and self._refused(self._remote):
            raise StreamError(StreamCondition.POLICY_VIOLATION, "federation refused")
        self._send_header()
        valid = bool(self._remote) and self._certificate_valid_for(self._remote)
        offers, state = self._policy.offer(
            tls_active=self._tls_active, sasl_done=self._sasl_done, certificate_valid=valid
        )
        self._external_offered = state is State.AUTH and valid
        if state is State.AUTH and self._bidi_wanted:
            offers.append(bidi_feature())
        self._send(features(offers))
        self._move(Input.HEADER, state)
        for stanza in self._held:
            self._send(stanza)
        self._held.clear()

    def _send_header(self) -> None:
        if self._role is Role.OUTGOING:
            header = stream_header(
                stream_id="", from_=self._local, to=self._remote, namespace=NS.SERVER
            )
        else:
            local = self._local or min(self._local_domains, default="")
            header = stream_header(
                stream_id=self.stream_id, from_=local, to=self._remote, namespace=NS.SERVER
            )
        self._output.append(header)
        self._header_sent = True

    def _restart(self) -> None:
        """Both sides start a new stream after TLS and SASL (RFC 6120 §4.3.3)."""
        self._restarts += 1
        self._header_sent = False
        self._parser = XmlStreamParser(
            max_stanza_bytes=self._parser.max_stanza_bytes, max_depth=self._parser.max_depth
        )

    # --- incoming negotiation ------------------------------------------------------------

    def _on_starttls(self, _element: Element) -> None:
        self._send(Element(qname(NS.TLS, "proceed")))
        self._move(Input.STARTTLS, State.TLS_HANDSHAKE)
        self._events.append(StartTlsRequested())

    def _on_auth(self, element: Element) -> None:
        """XEP-0178 §3: EXTERNAL, offered only for a certificate valid for the header's from."""
        condition = self._policy.external_refusal(
            element,
            tls_active=self._tls_active,
            offered=self._external_offered,
            remote=self._remote,
        )
        if not condition:
            self._send(sasl_element("success"))
            self._authenticated.add(self._remote)
            self._pairs.add((self._local, self._remote))  # XEP-0288 §2.2: the header's 'to'
            self._sasl_done = True
            self._restart()
            self._move(Input.AUTH, State.HEADER)
            self._events.append(
                Authenticated(self._remote, AuthMethod.EXTERNAL, self._local, bidi=self._bidi)
            )
            return
        self._send(sasl_element("failure", condition))
        self._sasl_failures += 1
        if self._sasl_failures >= MAX_SASL_FAILURES:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "too many failed authentications")
        self._move(Input.AUTH, self._state)

    def _on_db_request(self, element: Element) -> None:
        """XEP-0220 §2.2.1 step 1: the peer claims a domain with a key."""
        originating, receiving = dialback_addresses(element)
        refusal = self._policy.dialback_refusal(originating, receiving, self._local_domains)
        if refusal is None and len(self._authenticated | {originating}) > MAX_DOMAINS:
            log.info("s2s stream %s: more than %d domains refused", self.stream_id, MAX_DOMAINS)
            refusal = StanzaCondition.RESOURCE_CONSTRAINT
        if refusal is not None:
            self._dialback_error(receiving, originating, refusal)
        else:
            if len(self._pending) >= MAX_PENDING_DIALBACKS:
                raise StreamError(StreamCondition.POLICY_VIOLATION, "too many dialback requests")
            key = (element.text or "").strip()
            self._pending[(originating, receiving)] = key
            self._events.append(DialbackVerifyNeeded(self.stream_id, originating, receiving, key))
        self._move(Input.DB_REQUEST, self._state)

    def _on_verify_request(self, element: Element) -> None:
        self._send(verify_answer(element, self._secret, self._local_domains))
        self._move(Input.VERIFY_REQUEST, self._state)

    def _dialback_error(self, from_: str, to: str, condition: StanzaCondition) -> None:
        self._send(
            dialback_element(
                "result", from_=from_, to=to, type_=DialbackType.ERROR, condition=condition
            )
        )

    def _on_bidi(self, _element: Element) -> None:
        """XEP-0288 §2.2: the initiating server wants stanzas back on this stream."""
        if not self._bidi_wanted:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "<bidi/>")
        if self._state is State.ESTABLISHED and not self._bidi:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "<bidi/> after authentication")
        self._bidi = True
        self._move(Input.BIDI, self._state)

    def _on_stanza(self, stanza: Element) -> None:
        senders: Set[str]
        targets: Set[str]
        if self._role is Role.INCOMING:
            senders, targets = self._authenticated, self._local_domains
        elif self._bidi:
            # XEP-0288 §2.2: from the domain whose certificate we checked, to ours it serves.
            senders, targets = {self._remote}, self._authenticated
        else:
            raise StreamError(StreamCondition.NOT_AUTHORIZED, "this stream is ours to send on")
        sender, to = stanza_addresses(stanza, senders, targets)
        self._events.append(StanzaReceived(to_client(stanza), sender, to))

    # --- outgoing negotiation ------------------------------------------------------------

    def _on_features(self, element: Element) -> None:
        if self._sasl_done:
            # §6.4.6: features after the restart end the negotiation: stanzas may flow.
            self._move(Input.FEATURES, State.ESTABLISHED)
            self._established(self._local, AuthMethod.EXTERNAL)
            return
        step = self._policy.step(
            element,
            tls_active=self._tls_active,
            external_failed=self._external_failed,
            remote_valid=self._certificate_valid_for(self._remote),
        )
        if step is Step.STARTTLS:
            self._send(Element(qname(NS.TLS, "starttls")))
            self._move(Input.FEATURES, State.PROCEED)
            return
        self._request_bidi(element)
        if step is Step.EXTERNAL:
            self._send(external_auth(self._local))
            self._move(Input.FEATURES, State.SASL)
        else:
            self._start_dialback(Input.FEATURES)

    def _request_bidi(self, offered: Element) -> None:
        """XEP-0288 §2.2, before SASL or dialback; only from a peer whose certificate
        proves ``remote`` (see the module docstring)."""
        if (
            self._bidi_wanted
            and bidi_offered(offered)
            and self._certificate_valid_for(self._remote)
        ):
            self._send(bidi_request())
            self._bidi = True

    def _start_dialback(self, input_: Input) -> None:
        self._send_dialback_key(self._local)
        self._move(input_, State.DIALBACK)
        self._flush_verifies()

    def _send_dialback_key(self, local: str) -> None:
        """XEP-0220 §2.1.1 step 1, the key bound to the id the peer gave this stream."""
        key = dialback_key(self._secret, self._remote, local, self._peer_id)
        self._pending[(self._remote, local)] = key
        self._send(dialback_element("result", from_=local, to=self._remote, key=key))

    def _on_proceed(self, _element: Element) -> None:
        self._move(Input.PROCEED, State.TLS_HANDSHAKE)
        self._events.append(StartTlsRequested())

    def _on_tls_failure(self, _element: Element) -> None:
        # §5.4.2.2: the receiving entity closes the stream after <failure/>.
        self._goodbye(
            StreamError(StreamCondition.UNDEFINED_CONDITION, "the peer failed STARTTLS"),
            by_peer=True,
        )

    def _on_sasl_success(self, _element: Element) -> None:
        self._sasl_done = True
        self._restart()
        self._send_header()
        self._move(Input.SASL_SUCCESS, State.HEADER)

    def _on_sasl_failure(self, element: Element) -> None:
        # Prosody and ejabberd fall back to dialback when EXTERNAL fails.
        log.info("s2s stream to %s: EXTERNAL refused", self._remote)
        self._external_failed = True
        self._policy.fallback()
        self._start_dialback(Input.SASL_FAILURE)

    def _on_db_answer(self, element: Element) -> None:
        """XEP-0220 §2.1.1 step 4, matched with a request sent on this stream."""
        remote, local = dialback_addresses(element)
        if remote != self._remote or (remote, local) not in self._pending:
            log.info("s2s stream to %s: unsolicited dialback answer dropped", self._remote)
            return
        del self._pending[(remote, local)]
        answer = element.get("type")
        if answer == DialbackType.VALID:
            self._move(Input.DB_ANSWER, State.ESTABLISHED)
            self._established(local, AuthMethod.DIALBACK)
            return
        reason = "invalid" if answer == DialbackType.INVALID else dialback_condition(element).value
        if self._state is State.DIALBACK:
            raise StreamError(StreamCondition.NOT_AUTHORIZED, f"dialback refused: {reason}")
        self._events.append(AuthenticationFailed(local, remote, reason))

    def _on_verify_answer(self, element: Element) -> None:
        """XEP-0220 §2.1.2 step 3, matched with a request sent on this stream."""
        originating, receiving = dialback_addresses(element)
        request = (originating, receiving, element.get("id", ""))
        if request not in self._verifies:
            log.info("s2s stream to %s: unsolicited verification dropped", self._remote)
            return
        self._verifies.discard(request)
        answer = element.get("type")
        condition = dialback_condition(element) if answer == DialbackType.ERROR else None
        self._events.append(
            VerifyAnswered(
                request[2], originating, receiving, answer == DialbackType.VALID, condition
            )
        )

    def _established(self, local: str, method: AuthMethod) -> None:
        self._authenticated.add(local)
        self._events.append(Authenticated(self._remote, method, local, bidi=self._bidi))
        self._flush_verifies()

    def _flush_verifies(self) -> None:
        for element in self._verify_queue:
            self._send(element)
        self._verify_queue.clear()

    # --- output and endings --------------------------------------------------------------

    def _send(self, element: Element) -> None:
        # jabber:client in scope writes our stanzas unqualified: jabber:server on the wire.
        self._output.append(serialize(element, NS.CLIENT, declared=_DECLARED))

    def _goodbye(self, error: StreamError | None, *, by_peer: bool = False) -> None:
        """RFC 6120 §4.9.1.1: a header first if none was sent, then the error, then the end."""
        if error is not None and not by_peer:
            if not self._header_sent:
                self._send_header()
            self._send(stream_error_element(error))
        if self._header_sent:
            self._output.append(stream_footer())
        self._state = State.CLOSED
        self._verify_queue.clear()
        self._held.clear()
        self._events.append(StreamEnded(error, by_peer))

    _ACTIONS: ClassVar[dict[Input, Callable[[S2SStream, Element], None]]] = {
        Input.FEATURES: _on_features,
        Input.STARTTLS: _on_starttls,
        Input.PROCEED: _on_proceed,
        Input.TLS_FAILURE: _on_tls_failure,
        Input.AUTH: _on_auth,
        Input.SASL_SUCCESS: _on_sasl_success,
        Input.SASL_FAILURE: _on_sasl_failure,
        Input.DB_REQUEST: _on_db_request,
        Input.DB_ANSWER: _on_db_answer,
        Input.VERIFY_REQUEST: _on_verify_request,
        Input.VERIFY_ANSWER: _on_verify_answer,
        Input.STANZA: _on_stanza,
        Input.BIDI: _on_bidi,
    }
