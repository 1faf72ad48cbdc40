"""The SIP component: transports, transaction layer, registrar and proxy wired together.

This is the one SIP module that does I/O and looks things up: it owns the
sockets and timers, feeds the sans-IO transaction layer, and looks up accounts,
bindings and DNS. What Kamailio's default configuration does with WITH_AUTH and
WITH_USRLOCDB, in that order: sanity, loops, loose routing (only within dialogs
heron sealed, :mod:`heron.sip.seal`), registrar with digest authentication
(:mod:`heron.sip.admission`), then location lookup (:mod:`heron.sip.bindings`) and
forking (:mod:`heron.sip.forwarding`) to the destinations the policy allows
(:mod:`heron.destinations`). heron's own refusals over UDP go statelessly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any

from heron.accounts import AccountChange, Missing
from heron.component import Listener, Services
from heron.config import Config, ListenAddress
from heron.control import View
from heron.credentials import load_or_create_secret
from heron.destinations import Destinations, own_addresses
from heron.errors import ConfigError, HeronError, listen_error
from heron.guesses import account_key
from heron.handoff import AcceptedSockets, Handoff
from heron.inherit import hand_out, inherited_socket, worker_index
from heron.listeners import Accepting, Rebinding, Where
from heron.ratelimit import FloodGuard
from heron.sip.admission import Admission, Refusal, public_targets
from heron.sip.bindings import BindingCache
from heron.sip.digest import StoredHa1
from heron.sip.echo import EchoNumber
from heron.sip.errors import SipError
from heron.sip.forwarding import Forwarder, InDialog, Target, alias, along
from heron.sip.locality import Locality
from heron.sip.media import MediaBridge, MediaRefused
from heron.sip.message import Method, Request, Response
from heron.sip.parser import Event, MessageLimits, Ping
from heron.sip.proxy import is_loop, preprocess
from heron.sip.registrar import (
    Binding,
    BindingSource,
    LocationStore,
    Registrar,
    lookup_targets,
)
from heron.sip.seal import DialogSeal
from heron.sip.steering import Steering, in_dialog
from heron.sip.transaction import (
    AckReceived,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)
from heron.sip.transports import FlowTable, SipDatagrams, SipStream, Source, websocket_handler
from heron.sip.transports.dns import SipLocator
from heron.sip.transports.guard import StreamGuard
from heron.sip.transports.listener import UdpAndTcp
from heron.sip.transports.reuseport import bind_udp_group
from heron.sip.transports.sharing import Sharing, flow_suffix
from heron.sip.uri import SipUri, Uri, parse_uri
from heron.sip.workers import fork_numbers
from heron.udp_listener import report_buffers

__all__ = ["SipComponent", "build_sip"]

CAPABILITIES = (
    ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, INFO, UPDATE, PRACK"),
    ("Accept", "application/sdp, text/plain"),
    ("Supported", "path, outbound"),
)
"""What an OPTIONS to heron itself is told (RFC 3261 §11.2): the methods it proxies and
registers, bodies it passes, and the extensions of its registrar (RFC 3327, RFC 5626)."""

LIVE_KEYS = frozenset(
    {
        "sip.routes",
        "sip.trusted_peers",
        "sip.allowed_destinations",
        "sip.open_federation",
        "sip.flood_exempt",
        "web.click_to_call",
    }
)
"""What :meth:`SipComponent.apply` takes from a reloaded configuration."""

LOCAL_TAG = "hr"
"""Starts the To tag of every response heron makes itself, so that the ACK for a refusal
sent statelessly is known for what it is and absorbed quietly."""

Dialog = tuple[Request, tuple[Uri, ...], str, str | None]
"""An in-dialog request, the Route values of ours it carried, its caller's tag and its
media leg when the dialog is bridged (:mod:`heron.sip.steering`)."""

MAX_TRANSACTIONS = 500_000
"""About 1 KiB each: half a gigabyte at most, 15,000 requests/s for 32 s."""
SWEEP_SECONDS = 30.0
TIMER_TICK = 0.01
"""Transaction timers fire up to this late (10 ms against T1's 500)."""
FLUSH_SECONDS = 1.0

log = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def _is_address(host: str) -> bool:
    """An IP address, which needs no DNS lookup (asked for every datagram sent)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def build_sip(
    services: Services, location: LocationStore, media: MediaBridge | None = None
) -> SipComponent | None:
    """The SIP component, steering ``media`` (the media bridge, when heron has one)."""
    if not services.config.sip.enabled:
        return None
    return SipComponent(services, location, media=media)


class SipComponent:
    """SIP proxy and registrar over UDP, TCP, TLS and WebSocket."""

    def __init__(
        self,
        services: Services,
        location: LocationStore,
        clock: Callable[[], float] = time.time,
        *,
        media: MediaBridge | None = None,
    ) -> None:
        """``location`` is where bindings persist, behind the in-memory cache; ``media`` is
        the media bridge the proxy steers (None: SDP passes untouched, as without one)."""
        self._services = services
        self._config = services.config
        self._clock = clock
        self._limits = MessageLimits()
        # Finished transactions linger 32 s over UDP (Timers J, L, M): the table must
        # hold rate x 32 s of them, or a busy server refuses everything with 503.
        self._layer = TransactionLayer(max_transactions=MAX_TRANSACTIONS)
        shared = services.shared
        self._sharing = (
            None if shared is None else Sharing(shared, self._config, services.node, worker_index())
        )
        """With ``redis.url``: this process among the SIP workers and nodes."""
        sharing = self._sharing
        self._flows = (
            FlowTable()
            if sharing is None
            else FlowTable(flow_suffix(sharing.me), elsewhere=sharing)
        )
        self._udp: list[SipDatagrams] = []
        self._servers: list[asyncio.Server] = []
        """With ``sip.workers``: listeners shared with the workers (a restart moves them)."""
        self._listening: Rebinding[Accepting | UdpAndTcp] = Rebinding("sip")
        self._take: Handoff | None = None
        self._accepted = AcceptedSockets("sip")
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._refused = 0
        self._counters: dict[str, int] = dict.fromkeys(("requests", "registrations"), 0)
        sip = self._config.sip
        own_listeners = sip.listen + sip.tls_listen + self._config.mux.listen
        self._locality = Locality(
            [self._config.sip_domain, *sip.aliases], own_listeners, self._config.host_name
        )
        self._forwarder = Forwarder(
            self._layer,
            self._locality,
            self._flows,
            respond=self._respond,
            reply=self._reply,
            flush=self._flush,
        )
        if self._sharing is not None:
            self._forwarder.fork_numbers = fork_numbers(self._sharing.index, self._sharing.count)
        self._media = media
        if media is not None:
            self._forwarder.steering = Steering(media, sip.media_relay)
        self._echo: EchoNumber | None = None
        self._registrar = Registrar(
            default_expires=sip.max_expires,
            min_expires=sip.min_expires,
            max_expires=sip.max_expires,
            max_contacts=sip.max_contacts,
        )
        self._bindings = BindingCache(location)
        guards = services.guards
        self._guard = StreamGuard(
            guards.connections,
            guards.policy.handshake_timeout,
            guards.policy.idle_timeout,
            carries=self._bindings.carries,
        )
        self._locator = SipLocator(services.resolver)
        services.accounts.subscribe(self._account_changed)
        self._flood = FloodGuard(
            sip.flood_rate,
            sip.flood_burst,
            sip.flood_ban,
            exempt=[*sip.flood_exempt, *sip.trusted_peers],
            on_ban=None if self._sharing is None else self._sharing.banned,
        )
        self._own_listeners = own_listeners
        self._own: list[str] = []
        """heron's addresses found at start (:meth:`_find_own_addresses`)."""
        # Parsed here, so a bad click-to-call target stops the build, not a call.
        self._routes, self._public, self._destinations = self._policy(self._config)
        self._listen_ports = frozenset(a.port for a in own_listeners)
        self._seal = DialogSeal(b"\0" * 32)  # replaced by the data directory's key at start
        self._unsealed = 0
        self._internal_refused = 0

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> Sequence[Listener]:
        config, sip = self._config, self._config.sip
        loop = asyncio.get_running_loop()
        key = load_or_create_secret(config.sip_secret_path)
        self._seal = self._forwarder.seal = DialogSeal(key)
        if self._media is not None and sip.echo:
            self._echo = EchoNumber(sip.echo, self._media, key, LOCAL_TAG)
        await self._find_own_addresses()
        self._admission = Admission(
            config,
            self._locality,
            key,
            self._public,
            guesses=self._services.guards.guesses,
            shared=None if self._sharing is None else self._sharing.guesses,
            ha1_for=self._ha1_for,
            random=secrets.token_bytes,
            web_phone=self._services.web_phone,
        )
        listeners: list[Listener] = []
        for address in config.mux.listen:
            # Plain SIP on the mux port is recognised by its request line, so a Record-Route
            # naming it is reachable from every network, hotels' included; TLS there needs a
            # server name the mux maps to SIP, so TLS stays on sip.tls_listen when there is one.
            self._locality.advertise("tcp", address)
        take = self._take = self._handoff()
        if config.sip_workers > 1:
            for address in sip.listen:
                listeners.append(await self._listen_udp(loop, address))
                listeners.append(await self._listen_stream(loop, "tcp", "sip.listen", address))
            for address in sip.tls_listen:
                listeners.append(await self._listen_stream(loop, "tls", "sip.tls_listen", address))
        else:
            await self._listening.start(self._wanted(config))
            for address in sip.listen:
                self._locality.advertise("udp", address)
                self._locality.advertise("tcp", address)
                listeners += [
                    Listener("sip", f"udp://{address}"),
                    Listener("sip", f"tcp://{address}"),
                ]
            for address in sip.tls_listen:
                self._locality.advertise("tls", address)
                listeners.append(Listener("sip", f"tls://{address}"))
        if config.mux.listen:
            self._services.handoffs["sip"] = take
            for address in config.mux.listen:
                self._locality.advertise("tls", address)  # when SIP has no TLS listener
        if sip.websocket and config.web.enabled:
            handler = websocket_handler(self._receive, self._flows, self._limits, self._guard)
            self._services.web_routes.append(("/sip", handler))
            for address in config.web.listen:
                self._locality.advertise("wss", address)
                listeners.append(Listener("sip", f"wss://{address}/sip"))
            for address in config.mux.listen:  # the web's, when it has no listener of its own
                self._locality.advertise("wss", address)
        await self._load_bindings()
        self._spawn(self._sweep())
        self._spawn(self._write_behind())
        return listeners

    async def _load_bindings(self) -> None:
        """From Redis when it has them (another process or node is serving), else from the
        database, into Redis too; then the bus tells this process of every change."""
        sharing = self._sharing
        if sharing is None:
            await self._bindings.load(self._clock())
            return
        shared = await sharing.load()
        if shared is None:
            await sharing.location.fill(await self._bindings.load(self._clock()))
        else:
            self._bindings.fill(shared)
        by_aor: dict[str, list[Binding]] = {}
        for binding in self._bindings.live(self._clock()):
            by_aor.setdefault(binding.aor, []).append(binding)
        for aor, bindings in by_aor.items():
            sharing.learn(aor, bindings)
        await sharing.start(self._receive, self._flows, self._bindings, self._ban)

    async def _find_own_addresses(self) -> None:
        """heron's own addresses, which no forwarded request may reach: the host's
        interfaces', its host name's and the IP addresses among ``sip.aliases``, besides
        the listeners' (best effort). A wildcard listener answers on every interface
        address, so a Request-URI or Route naming one of them names heron (a desk phone
        registering to the server's IP address)."""
        own = await own_addresses(self._config.host_name, self._config.sip.aliases)
        self._own = list(own)
        self._destinations.add_own(own)
        sip = self._config.sip
        if any(a.host in ("0.0.0.0", "::") for a in sip.listen + sip.tls_listen):
            self._locality.add_hosts(own)

    def _policy(
        self, config: Config
    ) -> tuple[list[tuple[re.Pattern[str], str]], dict[str, SipUri], Destinations]:
        """Static routes, click-to-call targets and the destinations they open, from
        ``config``; ConfigError names a target that is no SIP URI or a user pattern that
        is no regular expression."""
        sip = config.sip
        public = public_targets(config.web.click_to_call)
        try:
            configured = [*(parse_uri(route.target) for route in sip.routes), *public.values()]
        except SipError as exc:
            raise ConfigError(f"sip.routes: {exc}") from None
        destinations = Destinations(
            [*sip.trusted_peers, *sip.allowed_destinations],
            hosts=[(u.maddr or u.host) for u in configured if isinstance(u, SipUri)],
            own=[address.host for address in self._own_listeners],
        )
        destinations.add_own(self._own)
        try:
            routes = [(re.compile(route.user), route.target) for route in sip.routes]
        except re.error as exc:
            problem = f"{exc.pattern!r} is not a regular expression: {exc}"
            raise ConfigError(f"sip.routes: {problem}") from None
        return routes, public, destinations

    def apply(self, config: Config) -> frozenset[str]:
        """Routes, trusted peers, allowed destinations, open federation and click-to-call
        names, from the next request on; bindings, transactions and dialogs stay. The
        listeners: new addresses open (ListenError if one cannot: nothing changes), removed
        ones stop accepting while their connections go on (a removed UDP socket closes:
        :mod:`heron.sip.transports.listener`), and new transactions' Via and Record-Route
        name the new first ones; with ``sip.workers`` they are the workers' too, and a
        restart moves them."""
        policy = self._policy(config)
        live = LIVE_KEYS
        if self._config.sip_workers == 1:
            self._rebind(config)
            live |= {"sip.listen", "sip.tls_listen"}
        self._routes, self._public, self._destinations = policy
        sip = config.sip
        self._flood.exempt([*sip.flood_exempt, *sip.trusted_peers])
        self._admission.retarget(sip.trusted_peers, sip.open_federation, self._public)
        return live

    def _rebind(self, config: Config) -> None:
        listen, tls_listen = config.sip.listen, config.sip.tls_listen
        self._listening.apply(self._wanted(config))
        self._own_listeners = [*self._own_listeners, *listen, *tls_listen]  # old ones stay ours
        mux = self._config.mux.listen
        self._locality.rebind("udp", listen)
        self._locality.rebind("tcp", [*mux, *listen])
        self._locality.rebind("tls", [*tls_listen, *mux])
        if self._config.sip.websocket and self._config.web.enabled:  # web.listen moves too
            self._locality.rebind("wss", [*config.web.listen, *mux])
        self._listen_ports |= {address.port for address in [*listen, *tls_listen]}

    def _wanted(self, config: Config) -> dict[Where, Callable[[], Accepting | UdpAndTcp]]:
        take = self._take
        assert take is not None
        datagrams = partial(SipDatagrams, self._receive, self._limits)
        both: dict[Where, Callable[[], Accepting | UdpAndTcp]] = {
            ("sip.listen", address): partial(UdpAndTcp, address, datagrams, take, self._udp)
            for address in config.sip.listen
        }
        return both | {
            ("sip.tls_listen", address): partial(Accepting, "sip", address, take, tls=True)
            for address in config.sip.tls_listen
        }

    async def stop(self) -> None:
        # Take no more requests first: one arriving during the awaits below would start
        # a task nothing cancels, whose Redis commands then meet the closed client.
        for server in self._servers:
            server.close()
        self._listening.close()
        self._accepted.close()
        for udp in self._udp:
            udp.close()
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._bindings.flush()
        if self._sharing is not None:
            await self._sharing.stop()
        self._flows.close_all()

    def views(self) -> Mapping[str, View]:
        return {"sip.registrations": self._registration_rows, "sip.counters": self._counter_rows}

    def _counter_rows(self) -> list[dict[str, Any]]:
        return [
            {
                **self._counters,
                "auth_challenges": self._admission.challenges,
                "auth_failures": self._admission.failures,
                "forwarded": self._forwarder.forwarded,
                "bindings": len(self._bindings),
                "transactions": len(self._layer),
                "connections": len(self._flows),
                "flood_bans": self._flood.banned_total,
                "connections_closed": self._guard.closed,
                "unsealed_refused": self._unsealed,
                "internal_refused": self._internal_refused,
                **({} if self._sharing is None else self._sharing.relayed),
            }
        ]

    def _registration_rows(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {
                "aor": binding.aor,
                "contact": binding.contact,
                "expires_in": binding.expires_in(now),
                "transport": binding.received.transport,
                "source": f"{binding.received.host}:{binding.received.port}",
                "user_agent": binding.user_agent or "",
            }
            for binding in self._bindings.live(now)
        ]

    async def _listen_udp(
        self, loop: asyncio.AbstractEventLoop, address: ListenAddress
    ) -> Listener:
        name = f"udp://{address}"
        sock = inherited_socket(name)
        if sock is None:  # the main process: it binds every worker's member too
            group = bind_udp_group(address, self._config.sip_workers)
            sock = hand_out(name, group, self._services.sip_worker_sockets)
        report_buffers("sip", name, sock)
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: SipDatagrams(self._receive, self._limits), sock=sock
            )
        except OSError as exc:
            raise listen_error("sip.listen", address, exc) from None
        self._udp.append(protocol)
        self._locality.advertise("udp", address)
        return Listener("sip", name)

    async def _listen_stream(
        self, loop: asyncio.AbstractEventLoop, kind: str, key: str, address: ListenAddress
    ) -> Listener:
        context = None
        if kind == "tls":
            context = self._services.certificate.context(alpn=("sip/2",))
        try:
            server = await loop.create_server(
                lambda: self._stream(kind),
                address.host,
                address.port,
                ssl=context,
                ssl_handshake_timeout=self._guard.handshake_timeout if context else None,
                reuse_port=self._config.sip_workers > 1,
            )
        except OSError as exc:
            raise listen_error(key, address, exc) from None
        self._servers.append(server)
        self._locality.advertise(kind, address)
        return Listener("sip", f"{kind}://{address}")

    def _handoff(self) -> Handoff:
        """SIP over TCP or TLS on a connection the port-443 mux accepted."""
        context = self._services.certificate.context(alpn=("sip/2",))

        def take(sock: socket.socket, tls: bool) -> None:
            kind = "tls" if tls else "tcp"
            self._accepted.serve(
                lambda: self._stream(kind),
                sock,
                context if tls else None,
                self._guard.handshake_timeout,
            )

        return take

    def _stream(self, kind: str, *, accepted: bool = True) -> SipStream:
        return SipStream(
            kind,
            self._flows.token(kind),
            self._receive,
            self._limits,
            on_open=lambda s: self._flows.add(s, s.remote),
            on_close=lambda s: self._flows.remove(s, s.remote),
            guard=self._guard,
            accepted=accepted,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sip: request handling failed", exc_info=task.exception())

    async def _write_behind(self) -> None:
        """Bindings reach the database within FLUSH_SECONDS, and at a clean stop."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self._bindings.flush()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            removed = await self._bindings.sweep(self._clock())
            if removed:
                log.info("sip: %d expired binding(s) removed", removed)

    # --- transaction layer plumbing -------------------------------------------------

    def _receive(self, event: Event, source: Source) -> None:
        if isinstance(event, Ping):
            return
        if isinstance(event, Request):
            if not self._flood.allow(self._flood_key(source), self._clock()):
                return  # a flooding source: dropped unanswered, as pike does
            self._counters["requests"] += 1
            # RFC 3261 §18.2.1, RFC 3581 §4: the responses tell a phone behind NAT
            # the address and port its request came from.
            event = event.received_from(source.host, source.port)
        elif self._sharing is not None and self._sharing.elsewhere(event, source):
            return  # a response to a branch of another worker's: it went there
        events = self._layer.receive(
            event, source.transport, source.reliable, (source.host, source.port), self._clock()
        )
        self._dispatch(events, source)

    def _ban(self, source: str, until: float) -> None:
        """A ban another SIP process or node started (pike's counts stay per process)."""
        self._flood.ban(source, until, self._clock())

    def _flood_key(self, source: Source) -> str:
        """Who the flood guard counts: the source address, but heron's own sockets apart
        and never exempt, so that a message looping through heron (loopback is exempt by
        default) is held to the rate too, besides loop detection and Max-Forwards."""
        if source.port in self._listen_ports and self._destinations.is_own(source.host):
            return f"heron {source.host}"
        return source.host

    def _dispatch(self, events: list[TransactionEvent], source: Source | None = None) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                assert source is not None
                self._spawn(self._request(event.tx, event.request, source))
            elif isinstance(event, AckReceived):
                self._ack(event.request, event.transport, event.source)
            elif isinstance(event, ResponseReceived):
                self._forwarder.response(event.tx, event.response, self._clock())
            elif isinstance(event, StrayResponse):
                self._forwarder.stray(event.response)
            elif isinstance(event, TransactionTimeout | TransportFailed):
                self._forwarder.branch_failed(event.tx, self._clock())
            elif isinstance(event, RequestRefused):
                self._refused += 1
                if self._refused in (1, 100) or self._refused % 10_000 == 0:
                    log.warning("sip: transaction table full: %d request(s) refused", self._refused)
            elif isinstance(event, TransactionTerminated):
                self._forwarder.terminated(event.tx)
        self._flush()

    def _flush(self) -> None:
        for out in self._layer.messages_to_send():
            self._send(out.data, out.transport, out.destination, out.tx)
        self._schedule()

    def _schedule(self) -> None:
        deadline = self._layer.next_timer()
        if deadline is not None:
            # Up to the next tick: the timers due within one (Timers J and L of every
            # transaction that ended within it, most often) take one wake-up, not one each.
            deadline = math.ceil(deadline / TIMER_TICK) * TIMER_TICK
        if self._timer is not None:
            if deadline == self._timer_at:
                return  # most messages start timers later than the earliest one
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer_at = deadline
            delay = max(0.0, deadline - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch(self._layer.handle_timer(self._clock()))

    def _send(
        self, data: bytes, transport: str, destination: tuple[str, int], tx: int | None
    ) -> None:
        flow = self._flows.to(transport, *destination)
        if flow is not None:
            flow.send(data)
        elif transport == "udp" and self._udp:
            if not _is_address(destination[0]):
                log.info("sip: %s needs DNS (RFC 3263), not done yet: dropped", destination[0])
                return
            self._udp[0].sendto(data, destination)
        elif transport in ("tcp", "tls"):
            self._spawn(self._connect_and_send(data, transport, destination, tx))
        elif tx is not None:
            self._dispatch(self._layer.transport_error(tx, self._clock()))

    async def _connect_and_send(
        self, data: bytes, transport: str, destination: tuple[str, int], tx: int | None
    ) -> None:
        loop = asyncio.get_running_loop()
        context = None
        if transport == "tls":
            context = ssl.create_default_context()
        try:
            _, stream = await asyncio.wait_for(
                loop.create_connection(
                    lambda: self._stream(transport, accepted=False), *destination, ssl=context
                ),
                timeout=10,
            )
        except (OSError, TimeoutError) as exc:
            log.info("sip: cannot reach %s:%s over %s: %s", *destination, transport, exc)
            if tx is not None:
                self._dispatch(self._layer.transport_error(tx, self._clock()))
            return
        stream.send(data)

    def _respond(self, tx: int, response: Response, *, stateless: bool = False) -> None:
        try:
            events = self._layer.server_respond(tx, response, self._clock(), stateless=stateless)
        except SipError as exc:
            log.debug("sip: response dropped: %s", exc)
            return
        self._dispatch(events)

    def _reply(
        self,
        tx: int,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """heron answers ``request`` itself. A refusal or challenge over UDP goes once and
        statelessly, as Kamailio's sl_send_reply: a 407 to a spoofed source is not sent
        again and again until Timer H (reflection), and holds no transaction."""
        tag = None if status == 100 else LOCAL_TAG + secrets.token_hex(6)
        response = request.response(status, reason, to_tag=tag, headers=headers)
        self._respond(tx, response, stateless=status >= 300)

    # --- requests -------------------------------------------------------------------

    async def _request(self, tx: int, request: Request, source: Source) -> None:
        try:
            await self._route(tx, request, source)
        except SipError as exc:
            log.debug(
                "sip: %s from %s:%d refused: %s", request.method, source.host, source.port, exc
            )
            self._reply(tx, request, 400, "Bad Request")

    async def _route(self, tx: int, request: Request, source: Source) -> None:
        if request.method == Method.CANCEL:
            self._forwarder.cancel(tx, request, self._clock())
            return
        hops = request.headers.max_forwards
        if hops == 0:
            self._reply(tx, request, 483)
            return
        if is_loop(request, self._sent_by()):
            self._reply(tx, request, 482)
            return
        routed, ours = preprocess(request, self._locality.is_me)
        request = routed
        to = request.headers.to
        if to is not None and to.tag is not None and self._echo and self._echo.ours(request):
            self._answer_echo(tx, request, source)
            return
        if to is not None and to.tag is not None:
            # In-dialog (RFC 3261 §12.2): it follows the route set we recorded, as
            # Kamailio's loose_route() does, but only in a dialog we sealed.
            sealed = self._seal.dialog(request, ours)
            if sealed is None and not self._admission.trusted(source.host):
                self._refuse_unsealed(request.method, source.host, source.port)
                self._reply(tx, request, 481)
                return
            dialog = (request, ours, *sealed) if sealed is not None else None
            media, steering = self._in_dialog(dialog), self._forwarder.steering
            if media is not None and steering is not None and request.method == Method.BYE:
                # rtpengine_delete() on BYE: the call is over wherever the BYE gets to.
                steering.delete(media[0])
            await self._forward_located(tx, request, source, along(request), dialog)
            return
        if request.headers.routes:
            # A Route to somewhere else, from a client that may use us as outbound proxy:
            # its From is bound to the credentials, as on every other path.
            if await self._from_authenticated(tx, request, source):
                await self._forward_located(tx, request, source, along(request))
            return
        uri = request.uri
        if request.method == Method.OPTIONS and self._locality.is_server(uri):
            # A health check (sipsak -s, a PBX's qualify, a trunk's keep-alive): heron
            # answers for itself, as Kamailio does (RFC 3261 §11.2).
            self._reply(tx, request, 200, headers=CAPABILITIES)
            return
        if request.method == Method.REGISTER:
            if not (isinstance(uri, SipUri) and self._locality.is_local(uri)):
                self._reply(tx, request, 403, "Not Our Domain")
                return
            await self._register(tx, request, source)
            return
        if (
            request.method == Method.INVITE
            and self._echo is not None
            and self._echo.called(uri)
            and isinstance(uri, SipUri)
            and self._locality.is_local(uri)
        ):
            await self._call_echo(tx, request, source)
            return
        admitted = await self._admission.admit(
            request, source.transport, source.host, self._clock()
        )
        if isinstance(admitted, Refusal):
            self._refuse(tx, request, admitted)
            return
        vetted = admitted is not request  # a click-to-call name's configured target
        request = admitted
        uri = request.uri
        if not isinstance(uri, SipUri):
            self._reply(tx, request, 416)
            return
        if uri.user is None and self._locality.is_me(uri):
            self._reply(tx, request, 404)
            return
        if not self._locality.is_local(uri):
            target = Target(uri, uri, None, vetted=vetted)
            await self._forward_located(tx, request, source, target)
            return
        targets = await self._targets(uri)
        if targets is None:
            self._reply(tx, request, 404)
        elif not targets:
            self._reply(tx, request, 480)
        elif targets[0].binding is None:
            # A configured route: its target may be a host name (RFC 3263 again).
            await self._forward_located(tx, request, source, targets[0])
        else:
            self._forward(tx, request, source, targets)

    async def _call_echo(self, tx: int, request: Request, source: Source) -> None:
        """The echo number answers users only, by digest or a web phone's grant: for a
        stranger it would make heron send media wherever an SDP says."""
        if await self._from_authenticated(tx, request, source):
            self._reply(tx, request, 100)
            self._answer_echo(tx, request, source)

    async def _from_authenticated(self, tx: int, request: Request, source: Source) -> bool:
        """The request's From names the user who answered the challenge; False after
        answering it (401/407, or 403 for another user's From)."""
        user = await self._authenticate(tx, request, source)
        if user is None:
            return False
        refusal = self._admission.from_mismatch(request, user)
        if refusal is not None:
            self._refuse(tx, request, refusal)
            return False
        return True

    def _answer_echo(self, tx: int, request: Request, source: Source) -> None:
        assert self._echo is not None
        host, port = self._locality.sent_by(source.transport)
        scheme = "sips" if source.transport == "tls" else "sip"
        where = "" if source.transport == "udp" else f";transport={source.transport}"
        contact = f"<{scheme}:{self._echo.number}@{host}:{port}{where}>"
        try:
            response = self._echo.answer(request, contact)
        except MediaRefused as refused:
            self._reply(tx, request, refused.status)
            return
        self._respond(tx, response)

    def _sent_by(self) -> list[str]:
        return [f"{h}:{p}" for h, p in self._locality.addresses.values()]

    def _ack(self, request: Request, transport: str, source: tuple[str, int]) -> None:
        """An ACK no transaction absorbed (for a 2xx, RFC 3261 §16.11): forwarded
        statelessly within a dialog we sealed, by the same rules as any request: Max-Forwards,
        loops and the destination policy. Anything else is dropped unanswered."""
        to = request.headers.to
        if to.tag is not None and to.tag.startswith(LOCAL_TAG):
            return  # the ACK for a refusal heron sent statelessly (RFC 3261 §17.2.1)
        if request.headers.max_forwards == 0:
            return
        if is_loop(request, self._sent_by()):
            log.info("sip: ACK from %s:%d looped back to heron: dropped", *source)
            return
        routed, ours = preprocess(request, self._locality.is_me)
        sealed = self._seal.dialog(routed, ours) if to.tag is not None else None
        if sealed is None and not self._admission.trusted(source[0]):
            self._refuse_unsealed(Method.ACK, *source)
            return
        target = along(routed)
        hop = self._forwarder.next_hop(target.hop, None)
        if hop is None:
            return
        dialog = (routed, ours, *sealed) if sealed is not None else None
        if not self._permitted(hop, dialog):
            self._refuse_destination(Method.ACK, source[0], hop)
            return
        media = self._in_dialog(dialog)
        steering = self._forwarder.steering
        if media is not None and steering is not None:
            try:
                routed = steering.ack(*media, routed)
            except MediaRefused as refused:
                steering.refused("an ACK", media[0], refused)
        self._forwarder.forward_stateless(routed, hop)

    def _in_dialog(self, dialog: Dialog | None) -> InDialog | None:
        """The media path of a request in a bridged dialog, and which side sent it."""
        if dialog is None or self._forwarder.steering is None:
            return None
        request, _, caller, media = dialog
        return in_dialog(request, caller, media)

    def _refuse_unsealed(self, method: str, host: str, port: int) -> None:
        self._unsealed += 1
        if self._unsealed in (1, 100) or self._unsealed % 10_000 == 0:
            log.warning(
                "sip: %s from %s:%d in a dialog heron did not record-route refused (%d so far)",
                method,
                host,
                port,
                self._unsealed,
            )

    def _permitted(self, hop: tuple[str, tuple[str, int]], dialog: Dialog | None) -> bool:
        """The destination policy (:mod:`heron.destinations`): a public address, an
        allowed one, a registered phone's, a connection the peer opened to us, or the
        Contact of the caller of a dialog we sealed."""
        transport, (host, port) = hop
        if not self._destinations.internal(host):
            return True
        if transport != "udp" and self._flows.to(transport, host, port) is not None:
            return True
        if self._bindings.reaches(host, port):
            return True
        if dialog is not None:
            request, ours, caller, _ = dialog
            return self._seal.reaches_caller(request, ours, caller, host, port)
        return False

    def _refuse_destination(self, method: str, host: str, hop: tuple[str, tuple[str, int]]) -> None:
        self._internal_refused += 1
        if self._internal_refused not in (1, 100) and self._internal_refused % 10_000:
            return
        transport, (to_host, to_port) = hop
        log.warning(
            "sip: %s from %s to %s:%d over %s refused: an internal address "
            "(sip.allowed_destinations); %d so far",
            method,
            host,
            to_host,
            to_port,
            transport,
            self._internal_refused,
        )

    async def _forward_located(
        self,
        tx: int,
        request: Request,
        source: Source,
        target: Target,
        dialog: Dialog | None = None,
    ) -> None:
        """Forward to a hop DNS must find (RFC 3263): another domain, or a host name in a
        Route or Contact. No records: 404; lookups failing: 503 (the caller may try later)."""
        hop = target.hop
        if isinstance(hop, SipUri) and self._forwarder.needs_dns(hop):
            located = await self._locator.locate(hop)
            if not located.targets:
                reason = "DNS Lookup Failed" if located.failed else "Domain Not Found"
                self._reply(tx, request, 503 if located.failed else 404, reason)
                return
            target = replace(target, located=located.targets)
        self._forward(tx, request, source, [target], dialog)

    def _forward(
        self,
        tx: int,
        request: Request,
        source: Source,
        targets: list[Target],
        dialog: Dialog | None = None,
    ) -> None:
        """Fork the request to the targets the destination policy lets it reach (403 when
        none); a request from a WebSocket gets the way back on its Contact
        (see :func:`heron.sip.forwarding.alias`)."""
        allowed = [t for t in (self._vet(t, request, source, dialog) for t in targets) if t]
        if not allowed:
            self._reply(tx, request, 403, "Destination Not Allowed")
            return
        if source.transport in ("ws", "wss"):
            request = alias(request, source.transport, source.host, source.port)
        media = self._in_dialog(dialog)
        self._forwarder.forward(tx, request, source.transport, allowed, self._clock(), media)

    def _vet(
        self, target: Target, request: Request, source: Source, dialog: Dialog | None
    ) -> Target | None:
        """``target`` with only the addresses the destination policy allows; None if none."""
        if target.vetted:
            return target
        if target.located:
            located = tuple(
                t
                for t in target.located
                if self._permitted((t.transport, (t.host, t.port)), dialog)
            )
            if not located:
                first = target.located[0]
                self._refuse_destination(
                    request.method, source.host, (first.transport, (first.host, first.port))
                )
                return None
            return replace(target, located=located)
        hop = self._forwarder.next_hop(target.hop, target.binding)
        if hop is None or self._permitted(hop, dialog):
            return target  # None: unreachable, the forwarder answers 480
        self._refuse_destination(request.method, source.host, hop)
        return None

    async def _targets(self, uri: SipUri) -> list[Target] | None:
        """Where a request for a local user goes: its bindings, or a configured route."""
        user = uri.user or ""
        for pattern, target in self._routes:
            if pattern.search(user):
                routed = parse_uri(target)
                if isinstance(routed, SipUri):
                    routed = replace(routed, user=user)
                return [Target(routed, routed, None)]
        if await self._ha1_for(user) is None:
            return None
        aor = f"{user.lower()}@{self._config.sip_domain}"
        bindings = lookup_targets(self._bindings.get(aor), self._clock())
        if not bindings and self._sharing is not None:
            # Registered a moment ago through another process, whose announcement is
            # still on its way: Redis has it already.
            self._bindings.apply(aor, await self._sharing.fetch(aor))
            bindings = lookup_targets(self._bindings.get(aor), self._clock())
        return [Target(binding.uri, binding.uri, binding) for binding in bindings]

    # --- authentication and registration ---------------------------------------------

    async def _authenticate(self, tx: int, request: Request, source: Source) -> str | None:
        """The authenticated user, or None after answering 401/407."""
        user = await self._admission.authenticate(
            request, source.transport, source.host, self._clock()
        )
        if isinstance(user, Refusal):
            self._refuse(tx, request, user)
            return None
        return user

    def _refuse(self, tx: int, request: Request, refusal: Refusal) -> None:
        self._reply(tx, request, refusal.status, refusal.reason, refusal.headers)

    def _account_changed(self, local: str, domain: str, change: AccountChange) -> None:
        """A removed account's registrations go with it (the shared account cache forgets
        the old HA1 by itself)."""
        user = self._services.accounts.identity(local, domain).sip_user
        if self._sharing is not None and change.ends_proofs:
            self._spawn(self._sharing.guesses.forget_account(account_key(local, domain)))
        if change is AccountChange.REMOVED:
            aor = f"{user.lower()}@{self._config.sip_domain}"
            self._bindings.drop(aor)
            self._spawn(self._bindings.write(aor))
            if self._sharing is not None:
                self._spawn(self._sharing.put(aor, []))

    async def _ha1_for(self, user: str) -> StoredHa1 | None:
        """The HA1 of a user of the main domain, from the accounts every protocol shares
        (:class:`heron.accounts.AccountCache`); None for no such user, or one whose
        password was set under another SIP realm."""
        cache = self._services.account_cache
        local, domain = user.lower(), self._config.domain
        account = cache.cached(local, domain)
        if isinstance(account, Missing):
            try:
                account = await cache.get(local, domain)
            except HeronError as exc:
                log.warning("sip: cannot look up %r: %s", user, exc)
                return None
        if account is None or account.secrets.sip_realm != self._config.sip_domain:
            return None
        return StoredHa1(account.secrets.sip_ha1_md5, account.secrets.sip_ha1_sha256)

    async def _register(self, tx: int, request: Request, source: Source) -> None:
        to = request.headers.to
        to_uri = to.uri if to else None
        if not isinstance(to_uri, SipUri) or not to_uri.user:
            self._reply(tx, request, 400, "Bad To")
            return
        user = await self._authenticate(tx, request, source)
        if user is None:
            return
        if user.lower() != to_uri.user.lower():
            self._reply(tx, request, 403, "Not Allowed To Register This User")
            return
        aor = f"{user.lower()}@{self._config.sip_domain}"
        # The cache holds every binding (loaded at start); read, apply and write
        # it back without an await in between, so REGISTERs for one AOR cannot
        # interleave. The database is written behind (see _write_behind).
        now = self._clock()
        where = BindingSource(source.transport, source.host, source.port, source.flow)
        result = self._registrar.register(
            request, aor, self._bindings.get(aor), where, now, to_tag=secrets.token_hex(6)
        )
        if result.bindings is not None:
            self._counters["registrations"] += 1
            if self._bindings.put(aor, result.bindings):
                await self._bindings.write(aor)  # removals are written through, at once
            if self._sharing is not None:
                await self._sharing.put(aor, result.bindings)
        self._respond(tx, result.response)
