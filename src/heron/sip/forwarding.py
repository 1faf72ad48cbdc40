"""Forwarded requests: their branches, failover and CANCEL (RFC 3261 §16.6-16.11).

A request forks to one client transaction per target; the response context of
:mod:`heron.sip.proxy` picks what goes back upstream. A branch whose server
does not answer, or answers 503, fails over to the next address DNS gave
(RFC 3263 §4.3) on the same branch of the fork. ACKs for 2xx and stray 2xx
responses are forwarded statelessly. Each SDP of a bridged branch goes
through the media bridge on its way (:mod:`heron.sip.steering`). This drives
the sans-IO transaction layer only; the server hands it answers to send and
sends what the layer queues.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from heron.sip.errors import SipError
from heron.sip.fields import NameAddr, Via
from heron.sip.grammar import Params
from heron.sip.headers import HeaderName, Headers
from heron.sip.locality import DEFAULT_PORTS, Locality
from heron.sip.locate import DnsTarget
from heron.sip.media import MediaRefused, Side
from heron.sip.message import Method, Request, Response
from heron.sip.proxy import (
    BranchState,
    ResponseContext,
    branch_id,
    forward_request,
    our_record_route,
)
from heron.sip.registrar import Binding
from heron.sip.seal import DialogSeal
from heron.sip.steering import Exchange, MediaPath, Steering
from heron.sip.transaction import TransactionLayer
from heron.sip.uri import SipUri, Uri

__all__ = ["Flows", "Forwarder", "InDialog", "Target", "alias", "along"]

InDialog = tuple[MediaPath, Side]
"""A request in a bridged dialog: the dialog's media path, and which side sent it."""

_DIALOG_GONE = (408, 481)
"""Answers to a request in a dialog that end the dialog itself (RFC 5057 §5.1)."""

_ALIAS = "alias"
"""Kamailio's Contact parameter for "reach this URI over that flow" (nathelper)."""

_M = TypeVar("_M", Request, Response)

log = logging.getLogger(__name__)


class Flows(Protocol):
    """The open connections (:class:`heron.sip.transports.FlowTable`)."""

    def held(self, token: str) -> bool: ...

    def to(self, transport: str, host: str, port: int) -> object | None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """One branch: the Request-URI to send, the URI that names the next hop, the binding,
    and where DNS says that hop is, tried in turn (RFC 3263 §4.3)."""

    uri: Uri
    hop: Uri
    binding: Binding | None
    located: tuple[DnsTarget, ...] = ()
    vetted: bool = False
    """Configured by the administrator (a static route, a click-to-call target): exempt
    from the destination policy (:mod:`heron.destinations`)."""


@dataclass
class _Fork:
    """A forwarded request: its server transaction and the branches it went out on.

    Once the final response has gone upstream the fork lives on only for 2xx
    retransmissions, forked 2xx and CANCELs of branches still pending (until the
    server transaction's Timer L or J): it then drops the received request and
    the requests its finished branches sent (:meth:`Forwarder._settle`), so they
    are not held and traced by the collector that long."""

    server_tx: int
    request: Request | None
    """None once the final response has gone upstream."""
    context: ResponseContext
    clients: dict[int, tuple[str, Request | None, str, tuple[str, int]]]
    """client tx -> (branch, request sent, transport, destination); the request is
    None once the branch is done and the final response has gone upstream."""
    alternates: dict[int, tuple[Target, str]] = field(default_factory=dict)
    """client tx -> its target with the DNS targets still to try, and the inbound transport."""
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    """branch -> its offer and answer through the media bridge, for bridged branches."""
    owns_legs: bool = False
    """An initial INVITE: its bridged branches' legs end with the branch unless answered."""
    answered: set[str] = field(default_factory=set)
    """Branches that answered 2xx: their legs now belong to the dialog (deleted by BYE)."""


class Forwarder:
    """The forks in flight, by server and by client transaction."""

    def __init__(
        self,
        layer: TransactionLayer,
        locality: Locality,
        flows: Flows,
        *,
        respond: Callable[[int, Response], None],
        reply: Callable[[int, Request, int], None],
        flush: Callable[[], None],
    ) -> None:
        """``respond`` sends a response on a server transaction, ``reply`` answers a
        request with a status, ``flush`` sends what the layer queued."""
        self._layer = layer
        self._locality = locality
        self._flows = flows
        self._respond, self._reply, self._flush = respond, reply, flush
        self._forks: dict[int, _Fork] = {}
        self._client_forks: dict[int, int] = {}
        self.fork_numbers: Iterator[int] = itertools.count(1)
        """Numbers our branches: with ``sip.workers``, each names the worker that sent it
        (:func:`heron.sip.workers.fork_numbers`)."""
        self.forwarded = 0
        self.seal: DialogSeal | None = None
        """Seals our Record-Route in dialog-creating requests, once the key is loaded."""
        self.steering: Steering | None = None
        """Puts bridged calls' SDP through the media bridge; None: no bridge."""

    def forward(
        self,
        tx: int,
        request: Request,
        inbound: str,
        targets: Sequence[Target],
        now: float,
        media: InDialog | None = None,
    ) -> None:
        """Fork ``request`` to ``targets``; 480 when none of them can be reached, the
        bridge's status when it refuses the offer. ``media``: the request is in a
        bridged dialog."""
        context = ResponseContext(request.method)
        fork = _Fork(tx, request, context, {})
        initial = request.headers.to is None or request.headers.to.tag is None
        hops = [(target, hop) for target in targets if (hop := self._first_hop(target))]
        if not hops:
            self._reply(tx, request, 480)
            return
        try:
            exchanges = self._exchanges(fork, inbound, [t for t, _ in hops], media)
        except MediaRefused as refused:
            self._reply(tx, request, refused.status)
            return
        self._forks[tx] = fork
        for (target, hop), exchange in zip(hops, exchanges, strict=True):
            client = self._branch(fork, inbound, target, hop, None, initial, now, exchange)
            if len(target.located) > 1:
                fork.alternates[client] = (target, inbound)
        self._flush()

    def _first_hop(self, target: Target) -> tuple[str, tuple[str, int]] | None:
        if target.located:
            first = target.located[0]
            return first.transport, (first.host, first.port)
        return self.next_hop(target.hop, target.binding)

    def _exchanges(
        self, fork: _Fork, inbound: str, targets: list[Target], media: InDialog | None
    ) -> list[Exchange | None]:
        """Each branch's offer through the bridge, or None where the branch is not bridged.
        When the bridge refuses an initial INVITE's offer, the
        legs it opened for the other branches go too; a refused re-offer leaves the
        dialog's leg as it was."""
        steering, request = self.steering, fork.request
        assert request is not None  # a new fork
        if steering is None:
            return [None] * len(targets)
        if media is not None:
            dialog_path, sender = media
            if request.method not in (Method.INVITE, Method.UPDATE):
                return [None] * len(targets)
            exchange = Exchange(dialog_path, sender)
            exchange.forwarded = steering.request(exchange, request)
            return [exchange, *([None] * (len(targets) - 1))]
        if request.headers.to is not None and request.headers.to.tag is not None:
            return [None] * len(targets)  # in a dialog the bridge never joined: left alone
        fork.owns_legs = True
        exchanges: list[Exchange | None] = []
        for target in targets:
            registered = target.binding.received.transport if target.binding else None
            path = steering.path(request, inbound, registered, str(next(self.fork_numbers)))
            if path is None:
                exchanges.append(None)
                continue
            exchange = Exchange(path, Side.CALLER)
            exchanges.append(exchange)
            try:
                exchange.forwarded = steering.request(exchange, request)
            except MediaRefused:
                for opened in exchanges:
                    if opened is not None:
                        steering.delete(opened.path)
                raise
        return exchanges

    def forward_stateless(self, request: Request, hop: tuple[str, tuple[str, int]]) -> None:
        """An ACK for a 2xx goes on to ``hop`` (its Route or Request-URI, RFC 3261 §16.11),
        our Route values already removed (:func:`heron.sip.proxy.preprocess`)."""
        if request.headers.max_forwards == 0:
            return
        transport, destination = hop
        via = self._via(transport, branch_id(request, next(self.fork_numbers)))
        sent = forward_request(request, target=_without_alias(request.uri), via=via)
        self._layer.send_stateless(sent, transport, destination)
        self._flush()

    def response(self, client: int, response: Response, now: float) -> None:
        """A response on a branch: to the response context, and upstream if it says so."""
        fork = self._fork_of(client)
        if fork is None:
            return
        if response.status == 503 and self._failover(fork, client, now, answered=True):
            return
        branch, _, transport, (host, port) = fork.clients[client]
        response = response.pop_via()
        if not response.headers.vias:
            return  # §16.7 step 3: with no Via left it was meant for us; never relayed
        if transport in ("ws", "wss"):
            response = alias(response, transport, host, port)
        exchange = fork.exchanges.get(branch)
        if exchange is not None:
            response = self._media_response(exchange, response)
        upstream, cancel = fork.context.received(branch, response)
        for answer in upstream:
            self._send_up(fork, answer)
        if response.status >= 200:
            self._media_final(fork, branch, response.status)
        self._cancel_branches(fork, cancel, now)
        self._settle(fork)

    @staticmethod
    def _settle(fork: _Fork) -> None:
        """After the final response upstream, drop what only forwarding and failover
        need: the received request, and the requests of branches that are done (a
        pending branch keeps its own, to build a CANCEL from)."""
        if not fork.context.final_sent:
            return
        fork.request = None
        done = fork.context.branches
        for client, (branch, sent, transport, destination) in fork.clients.items():
            if sent is not None and done.get(branch) is BranchState.DONE:
                fork.clients[client] = (branch, None, transport, destination)

    def _media_response(self, exchange: Exchange, response: Response) -> Response:
        assert self.steering is not None
        try:
            return self.steering.response(exchange, response)
        except MediaRefused as refused:
            self.steering.refused(f"a {response.status}", exchange.path, refused)
            return response

    def _media_final(self, fork: _Fork, branch: str, status: int) -> None:
        """A branch's final answer: an initial INVITE's leg lives on only if it answered
        2xx; a dialog's leg ends when the answer ends the dialog (RFC 5057)."""
        if status < 300 and fork.owns_legs:
            fork.answered.add(branch)
        elif status >= 300 and (fork.owns_legs or status in _DIALOG_GONE):
            self._delete_leg(fork, branch)

    def _delete_leg(self, fork: _Fork, branch: str) -> None:
        exchange = fork.exchanges.pop(branch, None)
        if exchange is not None and self.steering is not None:
            self.steering.delete(exchange.path)

    def stray(self, response: Response) -> None:
        """A 2xx no transaction wants: forward it to the next Via (RFC 3261 §16.7 step 5)."""
        if response.status // 100 != 2 or len(response.headers.vias) < 2:
            return
        upstream = response.pop_via()
        via = upstream.headers.top_via
        assert via is not None
        host = via.received or via.host
        port = via.rport if isinstance(via.rport, int) else (via.port or 5060)
        self._layer.send_stateless(upstream, via.transport.lower(), (host.strip("[]"), port))
        self._flush()

    def branch_failed(self, client: int, now: float) -> None:
        """A branch timed out or its transport failed: fail over, or let the context decide."""
        fork = self._fork_of(client)
        if fork is None:
            return
        if self._failover(fork, client, now, answered=False):
            return
        branch = fork.clients[client][0]
        for answer in fork.context.timed_out(branch):
            self._send_up(fork, answer)
        self._delete_leg(fork, branch)
        self._settle(fork)

    def _send_up(self, fork: _Fork, answer: Response) -> None:
        """A response upstream; the 408 the context made for a branch that timed out
        (§16.8) is a bare status, answered from the request as heron's own."""
        if HeaderName.VIA in answer.headers:
            self._respond(fork.server_tx, answer)
        else:
            assert fork.request is not None  # the context makes one only as the final
            self._reply(fork.server_tx, fork.request, answer.status)

    def cancel(self, tx: int, request: Request, now: float) -> None:
        """CANCEL (RFC 3261 §16.10): answer it, then cancel every pending branch."""
        target = self._layer.cancel_target(request)
        fork = self._forks.get(target) if target is not None else None
        if fork is None:
            self._reply(tx, request, 481)
            return
        self._reply(tx, request, 200)
        pending = [b for b, state in fork.context.branches.items() if state.value != "done"]
        self._cancel_branches(fork, pending, now)

    def terminated(self, tx: int) -> None:
        """A transaction ended: forget the fork it served or the branch it was. The legs of
        an initial INVITE's branches that did not answer 2xx go with it, whatever happened
        to them (no leg outlives its call)."""
        fork = self._forks.pop(tx, None)
        self._client_forks.pop(tx, None)
        if fork is not None and fork.owns_legs:
            for branch in [b for b in fork.exchanges if b not in fork.answered]:
                self._delete_leg(fork, branch)

    def needs_dns(self, hop: SipUri) -> bool:
        """A host name not ours, and not a browser reached over its WebSocket (see alias)."""
        host = (hop.maddr or hop.host).strip("[]")
        if _ALIAS in hop.params or hop.transport in ("ws", "wss") or self._locality.is_local(hop):
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return True
        return False

    def _fork_of(self, client: int) -> _Fork | None:
        server = self._client_forks.get(client)
        fork = self._forks.get(server) if server is not None else None
        if fork is None or client not in fork.clients:
            return None
        return fork

    def _branch(
        self,
        fork: _Fork,
        inbound: str,
        target: Target,
        hop: tuple[str, tuple[str, int]],
        key: str | None,
        initial: bool,
        now: float,
        exchange: Exchange | None,
    ) -> int:
        """Send one branch; ``key`` names it in the response context, a new one if None.
        A bridged branch carries the bridge's SDP, and its leg in our Record-Route."""
        request, binding = fork.request, target.binding
        assert request is not None  # before the final response: see _failover
        transport, destination = hop
        branch = branch_id(request, next(self.fork_numbers))
        via = self._via(transport, branch)
        media = exchange.path.param() if exchange is not None else None
        record_route = self._record_route(request, inbound, transport, media) if initial else []
        if exchange is not None and exchange.forwarded is not None:
            request = exchange.forwarded
        path = binding.path if binding is not None else ()
        sent = forward_request(
            request, target=target.uri, via=via, record_route=record_route, path=path
        )
        client = self._layer.client_request(sent, transport, transport != "udp", destination, now)
        fork.clients[client] = (key or branch, sent, transport, destination)
        self.forwarded += 1
        self._client_forks[client] = fork.server_tx
        if key is None:
            fork.context.add_branch(branch)
            if exchange is not None:
                fork.exchanges[branch] = exchange
        return client

    def _failover(self, fork: _Fork, client: int, now: float, *, answered: bool) -> bool:
        """RFC 3263 §4.3: after a 503 (``answered``), a transport error or a timeout with no
        response at all, the request goes to the next target DNS named, as a new transaction
        (a new Via branch) on the same branch of the fork. False when there is none."""
        alternate = fork.alternates.pop(client, None)
        if alternate is None:
            return False
        target, inbound = alternate
        key = fork.clients[client][0]
        state = fork.context.branches.get(key)
        if fork.context.final_sent or state is None or state is BranchState.DONE:
            return False
        if not answered and state is not BranchState.TRYING:
            return False  # a provisional came: the server is there, the call just went on
        rest = target.located[1:]
        target = replace(target, located=rest)
        hop = rest[0].transport, (rest[0].host, rest[0].port)
        del fork.clients[client]
        self._client_forks.pop(client, None)
        assert fork.request is not None  # dropped only once the final response went up
        initial = fork.request.headers.to is None or fork.request.headers.to.tag is None
        log.info("sip: %s failed, trying %s:%d over %s", target.hop, *hop[1], hop[0])
        retry = self._branch(fork, inbound, target, hop, key, initial, now, fork.exchanges.get(key))
        if len(rest) > 1:
            fork.alternates[retry] = (target, inbound)
        return True

    def _cancel_branches(self, fork: _Fork, branches: list[str], now: float) -> None:
        """CANCEL each of ``branches`` (RFC 3261 §9.1) and end its media leg: the branch
        lost the fork, or the caller gave up."""
        for client, (branch, sent, transport, destination) in list(fork.clients.items()):
            if branch not in branches or sent is None:
                continue
            if fork.owns_legs:
                self._delete_leg(fork, branch)
            fork.alternates.pop(client, None)  # a cancelled branch fails over to nowhere
            cancel = _cancel_for(sent)
            self._layer.client_request(cancel, transport, transport != "udp", destination, now)
        self._flush()

    def next_hop(self, target: Uri, binding: Binding | None) -> tuple[str, tuple[str, int]] | None:
        """The transport and address a request for ``target`` (or ``binding``) goes to;
        None when it cannot be reached (a browser whose WebSocket is gone)."""
        if binding is not None:
            received = binding.received
            if received.transport == "udp":
                return "udp", (received.host, received.port)
            if self._flows.held(received.flow):
                return received.transport, (received.host, received.port)
        if not isinstance(target, SipUri):
            return None
        flow = target.params.get(_ALIAS)
        if flow is not None and flow.count("~") == 2:
            host, port, transport = flow.split("~")
            if port.isdigit() and self._flows.to(transport, host, int(port)) is not None:
                return transport, (host, int(port))
        transport = target.transport or ("tls" if target.scheme == "sips" else "udp")
        if transport in ("ws", "wss"):
            return None  # a browser is reached only over the socket it registered on
        host = (target.maddr or target.host).strip("[]")
        return transport, (host, target.port or DEFAULT_PORTS.get(transport, 5060))

    def _via(self, transport: str, branch: str) -> Via:
        host, port = self._locality.sent_by(transport)
        via_transport = {"wss": "WSS", "ws": "WS"}.get(transport, transport.upper())
        return Via(via_transport, host, port, params=_params(branch=branch, rport=None))

    def _record_route(
        self, request: Request, inbound: str, outbound: str, media: str | None
    ) -> list[NameAddr]:
        """Ours, sealed, twice when the request changes transport (RFC 5658); ``media``
        names a bridged branch's leg (:mod:`heron.sip.steering`)."""
        local = self._locality.addresses
        if inbound not in local:
            return []
        seal = () if self.seal is None else self.seal.params(request, media)
        inner = our_record_route(*local[inbound], inbound, seal)
        if outbound == inbound or outbound not in local:
            return [inner]
        return [our_record_route(*local[outbound], outbound, seal), inner]


def along(request: Request) -> Target:
    """Loose routing: the Request-URI stays, the next hop is the top Route (§16.12)."""
    routes = request.headers.routes
    hop = routes[0].uri if routes else request.uri
    return Target(_without_alias(request.uri), hop, None)


def alias(message: _M, transport: str, host: str, port: int) -> _M:
    """The message with ``alias=host~port~transport`` on its single Contact URI.

    A browser's Contact names a made-up ``.invalid`` host (RFC 7118 §5.2);
    in-dialog requests to it come back with the alias, which says which
    WebSocket to use, as Kamailio's add_contact_alias()/handle_ruri_alias() do.
    """
    try:
        contacts = message.headers.contacts
    except SipError:
        return message
    if len(contacts) != 1 or not isinstance(contacts[0].uri, SipUri):
        return message
    uri = contacts[0].uri
    marked = replace(uri, params=uri.params.set(_ALIAS, f"{host}~{port}~{transport}"))
    headers = message.headers.replace(HeaderName.CONTACT, str(replace(contacts[0], uri=marked)))
    return replace(message, headers=headers)


def _without_alias(uri: Uri) -> Uri:
    if isinstance(uri, SipUri) and _ALIAS in uri.params:
        return replace(uri, params=uri.params.remove(_ALIAS))
    return uri


def _params(**values: str | None) -> Params:
    params = Params()
    for name, value in values.items():
        params = params.set(name, value)
    return params


def _cancel_for(sent: Request) -> Request:
    """CANCEL for a request we sent (RFC 3261 §9.1): same Request-URI, Call-ID,
    From, To, CSeq number, Route and top Via."""
    headers = sent.headers
    cseq = headers.cseq
    assert cseq is not None and headers.top_via is not None
    lines: list[tuple[str, str]] = [(HeaderName.VIA, str(headers.top_via))]
    for name in (HeaderName.FROM, HeaderName.TO, HeaderName.CALL_ID):
        value = headers.get(name)
        if value is not None:
            lines.append((name, value))
    lines.append((HeaderName.CSEQ, f"{cseq.seq} CANCEL"))
    lines += [(HeaderName.ROUTE, v) for v in headers.get_all(HeaderName.ROUTE)]
    lines.append((HeaderName.MAX_FORWARDS, "70"))
    return Request(Method.CANCEL, sent.uri, Headers.of(lines))
