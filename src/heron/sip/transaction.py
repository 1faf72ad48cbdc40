"""The SIP transaction layer of a stateful proxy (RFC 3261 §17, RFC 6026), sans-IO.

Parsed messages go in with how they came and the time; events come out for
the proxy core (the transaction user, TU); what to send waits in a queue;
timers are data. One thin adapter drives it for UDP, TCP, TLS and WebSocket::

    layer = TransactionLayer()
    events = layer.receive(message, "UDP", False, source, now)
    events = layer.server_respond(tx, response, now)      # the TU answers
    tx = layer.client_request(request, "UDP", False, next_hop, now)
    for out in layer.messages_to_send(): ...              # out.data to out.destination
    events = layer.handle_timer(now)                      # at layer.next_timer()

Each machine is the table in :mod:`heron.sip.transaction_states`; this module
matches messages to transactions (RFC 3261 §17.1.3, §17.2.3) and performs
the action of each edge. Choices where the RFCs leave room:

* **100 Trying.** An INVITE server transaction sends 100 when its TU has not
  answered within ``trying_delay`` (200 ms, RFC 3261 §17.2.1), so an INVITE
  that is challenged at once gets its 407 alone; an INVITE retransmission
  before then gets the 100 at once, since the client is waiting.
  ``trying_delay=0`` sends it on arrival. Non-INVITE requests never get one
  from here (RFC 3261 §16.2 says a proxy SHOULD NOT).
* **RFC 6026.** A 2xx to an INVITE leads both sides to Accepted (Timers L
  and M, 64*T1), so 2xx retransmissions and forked 2xx pass through the
  transactions; an ACK matching an Accepted transaction goes to the TU.
  A 2xx that matches a client transaction with no edge for it (Completed)
  comes out as :class:`StrayResponse` for the proxy to forward statelessly,
  as it must forward every 2xx to an INVITE (RFC 3261 §16.7 step 5). A
  response matching no client transaction is dropped: forwarding it would
  make the proxy a reflector for anyone who writes two Vias.
* **RFC 2543 peers.** A request whose top Via branch lacks the magic cookie
  is matched the old way (RFC 3261 §17.2.3): Request-URI, From tag, Call-ID,
  CSeq number and top Via, plus for an ACK the To tag of the response sent.
* **Branches** compare case-insensitively: a branch is a token (§7.3.1).
* **Zero timers.** On a reliable transport Timers D, I, J and K are zero:
  the transaction passes through Completed or Confirmed to Terminated in the
  same call, and its :class:`TransactionTerminated` comes out with it.
* **Timer D** is ``max(32 s, 64*T1)``: "at least 32 seconds" and never less
  than the peer's Timer H window when T1 is raised.
* **Timers keep their schedule.** A timer fires at its deadline even when
  :meth:`TransactionLayer.handle_timer` is called late, and a retransmission
  timer restarts from that deadline: T1, 3*T1, 7*T1 after the first send.
* **Lean lingering.** A transaction that has finished (Completed, Confirmed,
  Accepted) waits out Timer D, I, J, K, L or M with its key, method, To tag
  and the bytes to resend only: its parsed request and messages are dropped,
  so tens of thousands of them are not traced by the cyclic collector.
  Retransmissions from then on come out with ``Outgoing.message`` None.
* **Bounded memory.** A transaction is forgotten the moment it terminates.
  Past ``max_transactions`` live ones, a new request (not an ACK) is answered
  here with a stateless 503 and Retry-After, its To tag derived from the
  request as RFC 3261 §8.2.7 asks of a stateless UAS, and
  :class:`RequestRefused` tells the TU. Client transactions are not refused:
  each belongs to an admitted server transaction.

Responses go to the source of the request (its connection on a stream);
the adapter applies RFC 3261 §18.2.2 and RFC 3581 for datagrams. Errors::

    SipLocalError
    └── TransactionError   the TU asked for something no machine allows:
                           an unknown transaction, a response its state does
                           not take, a client request without an RFC 3261
                           branch or reusing one, an ACK as a transaction
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from heron.sip.errors import Status
from heron.sip.headers import HeaderName, Headers
from heron.sip.message import Method, Request, Response, stateless_tag
from heron.sip.transaction_events import (
    AckReceived,
    Address,
    Outgoing,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    StrayResponse,
    TransactionError,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)
from heron.sip.transaction_states import (
    TRANSITIONS,
    Input,
    Kind,
    State,
    Timer,
    Trigger,
    initial_state,
)

__all__ = [
    "RETRY_AFTER",
    "TRANSITIONS",
    "AckReceived",
    "Address",
    "Input",
    "Kind",
    "Outgoing",
    "RequestReceived",
    "RequestRefused",
    "ResponseReceived",
    "State",
    "StrayResponse",
    "Timer",
    "TransactionError",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimeout",
    "TransportFailed",
    "Trigger",
]

RETRY_AFTER = 5
"""Seconds a refused client is asked to wait (RFC 3261 §20.33)."""

_Key = tuple[str | int | None, ...]

_LINGERING = frozenset((State.COMPLETED, State.CONFIRMED, State.ACCEPTED))
"""States where a transaction only absorbs retransmissions: no parsed message is kept."""


@dataclass(slots=True, eq=False)
class _Transaction:
    id: int
    kind: Kind
    key: _Key
    method: str
    request: Request | None
    """The request, until the transaction lingers (see _LINGERING)."""
    transport: str
    reliable: bool
    peer: Address
    state: State
    out: Outgoing | None = None
    """Client: the request. Server: the last response sent."""
    ack: Outgoing | None = None
    """INVITE client: the ACK for the non-2xx final response (RFC 3261 §17.1.1.3)."""
    final_to_tag: str | None = None
    """INVITE server: the To tag of the final response, to match an RFC 2543 ACK."""
    interval: float = 0.0
    """The current Timer A, E or G interval."""
    timers: dict[Timer, tuple[float, int]] = field(default_factory=dict)
    """Running timers: deadline and the sequence number of their heap entry."""


class TransactionLayer:
    """Every client and server transaction of one proxy (RFC 3261 §17).

    ``t1``, ``t2`` and ``t4`` are the RFC 3261 §17.1.1.1 and Table 4 values in
    seconds. Transaction ids are ints, never reused.
    """

    def __init__(
        self,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        trying_delay: float = 0.2,
        max_transactions: int = 10_000,
    ) -> None:
        if not 0 < t1 <= t2 or t4 <= 0 or trying_delay < 0 or max_transactions < 1:
            raise TransactionError(
                "Bad transaction settings",
                detail=f"t1={t1} t2={t2} t4={t4} trying_delay={trying_delay}"
                f" max_transactions={max_transactions}",
            )
        self._t1, self._t2, self._t4 = t1, t2, t4
        self._trying_delay = trying_delay
        self._max = max_transactions
        self._timer_d = max(32.0, 64 * t1)
        self._transactions: dict[int, _Transaction] = {}
        self._server: dict[_Key, int] = {}
        self._client: dict[_Key, int] = {}
        self._heap: list[tuple[float, int, int, Timer]] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._events: list[TransactionEvent] = []
        self._outgoing: list[Outgoing] = []

    def __len__(self) -> int:
        """Live transactions, client and server."""
        return len(self._transactions)

    # Input from the transport --------------------------------------------

    def receive(
        self,
        message: Request | Response,
        transport: str,
        reliable: bool,
        source: Address,
        now: float,
    ) -> list[TransactionEvent]:
        """Match a parsed message to its transaction, or start one (RFC 3261 §17.1.3,
        §17.2.3). ``reliable`` is false for UDP: it decides Timers G, I and J.
        """
        if isinstance(message, Response):
            self._receive_response(message, transport, source, now)
        else:
            self._receive_request(message, transport, reliable, source, now)
        return self._take_events()

    def _receive_response(
        self, response: Response, transport: str, source: Address, now: float
    ) -> None:
        # RFC 3261 §17.1.3: the top Via branch and the CSeq method.
        branch = response.headers.top_via.branch
        key: _Key = (branch.lower(), response.headers.cseq.method) if branch else ()
        tx = self._lookup(self._client, key)
        trigger = Input.of_status(response.status)
        if tx is not None and self._fire(tx, trigger, now, response):
            return
        # A response for no transaction of ours is dropped (RFC 3261 §17.1.3 leaves it to
        # the core; relaying it along its Via would let anyone use the proxy as a
        # reflector). A 2xx to an INVITE we sent, after a non-2xx final or with Timer M
        # running out, is the core's to forward (RFC 3261 §16.7 step 5).
        if tx is not None and trigger is Input.SUCCESS and tx.kind is Kind.INVITE_CLIENT:
            self._events.append(StrayResponse(response, transport, source))

    def _receive_request(
        self, request: Request, transport: str, reliable: bool, source: Address, now: float
    ) -> None:
        tx = self._lookup(self._server, _server_key(request, request.method))
        if request.method == Method.ACK:
            if tx is None or not _acknowledges(tx, request):
                self._events.append(AckReceived(request, transport, source, None))
            else:
                self._fire(tx, Input.ACK, now, request)
            return
        if tx is not None:
            self._fire(tx, Input.REQUEST, now, request)
        elif len(self._transactions) >= self._max:
            self._refuse(request, transport, source)
        else:
            self._new_server(request, transport, reliable, source, now)

    def _new_server(
        self, request: Request, transport: str, reliable: bool, source: Address, now: float
    ) -> None:
        invite = request.method == Method.INVITE
        kind = Kind.INVITE_SERVER if invite else Kind.NON_INVITE_SERVER
        key = _server_key(request, request.method)
        tx = self._add(kind, key, request, transport, reliable, source)
        self._events.append(RequestReceived(tx.id, request, transport, source))
        if invite:
            self._start(tx, Timer.TRYING, self._trying_delay, now)

    def _refuse(self, request: Request, transport: str, source: Address) -> None:
        # RFC 3261 §8.2.7: a stateless UAS gives the same request the same To tag.
        response = request.response(
            Status.SERVICE_UNAVAILABLE,
            to_tag=stateless_tag(request.headers),
            headers=(("Retry-After", str(RETRY_AFTER)),),
        )
        self._outgoing.append(Outgoing(response, response.encode(), transport, source, None))
        self._events.append(RequestRefused(request, response))

    # Input from the TU -----------------------------------------------------

    def server_respond(
        self, tx: int, response: Response, now: float, *, stateless: bool = False
    ) -> list[TransactionEvent]:
        """Send ``response`` on server transaction ``tx`` (RFC 3261 §17.2.1, §17.2.2).

        ``stateless`` with a final response over UDP sends it once and ends the
        transaction there, as a stateless proxy answers (RFC 3261 §16.11): no
        Timer G retransmissions to a source that may be spoofed, no state held
        for Timer H or J; a retransmitted request is a new transaction, its ACK
        matches nothing. For what the proxy itself refuses or challenges.

        Raises :class:`TransactionError` when ``tx`` is not a live server
        transaction, the response is to another method, or the state takes no
        such response (a second final response; in Accepted, anything but a 2xx).
        """
        transaction = self._transactions.get(tx)
        if transaction is None or transaction.kind.is_client:
            raise TransactionError("No such server transaction", detail=str(tx))
        if response.headers.cseq.method != transaction.method:
            # RFC 3261 §8.2.6.2: a response carries its request's CSeq.
            raise TransactionError("Response to another request", detail=str(response.headers.cseq))
        if not self._fire(transaction, Input.of_status(response.status), now, response):
            raise TransactionError(
                "Response not allowed in this state",
                detail=f"{response.status} in {transaction.kind.value} {transaction.state.value}",
            )
        if (
            stateless
            and response.status >= 200
            and not transaction.reliable
            and transaction.id in self._transactions
        ):
            self._remove(transaction)
        return self._take_events()

    def client_request(
        self,
        request: Request,
        transport: str,
        reliable: bool,
        destination: Address,
        now: float,
    ) -> int:
        """Send ``request`` on a new client transaction and return its id
        (RFC 3261 §17.1.1.2, §17.1.2.2).

        The caller has pushed its own Via with a fresh RFC 3261 branch; a
        CANCEL reuses the branch of the INVITE it cancels (§9.1), which is a
        different transaction since the method differs (§17.1.3).
        """
        if request.method == Method.ACK:
            raise TransactionError("An ACK is not a transaction: send it statelessly")
        via = request.headers.top_via
        if not via.has_rfc3261_branch or via.branch is None:
            raise TransactionError("Top Via needs an RFC 3261 branch", detail=str(via))
        key: _Key = (via.branch.lower(), request.method)
        if key in self._client:
            raise TransactionError("Branch already in use", detail=str(via.branch))
        invite = request.method == Method.INVITE
        kind = Kind.INVITE_CLIENT if invite else Kind.NON_INVITE_CLIENT
        tx = self._add(kind, key, request, transport, reliable, destination)
        tx.out = self._send(tx, request)
        if not reliable:
            tx.interval = self._t1
            self._start(tx, Timer.A if invite else Timer.E, self._t1, now)
        self._start(tx, Timer.B if invite else Timer.F, 64 * self._t1, now)
        return tx.id

    def send_stateless(
        self, message: Request | Response, transport: str, destination: Address
    ) -> None:
        """Queue a message outside any transaction: an ACK for a 2xx, a stray
        2xx (RFC 3261 §16.7 step 5, §16.11).
        """
        self._outgoing.append(Outgoing(message, message.encode(), transport, destination, None))

    def transport_error(self, tx: int, now: float) -> list[TransactionEvent]:
        """The transport failed to send a message of ``tx`` (RFC 3261 §17.1.4,
        §17.2.4); ignored when ``tx`` is gone or its state has no such edge.
        """
        transaction = self._transactions.get(tx)
        if transaction is not None:
            self._fire(transaction, Input.TRANSPORT_ERROR, now)
        return self._take_events()

    def cancel_target(self, cancel: Request) -> int | None:
        """The INVITE server transaction ``cancel`` targets, if live (RFC 3261 §9.2:
        the same match as for the INVITE, the method aside).
        """
        if cancel.method != Method.CANCEL:
            raise TransactionError("Not a CANCEL", detail=cancel.method)
        tx = self._lookup(self._server, _server_key(cancel, Method.INVITE))
        return None if tx is None else tx.id

    # Timers and output -----------------------------------------------------

    def handle_timer(self, now: float) -> list[TransactionEvent]:
        """Fire every timer due at ``now``, in deadline order."""
        while self._heap and self._heap[0][0] <= now:
            deadline, seq, tx_id, timer = heapq.heappop(self._heap)
            tx = self._transactions.get(tx_id)
            if tx is None or tx.timers.get(timer, (0.0, -1))[1] != seq:
                continue  # stopped, or its transaction is gone
            del tx.timers[timer]
            self._fire(tx, timer, deadline)
        return self._take_events()

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due, or None with no timer running."""
        while self._heap:
            _, seq, tx_id, timer = self._heap[0]
            tx = self._transactions.get(tx_id)
            if tx is not None and tx.timers.get(timer, (0.0, -1))[1] == seq:
                return self._heap[0][0]
            heapq.heappop(self._heap)
        return None

    def messages_to_send(self) -> list[Outgoing]:
        """Everything queued since the last call, in order."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def state(self, tx: int) -> State | None:
        """The state of ``tx``; None once it has terminated."""
        transaction = self._transactions.get(tx)
        return None if transaction is None else transaction.state

    def deadlines(self, tx: int) -> dict[Timer, float]:
        """The running timers of ``tx`` and when each fires."""
        transaction = self._transactions.get(tx)
        timers = {} if transaction is None else transaction.timers
        return {timer: deadline for timer, (deadline, _) in timers.items()}

    # The machines ----------------------------------------------------------

    def _fire(
        self,
        tx: _Transaction,
        trigger: Trigger,
        now: float,
        message: Request | Response | None = None,
    ) -> bool:
        """Take the edge ``trigger`` leads along from the current state, if any."""
        target = TRANSITIONS.get((tx.kind, tx.state, trigger))
        if target is None:
            return False
        source, tx.state = tx.state, target
        if tx.kind is Kind.INVITE_CLIENT:
            self._invite_client(tx, source, trigger, now, message)
        elif tx.kind is Kind.NON_INVITE_CLIENT:
            self._non_invite_client(tx, source, trigger, now, message)
        elif tx.kind is Kind.INVITE_SERVER:
            self._invite_server(tx, source, trigger, now, message)
        else:
            self._non_invite_server(tx, source, trigger, now, message)
        if target is State.TERMINATED:
            self._remove(tx)
        elif target in _LINGERING:
            tx.request = None
            tx.out, tx.ack = _bare(tx.out), _bare(tx.ack)
        return True

    def _invite_client(
        self, tx: _Transaction, source: State, trigger: Trigger, now: float, message: object
    ) -> None:
        """RFC 3261 §17.1.1.2, Figure 5; RFC 6026 §7.2, §8.4."""
        if trigger is Timer.A:
            self._resend(tx.out)
            tx.interval *= 2  # no cap: the INVITE backs off until Timer B
            self._start(tx, Timer.A, tx.interval, now)
        elif trigger is Timer.B:
            self._events.append(TransactionTimeout(tx.id, Timer.B))
        elif trigger is Input.TRANSPORT_ERROR:
            self._events.append(TransportFailed(tx.id))
        elif isinstance(message, Response):
            if source is State.COMPLETED:
                self._resend(tx.ack)  # a retransmitted final response: ACK it again
                return
            self._stop(tx, Timer.A, Timer.B)
            if trigger is Input.FAILURE:
                assert tx.request is not None  # dropped only once this edge is taken
                tx.ack = self._send(tx, _ack_for(tx.request, message))
            self._events.append(ResponseReceived(tx.id, message))
            if trigger is Input.FAILURE:
                self._start(tx, Timer.D, 0 if tx.reliable else self._timer_d, now)
            elif trigger is Input.SUCCESS and source is not State.ACCEPTED:
                self._start(tx, Timer.M, 64 * self._t1, now)

    def _non_invite_client(
        self, tx: _Transaction, source: State, trigger: Trigger, now: float, message: object
    ) -> None:
        """RFC 3261 §17.1.2.2, Figure 6."""
        if trigger is Timer.E:
            self._resend(tx.out)
            # Proceeding: the server is alive, so settle at T2 at once.
            doubled = min(2 * tx.interval, self._t2)
            tx.interval = self._t2 if tx.state is State.PROCEEDING else doubled
            self._start(tx, Timer.E, tx.interval, now)
        elif trigger is Timer.F:
            self._events.append(TransactionTimeout(tx.id, Timer.F))
        elif trigger is Input.TRANSPORT_ERROR:
            self._events.append(TransportFailed(tx.id))
        elif isinstance(message, Response) and source is not State.COMPLETED:
            self._events.append(ResponseReceived(tx.id, message))
            if tx.state is State.COMPLETED:
                self._stop(tx, Timer.E, Timer.F)
                self._start(tx, Timer.K, 0 if tx.reliable else self._t4, now)

    def _invite_server(
        self, tx: _Transaction, source: State, trigger: Trigger, now: float, message: object
    ) -> None:
        """RFC 3261 §17.2.1, Figure 7; RFC 6026 §7.1, §8.5 to §8.7."""
        if trigger is Input.REQUEST:
            if source is State.ACCEPTED:
                return  # the 2xx is the UAS's to retransmit (RFC 6026 §8.7)
            if tx.out is None:
                self._trying(tx)  # the client is retransmitting: quench it now
            else:
                self._resend(tx.out)
        elif trigger is Timer.TRYING:
            if tx.out is None:
                self._trying(tx)
        elif trigger is Timer.G:
            self._resend(tx.out)
            tx.interval = min(2 * tx.interval, self._t2)
            self._start(tx, Timer.G, tx.interval, now)
        elif trigger is Timer.H:
            self._events.append(TransactionTimeout(tx.id, Timer.H))
        elif trigger is Input.TRANSPORT_ERROR:
            self._events.append(TransportFailed(tx.id))
        elif trigger is Input.ACK:
            if source is State.COMPLETED:
                self._stop(tx, Timer.G, Timer.H)
                self._start(tx, Timer.I, 0 if tx.reliable else self._t4, now)
            elif source is State.ACCEPTED and isinstance(message, Request):
                self._events.append(AckReceived(message, tx.transport, tx.peer, tx.id))
        elif isinstance(message, Response):
            self._stop(tx, Timer.TRYING)
            tx.out = self._send(tx, message)
            if trigger is Input.FAILURE:
                tx.final_to_tag = message.headers.to.tag
                if not tx.reliable:
                    tx.interval = self._t1
                    self._start(tx, Timer.G, self._t1, now)
                self._start(tx, Timer.H, 64 * self._t1, now)
            elif trigger is Input.SUCCESS and source is State.PROCEEDING:
                tx.final_to_tag = message.headers.to.tag
                self._start(tx, Timer.L, 64 * self._t1, now)

    def _non_invite_server(
        self, tx: _Transaction, source: State, trigger: Trigger, now: float, message: object
    ) -> None:
        """RFC 3261 §17.2.2, Figure 8."""
        if trigger is Input.REQUEST:
            if source is not State.TRYING:  # in Trying there is nothing to resend yet
                self._resend(tx.out)
        elif trigger is Input.TRANSPORT_ERROR:
            self._events.append(TransportFailed(tx.id))
        elif isinstance(message, Response):
            tx.out = self._send(tx, message)
            if tx.state is State.COMPLETED:
                self._start(tx, Timer.J, 0 if tx.reliable else 64 * self._t1, now)

    # Helpers ---------------------------------------------------------------

    def _add(
        self,
        kind: Kind,
        key: _Key,
        request: Request,
        transport: str,
        reliable: bool,
        peer: Address,
    ) -> _Transaction:
        state = initial_state(kind)
        tx = _Transaction(
            next(self._ids), kind, key, request.method, request, transport, reliable, peer, state
        )
        self._transactions[tx.id] = tx
        (self._client if kind.is_client else self._server)[key] = tx.id
        return tx

    def _remove(self, tx: _Transaction) -> None:
        del self._transactions[tx.id]
        del (self._client if tx.kind.is_client else self._server)[tx.key]
        tx.timers.clear()
        self._events.append(TransactionTerminated(tx.id))

    def _lookup(self, index: dict[_Key, int], key: _Key) -> _Transaction | None:
        tx_id = index.get(key)
        return None if tx_id is None else self._transactions[tx_id]

    def _start(self, tx: _Transaction, timer: Timer, delay: float, now: float) -> None:
        if delay <= 0:
            self._fire(tx, timer, now)  # "zero seconds": the edge is taken right away
            return
        seq = next(self._seq)
        tx.timers[timer] = (now + delay, seq)
        heapq.heappush(self._heap, (now + delay, seq, tx.id, timer))

    @staticmethod
    def _stop(tx: _Transaction, *timers: Timer) -> None:
        for timer in timers:
            tx.timers.pop(timer, None)  # its heap entry is skipped when it comes up

    def _send(self, tx: _Transaction, message: Request | Response) -> Outgoing:
        out = Outgoing(message, message.encode(), tx.transport, tx.peer, tx.id)
        self._outgoing.append(out)
        return out

    def _resend(self, out: Outgoing | None) -> None:
        if out is not None:
            self._outgoing.append(out)

    def _trying(self, tx: _Transaction) -> None:
        self._stop(tx, Timer.TRYING)
        # RFC 3261 §17.2.1: a 100 carries no To tag; §8.2.6.1 copies Timestamp.
        assert tx.request is not None  # in Proceeding, before any final response
        tx.out = self._send(tx, tx.request.response(Status.TRYING))

    def _take_events(self) -> list[TransactionEvent]:
        events, self._events = self._events, []
        return events


def _bare(out: Outgoing | None) -> Outgoing | None:
    """``out`` without its parsed message: what a retransmission needs."""
    if out is None or out.message is None:
        return out
    return Outgoing(None, out.data, out.transport, out.destination, out.tx)


def _server_key(request: Request, method: str) -> _Key:
    """What identifies a server transaction (RFC 3261 §17.2.3); an ACK is
    matched against the INVITE it acknowledges.
    """
    if method == Method.ACK:
        method = Method.INVITE
    headers = request.headers
    via = headers.top_via
    if via.has_rfc3261_branch and via.branch is not None:
        return ("3261", via.branch.lower(), via.host.lower(), via.port, method)
    # RFC 2543: the To tag is left out, because an ACK carries the response's.
    cseq = headers.cseq.seq
    return ("2543", str(request.uri), headers.from_.tag, headers.call_id, cseq, str(via), method)


def _acknowledges(tx: _Transaction, ack: Request) -> bool:
    """Whether ``ack`` belongs to INVITE server transaction ``tx``: always with an
    RFC 3261 branch, else when its To tag is the response's (RFC 3261 §17.2.3).
    """
    return tx.key[0] == "3261" or ack.headers.to.tag == tx.final_to_tag


def _ack_for(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
    Request-URI, Call-ID, From and Route, the response's To, the CSeq number
    with method ACK, and one Via: the INVITE's top one, so the same branch.
    """
    headers = invite.headers
    fields = [(HeaderName.VIA, headers.split(HeaderName.VIA)[0])]
    if (hops := headers.get(HeaderName.MAX_FORWARDS)) is not None:
        fields.append((HeaderName.MAX_FORWARDS, hops))
    fields.extend((HeaderName.ROUTE, route) for route in headers.get_all(HeaderName.ROUTE))
    fields += [
        (HeaderName.FROM, headers.get(HeaderName.FROM) or ""),
        (HeaderName.TO, response.headers.get(HeaderName.TO) or ""),
        (HeaderName.CALL_ID, headers.call_id),
        (HeaderName.CSEQ, f"{headers.cseq.seq} {Method.ACK}"),
    ]
    return Request(Method.ACK, invite.uri, Headers.of(fields))
