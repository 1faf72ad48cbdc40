"""XMPP federation: the streams to and from other domains (the XMPP component opens the
s2s listeners and hands their connections here); the only place in
``heron.xmpp.s2s`` that does I/O besides DNS (RFC 6120 §3.2, §5, §13.7; XEP-0178,
XEP-0220, XEP-0368).

Incoming connections (5269 with STARTTLS, 5270 with direct TLS) each run one
:class:`~heron.xmpp.s2s.stream.S2SStream`; stanzas from the domains it authenticated go
to the router. Outgoing streams are kept per (local domain, remote domain) pair, as
Prosody keeps them: a stanza for a domain with no stream waits (a bounded number) while
one is located, connected, secured and authenticated, leaves when it is, and bounces
with remote-server-not-found or remote-server-timeout when it cannot be. An incoming
stream that negotiated XEP-0288 is the route for the pairs it authenticated (no
connection of ours is opened for them), and an outgoing one delivers what comes back.

Whom to trust: a peer whose certificate chain verifies and names its domain
(:mod:`heron.peer_tls`, :mod:`heron.xmpp.s2s.identity`) authenticates with SASL EXTERNAL
or, offering dialback, is believed at once; any other proves its domain by dialback,
checked with the domain's authoritative server over heron's own outgoing stream to it,
unless ``xmpp.s2s_secure_auth`` refuses it. Connections never go to internal addresses
unless ``xmpp.s2s_allowed_destinations`` allows them (the locator leaves them out).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from heron.connections import ConnectionLimiter, ConnectionPolicy
from heron.handoff import AcceptedSockets, Handoff, StreamAccept, stream_protocol
from heron.peer_tls import verified_peer
from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from heron.xmpp.features import Routed
from heron.xmpp.jid import JID
from heron.xmpp.read_rate import ReadRate
from heron.xmpp.s2s.events import (
    Authenticated,
    AuthenticationFailed,
    DialbackVerifyNeeded,
    Role,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    VerifyAnswered,
)
from heron.xmpp.s2s.identity import certificate_names_domain
from heron.xmpp.s2s.locate import ServerLocation
from heron.xmpp.s2s.stream import S2SStream

__all__ = ["Federation", "FederationSettings"]

log = logging.getLogger(__name__)

_READ_SIZE = 65_536
_WRITE_LIMIT = 4 << 20
"""Bytes queued for a slow peer server before heron gives up on its stream."""


@dataclass(frozen=True, slots=True)
class FederationSettings:
    """The ``xmpp.s2s_*`` settings, and the deadlines every listener shares."""

    local_domains: frozenset[str]
    """Every domain heron answers for over s2s: the XMPP hosts and the group-chat service."""
    require_tls: bool = True
    secure_auth: bool = False
    allow: frozenset[str] = frozenset()
    """When not empty, the only remote domains heron talks to (Prosody's s2s_whitelist)."""
    deny: frozenset[str] = frozenset()
    queue_limit: int = 200
    read_rate: int = 0
    """Bytes per second one stream may send, past a burst (``xmpp.s2s_read_rate``); 0 is
    unlimited."""
    streams_per_domain: int = 10
    """Incoming streams one remote domain may hold authenticated at once."""
    bidi: bool = True
    """XEP-0288 both ways (``xmpp.s2s_bidi``, Prosody's mod_s2s_bidi)."""
    max_stanza_bytes: int = 262_144
    connect_timeout: float = 10.0
    policy: ConnectionPolicy = field(default_factory=ConnectionPolicy)


Deliver = Callable[[Element, JID, JID], Awaitable[None]]
"""The router's entry for a stanza from an authenticated remote domain (``Router.route``)."""
Bounce = Callable[[Element, StanzaError, JID, JID], Awaitable[None]]
"""The router's answer to a local sender whose stanza could not leave (``Router.bounce``)."""
Locate = Callable[[str], Awaitable[ServerLocation]]
"""Where a domain's server is (:class:`heron.xmpp.s2s.dns.ServerLocator`), internal
addresses already left out."""


class _Unreachable(Exception):
    """No server of the remote domain could be reached; ``condition`` says how to bounce."""

    def __init__(self, condition: StanzaCondition, why: str) -> None:
        super().__init__(why)
        self.condition = condition


class _Peer:
    """One live s2s stream, either direction, as ``heron xmpp s2s`` shows it."""

    def __init__(
        self, stream: S2SStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.stream, self.reader, self.writer = stream, reader, writer
        address = writer.get_extra_info("peername")
        self.address = address[0] if address else ""
        self.methods: dict[str, str] = {}
        """Remote domains authenticated on this stream, with how (external, dialback)."""
        self.since = time.time()
        self.stanzas = 0
        self._flush_pending = False

    @property
    def tls(self) -> ssl.SSLObject | None:
        tls: ssl.SSLObject | None = self.writer.get_extra_info("ssl_object")
        return tls

    def certificate_valid_for(self, domain: str) -> bool:
        """Whether the peer's certificate chain verified and names ``domain``."""
        tls = self.tls
        der = verified_peer(tls) if tls is not None else None
        return der is not None and certificate_names_domain(der, domain)

    def write(self) -> None:
        data = self.stream.data_to_send()
        if not data or self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > _WRITE_LIMIT:
            log.info("xmpp s2s: %s reads too slowly; its stream is dropped", self.address)
            self.writer.transport.abort()
            return
        self.writer.write(data)

    def write_soon(self) -> None:
        """Write once this turn of the loop is over: a burst of stanzas leaves in one record."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self.write()

    def close(self, condition: StreamCondition | None = None) -> None:
        if not self.stream.closed:
            self.stream.close(condition)
        self.write()
        self.writer.close()

    def row(self, direction: str, local: str, queued: int = 0) -> dict[str, Any]:
        tls = self.tls
        return {
            "direction": direction,
            "bidi": self.stream.bidi,
            "local": local,
            "remote": ", ".join(sorted(self.methods)) or "-",
            "auth": ", ".join(sorted(set(self.methods.values()))) or "pending",
            "tls": (tls.version() or "?") if tls is not None else "none",
            "address": self.address,
            "stanzas": self.stanzas,
            "queued": queued,
            "since": int(self.since),
        }


class _Route:
    """The outgoing stream from one local domain to one remote domain, and what waits for it."""

    def __init__(self, local: str, remote: str) -> None:
        self.local, self.remote = local, remote
        self.queue: deque[Routed] = deque()
        self.peer: _Peer | None = None
        self.ready = False
        self.task: asyncio.Task[None] | None = None
        self.verifications: dict[tuple[str, str, str], asyncio.Future[bool | None]] = {}
        """Dialback keys sent to this domain's authoritative server, by (stream id,
        originating, receiving); None when it could not be asked."""
        self.connected = asyncio.Event()


class Federation:
    """The router's remote side (:class:`heron.xmpp.router.RemoteDomains`)."""

    def __init__(
        self,
        settings: FederationSettings,
        *,
        deliver: Deliver,
        bounce: Bounce,
        locate: Locate,
        server_tls: ssl.SSLContext,
        client_tls: ssl.SSLContext,
        connections: ConnectionLimiter,
        dialback_secret: bytes,
    ) -> None:
        self._settings = settings
        self._deliver = deliver
        self._bounce = bounce
        self._locate = locate
        self._server_tls = server_tls
        self._client_tls = client_tls
        self._connections = connections
        self._secret = dialback_secret
        self._routes: dict[tuple[str, str], _Route] = {}
        self._incoming: set[_Peer] = set()
        self._accepted = AcceptedSockets("xmpp-server")
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "s2s_incoming",
                "s2s_outgoing",
                "s2s_stanzas_in",
                "s2s_stanzas_out",
                "s2s_bounced",
                "s2s_refused",
                "s2s_slowed",
            ),
            0,
        )

    # --- life cycle -------------------------------------------------------------------

    def _acceptor(self, *, direct_tls: bool) -> StreamAccept:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._accept(reader, writer, direct_tls=direct_tls)
            except asyncio.CancelledError:
                # stop() cancels open streams; Python 3.11's start_server callback calls
                # exception() on a cancelled task and logs what that raises as an error.
                pass

        return accept

    def handoff(self) -> Handoff:
        """s2s direct TLS (XEP-0368, ALPN ``xmpp-server``) on a connection the port-443 mux
        accepted; a plain stream header there is a client's (:mod:`heron.mux.classify`)."""

        def take(sock: socket.socket, tls: bool) -> None:
            self._accepted.serve(
                stream_protocol(self._acceptor(direct_tls=tls), _READ_SIZE),
                sock,
                self._server_tls if tls else None,
                self._settings.policy.handshake_timeout,
            )

        return take

    async def stop(self) -> None:
        """End every stream; the listeners are the XMPP component's, closed before this."""
        self._accepted.close()
        outgoing = [route.peer for route in self._routes.values() if route.peer is not None]
        for peer in [*self._incoming, *outgoing]:
            peer.close(StreamCondition.SYSTEM_SHUTDOWN)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def rows(self) -> list[dict[str, Any]]:
        """Every live s2s stream, for ``heron xmpp s2s`` and the admin page."""
        rows = [
            route.peer.row("out", route.local, len(route.queue))
            for route in self._routes.values()
            if route.peer is not None and route.peer not in self._incoming
        ]
        local = ", ".join(sorted(self._settings.local_domains))
        return rows + [peer.row("in", local) for peer in self._incoming]

    # --- to other domains -----------------------------------------------------------

    def permitted(self, domain: str) -> bool:
        """Whether heron federates with ``domain`` (``xmpp.s2s_allow``, ``xmpp.s2s_deny``)."""
        settings = self._settings
        if domain in settings.deny:
            return False
        return not settings.allow or domain in settings.allow

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        """Send a stanza from a local domain to a remote one; raises StanzaError when it
        cannot even wait (a refused domain, a full queue)."""
        if not self.permitted(to.domain):
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, "federation refused")
        route = self._route(sender.domain, to.domain)
        if route.ready and route.peer is not None:
            self._write(route, Routed(stanza, sender, to))
        elif len(route.queue) >= self._settings.queue_limit:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many stanzas waiting")
        else:
            route.queue.append(Routed(stanza, sender, to))

    def _route(self, local: str, remote: str) -> _Route:
        route = self._routes.get((local, remote))
        if route is None:
            route = self._routes[(local, remote)] = _Route(local, remote)
        if route.task is None and route.peer is None:  # no stream, nor an incoming bidi one
            route.task = self._spawn(self._run_outgoing(route))
        return route

    def _write(self, route: _Route, routed: Routed) -> None:
        peer = route.peer
        assert peer is not None
        if not peer.stream.send_stanza(routed.stanza):
            log.warning("xmpp s2s: %s -> %s refused by the stream", routed.sender, routed.to)
            return
        peer.stanzas += 1
        self.counters["s2s_stanzas_out"] += 1
        peer.write_soon()

    async def _run_outgoing(self, route: _Route) -> None:
        """Connect, run the stream until it ends, then bounce what could not leave."""
        condition = StanzaCondition.REMOTE_SERVER_NOT_FOUND
        try:
            reader, writer, direct = await self._connect(route.remote)
            condition = StanzaCondition.REMOTE_SERVER_TIMEOUT
            stream = S2SStream(
                role=Role.OUTGOING,
                local_domains=self._settings.local_domains,
                stream_id="",
                local=route.local,
                remote=route.remote,
                tls_active=direct,
                require_tls=self._settings.require_tls,
                secure_auth=self._settings.secure_auth,
                dialback_secret=self._secret,
                max_stanza_bytes=self._settings.max_stanza_bytes,
                bidi=self._settings.bidi,
            )
            route.peer = peer = _Peer(stream, reader, writer)
            route.connected.set()
            self.counters["s2s_outgoing"] += 1
            if direct:
                stream.start_tls_done(peer.certificate_valid_for)
            stream.start()
            peer.write()
            try:
                await self._serve(peer, route)
            finally:
                peer.close()
        except _Unreachable as exc:
            condition = exc.condition
            log.info("xmpp s2s: %s unreachable: %s", route.remote, exc)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError) as exc:
            log.info("xmpp s2s: stream to %s lost: %r", route.remote, exc)
        finally:
            route.task, route.peer, route.ready = None, None, False
            route.connected.clear()
            for future in route.verifications.values():
                if not future.done():
                    future.set_result(None)
            route.verifications.clear()
            await self._bounce_queue(route, condition)
            key = (route.local, route.remote)
            if route.task is None and not route.queue and self._routes.get(key) is route:
                del self._routes[key]  # nothing new came meanwhile: forget the domain

    async def _connect(
        self, domain: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A TCP (or direct TLS) connection to ``domain``'s server, its targets in order."""
        located = await self._locate(domain)
        tried: list[str] = []
        for target in located.targets:
            try:
                async with asyncio.timeout(self._settings.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        target.address,
                        target.port,
                        ssl=self._client_tls if target.direct_tls else None,
                        server_hostname=domain if target.direct_tls else None,
                        limit=_READ_SIZE,
                    )
            except (OSError, TimeoutError) as exc:
                tried.append(f"{target.address}:{target.port}: {exc!r}")
                continue
            return reader, writer, target.direct_tls
        if tried or located.failed:
            why = "; ".join(tried) or "DNS lookup failed"
            raise _Unreachable(StanzaCondition.REMOTE_SERVER_TIMEOUT, why)
        raise _Unreachable(StanzaCondition.REMOTE_SERVER_NOT_FOUND, "no server found")

    async def _bounce_queue(self, route: _Route, condition: StanzaCondition) -> None:
        error = StanzaError(condition, route.remote)
        while route.queue:
            self.counters["s2s_bounced"] += 1
            waiting = route.queue.popleft()
            await self._bounce(waiting.stanza, error, waiting.sender, waiting.to)

    # --- dialback (XEP-0220 §2.2, §2.3) -------------------------------------------------

    async def _verify(self, event: DialbackVerifyNeeded) -> bool | None:
        """Ask ``originating``'s authoritative server whether it issued the key, over heron's
        outgoing stream from ``receiving`` to it; None when it could not be asked."""
        route = self._route(event.receiving, event.originating)
        if route.task is None and route.peer is not None:
            return None  # an incoming bidi stream: it carries no verification requests
        running = route.task
        assert running is not None
        try:
            async with asyncio.timeout(self._settings.policy.handshake_timeout):
                # Connected, or the attempt is over (then there is no one to ask).
                connected = asyncio.ensure_future(route.connected.wait())
                try:
                    await asyncio.wait({connected, running}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    connected.cancel()
                peer = route.peer
                if peer is None:
                    return None
                future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
                route.verifications[(event.stream_id, event.originating, event.receiving)] = future
                peer.stream.send_verify(
                    event.originating, event.receiving, event.stream_id, event.key
                )
                peer.write()
                return await future
        except TimeoutError:
            return None

    async def _answer_dialback(self, peer: _Peer, event: DialbackVerifyNeeded) -> None:
        """The receiving side's check of a dialback key, skipped when the peer's certificate
        already names the domain (what Prosody does)."""
        valid: bool | None
        if not self.permitted(event.originating):
            self.counters["s2s_refused"] += 1
            log.info("xmpp s2s: %s refused (xmpp.s2s_deny, s2s_allow)", event.originating)
            valid = False
        elif peer.certificate_valid_for(event.originating):
            valid = True
        else:
            valid = await self._verify(event)
        if valid is None:
            peer.stream.dialback_failed(
                event.originating, event.receiving, StanzaCondition.REMOTE_SERVER_NOT_FOUND
            )
        else:
            peer.stream.dialback_verified(event.originating, event.receiving, valid)
        await self._answer(peer, None)
        if peer.stream.closed:  # an invalid key, or a refusal: the reader may wait no more
            peer.close()
        else:
            peer.write()

    # --- one connection -------------------------------------------------------------------

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, direct_tls: bool
    ) -> None:
        stream = S2SStream(
            role=Role.INCOMING,
            local_domains=self._settings.local_domains,
            stream_id=secrets.token_hex(12),
            tls_active=direct_tls,
            require_tls=self._settings.require_tls,
            secure_auth=self._settings.secure_auth,
            dialback_secret=self._secret,
            max_stanza_bytes=self._settings.max_stanza_bytes,
            refused=lambda domain: not self.permitted(domain),
            bidi=self._settings.bidi,
        )
        peer = _Peer(stream, reader, writer)
        if not self._connections.open(peer.address, "xmpp s2s"):  # it logs the refusal
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._incoming.add(peer)
        self.counters["s2s_incoming"] += 1
        try:
            if direct_tls:
                stream.start_tls_done(peer.certificate_valid_for)
            await self._serve(peer, None)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError) as exc:
            log.debug("xmpp s2s: stream from %s lost: %r", peer.address, exc)
        finally:
            self._incoming.discard(peer)
            self._drop_bidi_routes(peer)
            self._tasks.discard(task)
            self._connections.close(peer.address)
            peer.close()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _serve(self, peer: _Peer, route: _Route | None) -> None:
        """Read until the stream ends: authenticated within ``limits.handshake_timeout``,
        then never silent longer than ``limits.idle_timeout``, and no faster than
        ``xmpp.s2s_read_rate``."""
        stream, settings = peer.stream, self._settings
        policy = settings.policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.handshake_timeout
        rate = ReadRate.for_stanzas(settings.read_rate, settings.max_stanza_bytes)
        try:
            while not stream.closed:
                authenticated = bool(peer.methods) or (route is not None and route.ready)
                wait = policy.idle_timeout if authenticated else deadline - loop.time()
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await peer.reader.read(_READ_SIZE)
                except TimeoutError:
                    stream.close(StreamCondition.CONNECTION_TIMEOUT)
                    return
                if not data:
                    return
                stream.receive_data(data)
                await self._answer(peer, route)
                peer.write()
                if (pause := rate.pause(len(data), loop.time())) > 0:
                    self._slowed(peer)
                    await asyncio.sleep(pause)  # the peer's bytes wait in its socket meanwhile
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            raise
        except Exception:
            log.exception("xmpp s2s: stream with %s failed", peer.address)
            stream.close(StreamCondition.INTERNAL_SERVER_ERROR)

    def _slowed(self, peer: _Peer) -> None:
        self.counters["s2s_slowed"] += 1
        slowed = self.counters["s2s_slowed"]
        if slowed == 1 or slowed % 1000 == 0:
            log.info(
                "xmpp s2s: reading from %s slowed to %d bytes/s (xmpp.s2s_read_rate);"
                " %d pause(s) so far",
                peer.address,
                self._settings.read_rate,
                slowed,
            )

    async def _answer(self, peer: _Peer, route: _Route | None) -> None:
        stream = peer.stream
        while (event := stream.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                peer.stanzas += 1
                self.counters["s2s_stanzas_in"] += 1
                await self._deliver(event.stanza, event.sender, event.to)
            elif isinstance(event, StartTlsRequested):
                peer.write()
                await peer.writer.drain()
                await peer.writer.start_tls(
                    self._client_tls if route is not None else self._server_tls,
                    server_hostname=route.remote if route is not None else None,
                    ssl_handshake_timeout=self._settings.policy.handshake_timeout,
                )
                stream.start_tls_done(peer.certificate_valid_for)
            elif isinstance(event, Authenticated):
                self._authenticated(peer, route, event)
            elif isinstance(event, DialbackVerifyNeeded):
                self._spawn(self._answer_dialback(peer, event))
            elif isinstance(event, VerifyAnswered) and route is not None:
                key = (event.stream_id, event.originating, event.receiving)
                future = route.verifications.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(None if event.condition is not None else event.valid)
            elif isinstance(event, AuthenticationFailed):
                log.info("xmpp s2s: %s -> %s refused: %s", event.local, event.remote, event.reason)
            elif isinstance(event, StreamEnded):
                if event.error is not None:
                    log.info("xmpp s2s: stream with %s ended: %s", peer.address, event.error)
                return

    def _authenticated(self, peer: _Peer, route: _Route | None, event: Authenticated) -> None:
        if not self.permitted(event.domain):
            self.counters["s2s_refused"] += 1
            log.info("xmpp s2s: %s refused (xmpp.s2s_deny, s2s_allow)", event.domain)
            peer.stream.close(StreamCondition.POLICY_VIOLATION)
            return
        if route is None and self._streams_from(event.domain) >= self._settings.streams_per_domain:
            self.counters["s2s_refused"] += 1
            log.info(
                "xmpp s2s: a stream from %s refused: %d already (xmpp.s2s_streams_per_domain)",
                event.domain,
                self._settings.streams_per_domain,
            )
            peer.stream.close(StreamCondition.RESOURCE_CONSTRAINT, "too many streams")
            return
        peer.methods[event.domain] = event.method.value
        direction = "to" if route is not None else "from"
        log.info("xmpp s2s: stream %s %s authenticated (%s)", direction, event.domain, event.method)
        if route is None and event.bidi:
            route = self._bidi_route(peer, event.local, event.domain)
        if route is not None:
            route.ready = True
            while route.queue:
                self._write(route, route.queue.popleft())

    def _streams_from(self, domain: str) -> int:
        """Incoming streams on which ``domain`` is authenticated."""
        return sum(domain in peer.methods for peer in self._incoming)

    def _bidi_route(self, peer: _Peer, local: str, remote: str) -> _Route | None:
        """XEP-0288: the incoming stream becomes the pair's route, unless a stream of ours
        is already under way for it."""
        route = self._routes.get((local, remote))
        if route is None:
            route = self._routes[(local, remote)] = _Route(local, remote)
        elif route.task is not None or route.peer is not None:
            return None
        route.peer = peer
        return route

    def _drop_bidi_routes(self, peer: _Peer) -> None:
        """The incoming bidi stream is over: its pairs go back to streams of our own."""
        for key, route in list(self._routes.items()):
            if route.peer is peer and route.task is None:
                route.peer, route.ready = None, False
                if route.queue:
                    route.task = self._spawn(self._run_outgoing(route))
                else:
                    del self._routes[key]
