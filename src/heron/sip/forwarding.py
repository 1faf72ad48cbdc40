"""Forwarded requests: their branches, failover and CANCEL (RFC 3261 §16.6-16.11).

A request forks to one client transaction per target; the response context of
:mod:`heron.sip.proxy` picks what goes back upstream. A branch whose server
does not answer, or answers 503, fails over to the next address DNS gave
(RFC 3263 §4.3) on the same branch of the fork. ACKs for 2xx and stray 2xx
responses are forwarded statelessly. This drives the sans-IO transaction layer
only; the server hands it answers to send and sends what the layer queues.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from heron.sip.errors import SipError
from heron.sip.fields import NameAddr, Via
from heron.sip.grammar import Params
from heron.sip.headers import HeaderName, Headers
from heron.sip.locality import DEFAULT_PORTS, Locality
from heron.sip.locate import DnsTarget
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
from heron.sip.transaction import TransactionLayer
from heron.sip.uri import SipUri, Uri

__all__ = ["Flows", "Forwarder", "Target", "alias", "along"]

_ALIAS = "alias"
"""Kamailio's Contact parameter for "reach this URI over that flow" (nathelper)."""

_M = TypeVar("_M", Request, Response)

log = logging.getLogger(__name__)


class Flows(Protocol):
    """The open connections (:class:`heron.sip.transports.FlowTable`)."""

    def get(self, token: str) -> object | None: ...

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
    """A forwarded request: its server transaction and the branches it went out on."""

    server_tx: int
    request: Request
    context: ResponseContext
    clients: dict[int, tuple[str, Request, str, tuple[str, int]]]
    """client tx -> (branch, request sent, transport, destination)."""
    alternates: dict[int, tuple[Target, str]] = field(default_factory=dict)
    """client tx -> its target with the DNS targets still to try, and the inbound transport."""


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
        self._fork_counter = itertools.count(1)
        self.forwarded = 0
        self.seal: DialogSeal | None = None
        """Seals our Record-Route in dialog-creating requests, once the key is loaded."""

    def forward(
        self, tx: int, request: Request, inbound: str, targets: Sequence[Target], now: float
    ) -> None:
        """Fork ``request`` to ``targets``; 480 when none of them can be reached."""
        context = ResponseContext(request.method)
        fork = _Fork(tx, request, context, {})
        self._forks[tx] = fork
        initial = request.headers.to is None or request.headers.to.tag is None
        for target in targets:
            binding = target.binding
            if target.located:
                first = target.located[0]
                hop: tuple[str, tuple[str, int]] | None = first.transport, (first.host, first.port)
            else:
                hop = self.next_hop(target.hop, binding)
            if hop is None:
                continue
            client = self._branch(fork, inbound, target, hop, None, initial, now)
            if len(target.located) > 1:
                fork.alternates[client] = (target, inbound)
        if not fork.clients:
            self._forks.pop(tx, None)
            self._reply(tx, request, 480)
            return
        self._flush()

    def forward_stateless(self, request: Request, hop: tuple[str, tuple[str, int]]) -> None:
        """An ACK for a 2xx goes on to ``hop`` (its Route or Request-URI, RFC 3261 §16.11),
        our Route values already removed (:func:`heron.sip.proxy.preprocess`)."""
        if request.headers.max_forwards == 0:
            return
        transport, destination = hop
        via = self._via(transport, branch_id(request, next(self._fork_counter)))
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
        upstream, cancel = fork.context.received(branch, response)
        for answer in upstream:
            self._respond(fork.server_tx, answer)
        self._cancel_branches(fork, cancel, now)

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
        for answer in fork.context.timed_out(fork.clients[client][0]):
            self._respond(fork.server_tx, answer)

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
        """A transaction ended: forget the fork it served or the branch it was."""
        self._forks.pop(tx, None)
        self._client_forks.pop(tx, None)

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
    ) -> int:
        """Send one branch; ``key`` names it in the response context, a new one if None."""
        request, binding = fork.request, target.binding
        transport, destination = hop
        branch = branch_id(request, next(self._fork_counter))
        via = self._via(transport, branch)
        record_route = self._record_route(request, inbound, transport) if initial else []
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
        initial = fork.request.headers.to is None or fork.request.headers.to.tag is None
        log.info("sip: %s failed, trying %s:%d over %s", target.hop, *hop[1], hop[0])
        retry = self._branch(fork, inbound, target, hop, key, initial, now)
        if len(rest) > 1:
            fork.alternates[retry] = (target, inbound)
        return True

    def _cancel_branches(self, fork: _Fork, branches: list[str], now: float) -> None:
        for client, (branch, sent, transport, destination) in list(fork.clients.items()):
            if branch not in branches:
                continue
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
            if self._flows.get(received.flow) is not None:
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

    def _record_route(self, request: Request, inbound: str, outbound: str) -> list[NameAddr]:
        """Ours, sealed, twice when the request changes transport (RFC 5658)."""
        local = self._locality.addresses
        if inbound not in local:
            return []
        seal = () if self.seal is None else self.seal.params(request)
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
