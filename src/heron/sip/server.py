"""The SIP component: transports, transaction layer, registrar and proxy wired together.

This is the one SIP module that does I/O and looks things up: it feeds the
sans-IO transaction layer, decides where requests go (accounts, bindings,
configured routes) and lets :mod:`heron.sip.proxy` shape what is forwarded.
What Kamailio's default configuration does with WITH_AUTH and
WITH_USRLOCDB, in that order: sanity, loops, loose routing, registrar with
digest authentication, then location lookup and forking.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from heron.accounts import AccountChange
from heron.component import Listener, Services
from heron.config import ListenAddress
from heron.control import View
from heron.credentials import load_or_create_secret, web_phone_secret
from heron.errors import AccountNotFound, ConfigError, HeronError, listen_error
from heron.ratelimit import FloodGuard, Lockout
from heron.sip.digest import Algorithm, DigestAuthenticator, Outcome, StoredHa1
from heron.sip.errors import SipError
from heron.sip.fields import Address as SipAddress
from heron.sip.fields import Via
from heron.sip.grammar import Params
from heron.sip.headers import HeaderName, Headers
from heron.sip.locate import Target as DnsTarget
from heron.sip.message import Method, Request, Response
from heron.sip.parser import Event, Limits, Ping
from heron.sip.proxy import (
    BranchState,
    ResponseContext,
    branch_id,
    forward_request,
    is_loop,
    our_record_route,
    preprocess_routes,
)
from heron.sip.registrar import Binding, LocationStore, Registrar, lookup_targets
from heron.sip.registrar import Source as BindingSource
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
from heron.sip.uri import SipUri, Uri, parse_uri
from heron.store import SqlLocationStore
from heron.tls import server_context

__all__ = ["SipComponent", "build_sip"]

log = logging.getLogger(__name__)

_M = TypeVar("_M", Request, Response)

HA1_CACHE_SECONDS = 30.0
MAX_TRANSACTIONS = 500_000
"""About 1 KiB each: half a gigabyte at most, 15,000 requests/s for 32 s."""
SWEEP_SECONDS = 30.0
FLUSH_SECONDS = 1.0
_DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
_NO_AUTH_METHODS = frozenset({Method.ACK, Method.CANCEL})


def build_sip(services: Services) -> SipComponent | None:
    return SipComponent(services) if services.config.sip.enabled else None


@dataclass(frozen=True, slots=True)
class _Target:
    """One branch: the Request-URI to send, the URI that names the next hop, the binding,
    and where DNS says that hop is, tried in turn (RFC 3263 §4.3)."""

    uri: Uri
    hop: Uri
    binding: Binding | None
    located: tuple[DnsTarget, ...] = ()


@dataclass
class _Fork:
    """A forwarded request: its server transaction and the branches it went out on."""

    server_tx: int
    request: Request
    context: ResponseContext
    clients: dict[int, tuple[str, Request, str, tuple[str, int]]]
    """client tx -> (branch, request sent, transport, destination)."""
    alternates: dict[int, tuple[_Target, str]] = field(default_factory=dict)
    """client tx -> its target with the DNS targets still to try, and the inbound transport."""


class SipComponent:
    """SIP proxy and registrar over UDP, TCP, TLS and WebSocket."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        self._services = services
        self._config = services.config
        self._clock = clock
        self._limits = Limits()
        # Finished transactions linger 32 s over UDP (Timers J, L, M): the table must
        # hold rate x 32 s of them, or a busy server refuses everything with 503.
        self._layer = TransactionLayer(max_transactions=MAX_TRANSACTIONS)
        self._flows = FlowTable()
        self._udp: list[SipDatagrams] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._forks: dict[int, _Fork] = {}
        self._client_forks: dict[int, int] = {}
        self._ha1: dict[str, tuple[StoredHa1 | None, float]] = {}
        self._ha1_pending: dict[str, asyncio.Task[StoredHa1 | None]] = {}
        self._dirty: set[str] = set()
        self._bindings: dict[str, list[Binding]] = {}
        self._fork_counter = itertools.count(1)
        self._refused = 0
        self._counters: dict[str, int] = dict.fromkeys(
            ("requests", "registrations", "auth_challenges", "auth_failures", "forwarded"), 0
        )
        self._local: dict[str, tuple[str, int]] = {}
        sip = self._config.sip
        self._domains = frozenset([self._config.sip_domain, *sip.aliases])
        self._routes = [(re.compile(route.user), route.target) for route in sip.routes]
        self._registrar = Registrar(
            default_expires=sip.max_expires,
            min_expires=sip.min_expires,
            max_expires=sip.max_expires,
            max_contacts=sip.max_contacts,
        )
        self._location: LocationStore = SqlLocationStore(services.database)
        try:
            self._locator = SipLocator(sip.dns_servers)
        except ValueError as exc:
            raise ConfigError(f"sip.dns_servers: {exc}") from None
        services.accounts.subscribe(self._account_changed)
        self._flood = FloodGuard(
            sip.flood_rate,
            sip.flood_burst,
            sip.flood_ban,
            exempt=[*sip.flood_exempt, *sip.trusted_peers],
        )
        self._public = _public_targets(self._config.web.click_to_call)
        # Click-to-call: a second pike for unauthenticated INVITEs to public names,
        # a burst of per_minute, then per_minute a minute, per source address.
        per_minute = self._config.web.click_to_call_per_minute
        self._anonymous = FloodGuard(per_minute / 60, per_minute, 60.0)

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> Sequence[Listener]:
        config, sip = self._config, self._config.sip
        loop = asyncio.get_running_loop()
        key = load_or_create_secret(config.sip_secret_path)
        self._digest = DigestAuthenticator(
            config.sip_domain,
            key,
            algorithms=tuple(Algorithm(name) for name in sip.digest_algorithms),
            lockout=Lockout(),
        )
        self._web_phone = web_phone_secret(key)
        listeners: list[Listener] = []
        for address in sip.listen:
            listeners.append(await self._listen_udp(loop, address))
            listeners.append(await self._listen_stream(loop, "tcp", "sip.listen", address))
        for address in sip.tls_listen:
            listeners.append(await self._listen_stream(loop, "tls", "sip.tls_listen", address))
        if sip.websocket and config.web.enabled:
            handler = websocket_handler(self._receive, self._flows, self._limits)
            self._services.web_routes.append(("/sip", handler))
            for address in config.web.listen:
                self._local.setdefault("wss", self._advertised(address))
                listeners.append(Listener("sip", f"wss://{address}/sip"))
        for binding in await self._location.all(self._clock()):
            self._bindings.setdefault(binding.aor, []).append(binding)
        self._spawn(self._sweep())
        self._spawn(self._write_behind())
        return listeners

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._write_dirty()
        for server in self._servers:
            server.close()
        for udp in self._udp:
            udp.close()
        self._flows.close_all()
        for server in self._servers:
            await server.wait_closed()

    def views(self) -> Mapping[str, View]:
        return {"sip.registrations": self._registration_rows, "sip.counters": self._counter_rows}

    def _counter_rows(self) -> list[dict[str, Any]]:
        return [
            {
                **self._counters,
                "bindings": sum(len(b) for b in self._bindings.values()),
                "transactions": len(self._layer),
                "connections": len(self._flows),
                "flood_bans": self._flood.banned_total,
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
            for bindings in self._bindings.values()
            for binding in lookup_targets(bindings, now)
        ]

    def _advertised(self, address: ListenAddress) -> tuple[str, int]:
        host = address.host
        if host in ("0.0.0.0", "::"):
            host = self._config.host_name
        elif ":" in host:
            host = f"[{host}]"
        return host, address.port

    async def _listen_udp(
        self, loop: asyncio.AbstractEventLoop, address: ListenAddress
    ) -> Listener:
        try:
            _, protocol = await loop.create_datagram_endpoint(
                lambda: SipDatagrams(self._receive, self._limits),
                local_addr=(address.host, address.port),
            )
        except OSError as exc:
            raise listen_error("sip.listen", address, exc) from None
        self._udp.append(protocol)
        self._local.setdefault("udp", self._advertised(address))
        return Listener("sip", f"udp://{address}")

    async def _listen_stream(
        self, loop: asyncio.AbstractEventLoop, kind: str, key: str, address: ListenAddress
    ) -> Listener:
        context = None
        if kind == "tls":
            config = self._config
            context = server_context(config.certificate_path, config.key_path, alpn=("sip/2",))
        try:
            server = await loop.create_server(
                lambda: self._stream(kind), address.host, address.port, ssl=context
            )
        except OSError as exc:
            raise listen_error(key, address, exc) from None
        self._servers.append(server)
        self._local.setdefault(kind, self._advertised(address))
        return Listener("sip", f"{kind}://{address}")

    def _stream(self, kind: str) -> SipStream:
        return SipStream(
            kind,
            self._flows.token(kind),
            self._receive,
            self._limits,
            on_open=lambda s: self._flows.add(s, s.remote),
            on_close=lambda s: self._flows.remove(s, s.remote),
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
        """Bindings reach the database within FLUSH_SECONDS, and at a clean stop.

        Like Kamailio's usrloc in write-back mode (db_mode 2, what WITH_USRLOCDB
        sets): a REGISTER is answered from memory, and a crash loses at most the
        last second of registrations, which phones repeat anyway.
        """
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self._write_dirty()

    async def _write_dirty(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for aor in dirty:
            try:
                await self._location.replace(aor, self._bindings.get(aor, []))
            except Exception as exc:  # noqa: BLE001 - the writer must outlive a bad moment
                log.warning("sip: cannot store the bindings of %s: %s", aor, exc)
                self._dirty.add(aor)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = self._clock()
            removed = await self._location.sweep(now)
            for aor in list(self._bindings):
                live = [b for b in self._bindings[aor] if not b.is_expired(now)]
                if live:
                    self._bindings[aor] = live
                else:
                    del self._bindings[aor]
            if removed:
                log.info("sip: %d expired binding(s) removed", removed)

    # --- transaction layer plumbing -------------------------------------------------

    def _receive(self, event: Event, source: Source) -> None:
        if isinstance(event, Ping):
            return
        if isinstance(event, Request):
            if not self._flood.allow(source.host, self._clock()):
                return  # a flooding source: dropped unanswered, as pike does
            self._counters["requests"] += 1
        events = self._layer.receive(
            event, source.transport, source.reliable, (source.host, source.port), self._clock()
        )
        self._dispatch(events, source)

    def _dispatch(self, events: list[TransactionEvent], source: Source | None = None) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                assert source is not None
                self._spawn(self._request(event.tx, event.request, source))
            elif isinstance(event, AckReceived):
                self._forward_stateless(event.request)
            elif isinstance(event, ResponseReceived):
                self._response(event.tx, event.response)
            elif isinstance(event, StrayResponse):
                self._stray(event.response)
            elif isinstance(event, TransactionTimeout | TransportFailed):
                self._branch_failed(event.tx)
            elif isinstance(event, RequestRefused):
                self._refused += 1
                if self._refused in (1, 100) or self._refused % 10_000 == 0:
                    log.warning("sip: transaction table full: %d request(s) refused", self._refused)
            elif isinstance(event, TransactionTerminated):
                self._forks.pop(event.tx, None)
                self._client_forks.pop(event.tx, None)
        self._flush()

    def _flush(self) -> None:
        for out in self._layer.messages_to_send():
            self._send(out.data, out.transport, out.destination, out.tx)
        self._schedule()

    def _schedule(self) -> None:
        deadline = self._layer.next_timer()
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
            try:
                ipaddress.ip_address(destination[0])
            except ValueError:
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
                loop.create_connection(lambda: self._stream(transport), *destination, ssl=context),
                timeout=10,
            )
        except (OSError, TimeoutError) as exc:
            log.info("sip: cannot reach %s:%s over %s: %s", *destination, transport, exc)
            if tx is not None:
                self._dispatch(self._layer.transport_error(tx, self._clock()))
            return
        stream.send(data)

    def _respond(self, tx: int, response: Response) -> None:
        try:
            events = self._layer.server_respond(tx, response, self._clock())
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
        tag = None if status == 100 else secrets.token_hex(6)
        self._respond(tx, request.response(status, reason, to_tag=tag, headers=headers))

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
            self._cancel(tx, request)
            return
        hops = request.headers.max_forwards
        if hops == 0:
            self._reply(tx, request, 483)
            return
        if is_loop(request, [f"{h}:{p}" for h, p in self._local.values()]):
            self._reply(tx, request, 482)
            return
        routed = preprocess_routes(request, self._is_me)
        ours = routed is not request and routed.headers.routes != request.headers.routes
        request = routed
        to = request.headers.to
        if to is not None and to.tag is not None:
            # In-dialog (RFC 3261 §12.2): it follows the route set we recorded,
            # as Kamailio's loose_route() does; a stray one is not ours to route.
            if not ours:
                self._reply(tx, request, 404, "Not Here")
                return
            await self._forward_located(tx, request, source, self._along(request))
            return
        if request.headers.routes:
            # A Route to somewhere else, from a client that may use us as outbound proxy.
            source_user = await self._authenticate(tx, request, source)
            if source_user is None:
                return
            await self._forward_located(tx, request, source, self._along(request))
            return
        uri = request.uri
        local = isinstance(uri, SipUri) and self._is_local(uri)
        if request.method == Method.REGISTER:
            if not local:
                self._reply(tx, request, 403, "Not Our Domain")
                return
            await self._register(tx, request, source)
            return
        from_address = request.headers.from_
        from_uri = from_address.uri if from_address else None
        from_local = isinstance(from_uri, SipUri) and self._is_local(from_uri)
        trusted = self._trusted(source.host)
        public = self._public_target(request) if local else None
        if from_local and not trusted:
            user = await self._authenticate(tx, request, source)
            if user is None:
                return
            assert isinstance(from_uri, SipUri)
            if (from_uri.user or "").lower() != user.lower():
                self._reply(tx, request, 403, "From Does Not Match The Authenticated User")
                return
        elif public is not None:
            # Anyone may call a public name; a From naming a local user was challenged
            # above, so an anonymous caller cannot pose as staff.
            if not trusted and not self._anonymous.allow(source.host, self._clock()):
                retry = [("Retry-After", "60")]
                self._reply(tx, request, 503, "Too Many Anonymous Calls", headers=retry)
                return
            log.info("sip: click-to-call from %s to %s", source.host, request.uri)
        elif not from_local and local and not (trusted or self._config.sip.open_federation):
            self._reply(tx, request, 403, "Forbidden")
            return
        elif not local and not from_local and not trusted:
            self._reply(tx, request, 403, "Relaying Denied")
            return
        if public is not None:
            # The configured target takes the Request-URI (Kamailio's $ru = ...), then the
            # request is routed as any other: the target's bindings, a route, or its host.
            request, uri = replace(request, uri=public), public
            local = self._is_local(public)
        if not isinstance(uri, SipUri):
            self._reply(tx, request, 416)
            return
        if uri.user is None and self._is_me(uri):
            if request.method == Method.OPTIONS:
                allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, INFO, UPDATE"
                self._reply(tx, request, 200, headers=[("Allow", allow)])
            else:
                self._reply(tx, request, 404)
            return
        if not local:
            await self._forward_located(tx, request, source, _Target(uri, uri, None))
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
            self._forward(tx, self._aliased(request, source), source, targets)

    async def _forward_located(
        self, tx: int, request: Request, source: Source, target: _Target
    ) -> None:
        """Forward to a hop DNS must find (RFC 3263): another domain, or a host name in a
        Route or Contact. No records: 404; lookups failing: 503 (the caller may try later)."""
        hop = target.hop
        if isinstance(hop, SipUri) and self._needs_dns(hop):
            located = await self._locator.locate(hop)
            if not located.targets:
                reason = "DNS Lookup Failed" if located.failed else "Domain Not Found"
                self._reply(tx, request, 503 if located.failed else 404, reason)
                return
            target = replace(target, located=located.targets)
        self._forward(tx, self._aliased(request, source), source, [target])

    def _needs_dns(self, hop: SipUri) -> bool:
        """A host name not ours, and not a browser reached over its WebSocket (see _alias)."""
        host = (hop.maddr or hop.host).strip("[]")
        if _ALIAS in hop.params or hop.transport in ("ws", "wss") or self._is_local(hop):
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return True
        return False

    def _along(self, request: Request) -> _Target:
        """Loose routing: the Request-URI stays, the next hop is the top Route (§16.12)."""
        routes = request.headers.routes
        hop = routes[0].uri if routes else request.uri
        return _Target(_without_alias(request.uri), hop, None)

    def _aliased(self, request: Request, source: Source) -> Request:
        """Mark the Contact of a request from a WebSocket with the way back (see _alias)."""
        if source.transport not in ("ws", "wss"):
            return request
        return _alias(request, source.transport, source.host, source.port)

    async def _targets(self, uri: SipUri) -> list[_Target] | None:
        """Where a request for a local user goes: its bindings, or a configured route."""
        user = uri.user or ""
        for pattern, target in self._routes:
            if pattern.search(user):
                routed = parse_uri(target)
                if isinstance(routed, SipUri):
                    routed = replace(routed, user=user)
                return [_Target(routed, routed, None)]
        if await self._ha1_for(user) is None:
            return None
        aor = f"{user.lower()}@{self._config.sip_domain}"
        bindings = lookup_targets(self._bindings.get(aor, []), self._clock())
        return [_Target(binding.uri, binding.uri, binding) for binding in bindings]

    def _public_target(self, request: Request) -> SipUri | None:
        """Where an INVITE to a click-to-call name (``web.click_to_call``) goes, else None."""
        uri = request.uri
        if request.method != Method.INVITE or not isinstance(uri, SipUri) or not uri.user:
            return None
        return self._public.get(uri.user.lower())

    # --- authentication and registration ---------------------------------------------

    async def _authenticate(self, tx: int, request: Request, source: Source) -> str | None:
        """The authenticated user, or None after answering 401/407 (RFC 3261 §22)."""
        now = self._clock()
        auth = self._digest.credentials(request)
        if auth is not None:
            username = auth.param("username") or ""
            user, ha1 = await self._credentials_for(username, now)
            verdict = self._digest.verify(request.method, auth, ha1, now, source.host)
            if verdict.outcome is Outcome.OK and verdict.username is not None:
                return user
            stale = verdict.outcome is Outcome.STALE
            self._counters["auth_failures"] += not stale
        else:
            stale = False
        self._counters["auth_challenges"] += 1
        challenge = self._digest.challenge(
            request.method, now, secrets.token_bytes(12), stale=stale
        )
        headers = challenge.headers
        if source.transport in ("ws", "wss"):
            # JsSIP keeps only the last challenge field and speaks MD5 only: browsers
            # get the configured order reversed, MD5 (the default first) last.
            headers = headers[::-1]
        self._respond(
            tx, request.response(challenge.status, to_tag=secrets.token_hex(6), headers=headers)
        )
        return None

    async def _credentials_for(self, username: str, now: float) -> tuple[str, StoredHa1 | None]:
        """The user a digest username stands for, and the HA1 to check it with.

        ``expiry:user`` is a web phone's short-lived credential (see
        :func:`heron.credentials.web_phone_secret`): its HA1 comes from the
        HMAC password, and it is good only until its expiry, for an account
        that still exists.
        """
        keys = self._web_phone.long_term_keys(username, self._config.sip_domain, now=now)
        if keys is None:
            return username, await self._ha1_for(username)
        user = username.partition(":")[2]
        if await self._ha1_for(user) is None:
            return user, None
        return user, StoredHa1(keys[0].hex(), keys[1].hex())

    def _account_changed(self, local: str, domain: str, change: AccountChange) -> None:
        """A new password takes effect at once, not when the cached HA1 expires; a removed
        account's registrations go with it."""
        user = self._services.accounts.identity(local, domain).sip_user
        self._ha1.pop(user, None)
        if change is AccountChange.REMOVED:
            aor = f"{user.lower()}@{self._config.sip_domain}"
            if self._bindings.pop(aor, None) is not None:
                self._dirty.add(aor)

    async def _ha1_for(self, user: str) -> StoredHa1 | None:
        now = self._clock()
        cached = self._ha1.get(user)
        if cached is not None and cached[1] > now:
            return cached[0]
        # One lookup per user at a time: without it, every request of a burst
        # that finds the entry missing or expired queries the database.
        pending = self._ha1_pending.get(user)
        if pending is None:
            pending = asyncio.create_task(self._lookup_ha1(user, now))
            self._ha1_pending[user] = pending
            pending.add_done_callback(lambda _: self._ha1_pending.pop(user, None))
        return await asyncio.shield(pending)

    async def _lookup_ha1(self, user: str, now: float) -> StoredHa1 | None:
        try:
            account = await self._services.accounts.get(user.lower(), self._config.domain)
        except AccountNotFound:
            found = None
        except HeronError as exc:
            log.warning("sip: cannot look up %r: %s", user, exc)
            return None
        else:
            secrets_ = account.secrets
            usable = secrets_.sip_realm == self._config.sip_domain
            found = StoredHa1(secrets_.sip_ha1_md5, secrets_.sip_ha1_sha256) if usable else None
        if len(self._ha1) > 10_000:
            self._ha1.clear()
        self._ha1[user] = (found, now + HA1_CACHE_SECONDS)
        return found

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
            request, aor, self._bindings.get(aor, []), where, now, to_tag=secrets.token_hex(6)
        )
        if result.bindings is not None:
            self._counters["registrations"] += 1
            self._bindings[aor] = list(result.bindings)
            self._dirty.add(aor)
        self._respond(tx, result.response)

    # --- forwarding -------------------------------------------------------------------

    def _forward(self, tx: int, request: Request, source: Source, targets: list[_Target]) -> None:
        context = ResponseContext(request.method)
        fork = _Fork(tx, request, context, {})
        self._forks[tx] = fork
        now = self._clock()
        initial = request.headers.to is None or request.headers.to.tag is None
        for target in targets:
            binding = target.binding
            if target.located:
                first = target.located[0]
                hop: tuple[str, tuple[str, int]] | None = first.transport, (first.host, first.port)
            else:
                hop = self._next_hop(target.hop, binding)
            if hop is None:
                continue
            client = self._branch(fork, source.transport, target, hop, None, initial, now)
            if len(target.located) > 1:
                fork.alternates[client] = (target, source.transport)
        if not fork.clients:
            self._forks.pop(tx, None)
            self._reply(tx, request, 480)
            return
        self._flush()

    def _branch(
        self,
        fork: _Fork,
        inbound: str,
        target: _Target,
        hop: tuple[str, tuple[str, int]],
        key: str | None,
        initial: bool,
        now: float,
    ) -> int:
        """Send one branch; ``key`` names it in the response context, a new one if None."""
        request, binding = fork.request, target.binding
        transport, destination = hop
        branch = branch_id(request, next(self._fork_counter))
        host, port = self._local.get(transport, self._local.get("udp", ("127.0.0.1", 5060)))
        via_transport = {"wss": "WSS", "ws": "WS"}.get(transport, transport.upper())
        via = Via(via_transport, host, port, params=_params(branch=branch, rport=None))
        record_route = self._record_route(inbound, transport) if initial else []
        path = binding.path if binding is not None else ()
        sent = forward_request(
            request, target=target.uri, via=via, record_route=record_route, path=path
        )
        client = self._layer.client_request(sent, transport, transport != "udp", destination, now)
        fork.clients[client] = (key or branch, sent, transport, destination)
        self._counters["forwarded"] += 1
        self._client_forks[client] = fork.server_tx
        if key is None:
            fork.context.add_branch(branch)
        return client

    def _failover(self, fork: _Fork, client: int, answered: bool) -> bool:
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
        retry = self._branch(fork, inbound, target, hop, key, initial, self._clock())
        if len(rest) > 1:
            fork.alternates[retry] = (target, inbound)
        return True

    def _next_hop(self, target: Uri, binding: Binding | None) -> tuple[str, tuple[str, int]] | None:
        if binding is not None:
            received = binding.received
            if received.transport == "udp":
                return "udp", (received.host, received.port)
            if self._flows.get(received.flow) is not None:
                return received.transport, (received.host, received.port)
        if not isinstance(target, SipUri):
            return None
        alias = target.params.get("alias")
        if alias is not None and alias.count("~") == 2:
            host, port, transport = alias.split("~")
            if port.isdigit() and self._flows.to(transport, host, int(port)) is not None:
                return transport, (host, int(port))
        transport = target.transport or ("tls" if target.scheme == "sips" else "udp")
        if transport in ("ws", "wss"):
            return None  # a browser is reached only over the socket it registered on
        host = (target.maddr or target.host).strip("[]")
        return transport, (host, target.port or _DEFAULT_PORTS.get(transport, 5060))

    def _record_route(self, inbound: str, outbound: str) -> list[SipAddress]:
        """Ours, twice when the request changes transport (RFC 5658)."""
        if inbound not in self._local:
            return []
        inner = our_record_route(*self._local[inbound], inbound)
        if outbound == inbound or outbound not in self._local:
            return [inner]
        return [our_record_route(*self._local[outbound], outbound), inner]

    def _forward_stateless(self, request: Request) -> None:
        """An ACK for a 2xx goes on by its Route or Request-URI (RFC 3261 §16.11)."""
        request = preprocess_routes(request, self._is_me)
        routes = request.headers.routes
        target = routes[0].uri if routes else request.uri
        hop = self._next_hop(target, None)
        if hop is None or request.headers.max_forwards == 0:
            return
        transport, destination = hop
        host, port = self._local.get(transport, self._local.get("udp", ("127.0.0.1", 5060)))
        via_transport = {"wss": "WSS", "ws": "WS"}.get(transport, transport.upper())
        branch = branch_id(request, next(self._fork_counter))
        via = Via(via_transport, host, port, params=_params(branch=branch, rport=None))
        sent = forward_request(request, target=_without_alias(request.uri), via=via)
        self._layer.send_stateless(sent, transport, destination)
        self._flush()

    def _response(self, client: int, response: Response) -> None:
        server = self._client_forks.get(client)
        fork = self._forks.get(server) if server is not None else None
        if fork is None or client not in fork.clients:
            return
        if response.status == 503 and self._failover(fork, client, answered=True):
            return
        branch, _, transport, (host, port) = fork.clients[client]
        response = response.pop_via()
        if not response.headers.vias:
            return  # §16.7 step 3: with no Via left it was meant for us; never relayed
        if transport in ("ws", "wss"):
            response = _alias(response, transport, host, port)
        upstream, cancel = fork.context.received(branch, response)
        for answer in upstream:
            self._respond(fork.server_tx, answer)
        self._cancel_branches(fork, cancel)

    def _stray(self, response: Response) -> None:
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

    def _branch_failed(self, client: int) -> None:
        server = self._client_forks.get(client)
        fork = self._forks.get(server) if server is not None else None
        if fork is None or client not in fork.clients:
            return
        if self._failover(fork, client, answered=False):
            return
        for answer in fork.context.timed_out(fork.clients[client][0]):
            self._respond(fork.server_tx, answer)

    def _cancel(self, tx: int, request: Request) -> None:
        """CANCEL (RFC 3261 §16.10): answer it, then cancel every pending branch."""
        target = self._layer.cancel_target(request)
        fork = self._forks.get(target) if target is not None else None
        if fork is None:
            self._reply(tx, request, 481)
            return
        self._reply(tx, request, 200)
        pending = [b for b, state in fork.context.branches.items() if state.value != "done"]
        self._cancel_branches(fork, pending)

    def _cancel_branches(self, fork: _Fork, branches: list[str]) -> None:
        now = self._clock()
        for client, (branch, sent, transport, destination) in list(fork.clients.items()):
            if branch not in branches:
                continue
            fork.alternates.pop(client, None)  # a cancelled branch fails over to nowhere
            cancel = _cancel_for(sent)
            self._layer.client_request(cancel, transport, transport != "udp", destination, now)
        self._flush()

    # --- who we are ---------------------------------------------------------------------

    def _is_local(self, uri: SipUri) -> bool:
        return uri.host.lower() in self._domains or self._is_me(uri)

    def _is_me(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower()
        for transport, (own_host, own_port) in self._local.items():
            if (
                host == own_host.lower()
                and (uri.port or _DEFAULT_PORTS.get(transport, 5060)) == own_port
            ):
                return True
        listen_hosts = {a.host for a in self._config.sip.listen + self._config.sip.tls_listen}
        return host.strip("[]") in listen_hosts and uri.port in {
            a.port for a in self._config.sip.listen + self._config.sip.tls_listen
        } | {None}

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(
            address in network
            for network in self._config.sip.trusted_peers
            if network.version == address.version
        )


def _public_targets(names: Mapping[str, str]) -> dict[str, SipUri]:
    """``web.click_to_call`` parsed once, so a bad target stops the start, not a call."""
    targets: dict[str, SipUri] = {}
    for name, target in names.items():
        try:
            uri = parse_uri(target)
        except SipError as exc:
            raise ConfigError(f"web.click_to_call.{name}: {target!r}: {exc}") from None
        if not isinstance(uri, SipUri):
            raise ConfigError(f"web.click_to_call.{name}: {target!r} is not a sip: URI")
        targets[name] = uri
    return targets


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


_ALIAS = "alias"
"""Kamailio's Contact parameter for "reach this URI over that flow" (nathelper)."""


def _alias(message: _M, transport: str, host: str, port: int) -> _M:
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
