"""XMPP federation: the s2s listeners and the streams to other domains; the only place in
``heron.xmpp.s2s`` that does I/O (RFC 6120 §3.2, §5, §13.7; XEP-0178, XEP-0220, XEP-0368).

Incoming connections (5269 with STARTTLS, 5270 with direct TLS) each run one
:class:`~heron.xmpp.s2s.stream.S2SStream`; stanzas from the domains it authenticated go to
the router. Outgoing streams are kept per (local domain, remote domain) pair, as Prosody
keeps them: a stanza for a domain with no stream queues (a bounded number) while one is
located (SRV, XEP-0368), connected, secured and authenticated, leaves when it is, and
bounces with remote-server-not-found or remote-server-timeout when it cannot be.

Whom to trust: the peer's certificate when its chain verifies and it names the domain
(SASL EXTERNAL, XEP-0178); otherwise dialback (XEP-0220), checked with the peer
domain's authoritative server over heron's own outgoing stream to it, unless
``xmpp.s2s_secure_auth`` requires certificates. No connection goes to an internal address
(loopback, private, heron's own) unless ``xmpp.s2s_allowed_destinations`` allows it:
the rule SIP and TURN follow.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from heron.connections import ConnectionLimiter, ConnectionPolicy
from heron.errors import listen_error
from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from heron.xmpp.features import Routed
from heron.xmpp.jid import JID
from heron.xmpp.s2s.stream import (
    Authenticated,
    DialbackVerifyNeeded,
    Role,
    S2SStream,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    VerifyAnswered,
)

__all__ = ["Federation", "FederationSettings", "Target", "Trust"]

log = logging.getLogger(__name__)

_READ_SIZE = 65_536
_WRITE_LIMIT = 4 << 20
"""Bytes queued for a slow peer server before heron gives up on its stream."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place a remote domain's server may be reached (RFC 6120 §3.2, XEP-0368)."""

    address: str
    port: int
    direct_tls: bool


class Trust(Protocol):
    """What the TLS side knows of a peer: whether its certificate chain verified and names
    a domain (RFC 6125 as RFC 7590 applies it)."""

    def valid_for(self, tls: ssl.SSLObject | None, domain: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class FederationSettings:
    """The ``xmpp.s2s_*`` settings, and the limits every listener shares."""

    local_domains: frozenset[str]
    """Every domain heron answers for over s2s: the XMPP hosts and the group-chat service."""
    require_tls: bool = True
    secure_auth: bool = False
    allow: frozenset[str] = frozenset()
    """When not empty, the only remote domains heron talks to (Prosody's s2s_whitelist)."""
    deny: frozenset[str] = frozenset()
    queue_limit: int = 200
    max_stanza_bytes: int = 262_144
    connect_timeout: float = 10.0
    policy: ConnectionPolicy = field(default_factory=ConnectionPolicy)


Deliver = Callable[[Element, JID, JID], Awaitable[None]]
"""The router's entry for a stanza from an authenticated remote domain (``Router.route``)."""
Bounce = Callable[[Element, StanzaError, JID, JID], Awaitable[None]]
"""The router's answer to a local sender whose stanza could not leave."""
Locate = Callable[[str], Awaitable[Sequence[Target]]]


class _Link:
    """The socket under one s2s stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self._flush_pending = False

    @property
    def tls(self) -> ssl.SSLObject | None:
        tls: ssl.SSLObject | None = self.writer.get_extra_info("ssl_object")
        return tls

    def write(self, stream: S2SStream) -> None:
        data = stream.data_to_send()
        if data and not self.writer.is_closing():
            if self.writer.transport.get_write_buffer_size() > _WRITE_LIMIT:
                log.info("xmpp s2s: %s reads too slowly; closing its stream", self.peer)
                self.writer.transport.abort()
                return
            self.writer.write(data)

    def write_soon(self, stream: S2SStream) -> None:
        """Write once this turn of the loop is over: a burst of stanzas leaves in one record."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush, stream)

    def _flush(self, stream: S2SStream) -> None:
        self._flush_pending = False
        self.write(stream)

    def close(self) -> None:
        self.writer.close()


class _Peer:
    """One live s2s stream, either direction, as ``heron xmpp s2s`` shows it."""

    def __init__(self, stream: S2SStream, link: _Link, direction: str) -> None:
        self.stream, self.link, self.direction = stream, link, direction
        self.domains: dict[str, str] = {}
        """Remote domains authenticated on this stream, with how (external, dialback)."""
        self.since = time.time()
        self.stanzas = 0

    def row(self, local: str, queued: int = 0) -> dict[str, Any]:
        tls = self.link.tls
        return {
            "direction": self.direction,
            "local": local,
            "remote": ", ".join(self.domains) or "-",
            "auth": ", ".join(sorted(set(self.domains.values()))) or "pending",
            "tls": tls.version() if tls is not None else "none",
            "address": self.link.peer,
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
        self.verifications: dict[tuple[str, str, str], asyncio.Future[bool]] = {}
        self.features = asyncio.Event()
        """Set once the stream is secured, when a dialback verification may be sent on it."""


class Federation:
    """Implements the router's remote side (:class:`heron.xmpp.router.RemoteDomains`)."""

    def __init__(
        self,
        settings: FederationSettings,
        *,
        deliver: Deliver,
        bounce: Bounce,
        locate: Locate,
        internal: Callable[[str], bool],
        trust: Trust,
        server_tls: ssl.SSLContext,
        client_tls: ssl.SSLContext,
        connections: ConnectionLimiter,
        dialback_secret: bytes,
    ) -> None:
        self._settings = settings
        self._deliver = deliver
        self._bounce = bounce
        self._locate = locate
        self._internal = internal
        self._trust = trust
        self._server_tls = server_tls
        self._client_tls = client_tls
        self._connections = connections
        self._secret = dialback_secret
        self._routes: dict[tuple[str, str], _Route] = {}
        self._incoming: set[_Peer] = set()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = dict.fromkeys(
            ("s2s_in", "s2s_out", "s2s_stanzas_in", "s2s_stanzas_out", "s2s_bounced", "s2s_refused"),
            0,
        )

    # --- life cycle -------------------------------------------------------------------

    async def listen(self, key: str, host: str, port: int, *, direct_tls: bool) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._accept(_Link(reader, writer), direct_tls=direct_tls)

        try:
            server = await asyncio.start_server(
                accept,
                host,
                port,
                ssl=self._server_tls if direct_tls else None,
                limit=_READ_SIZE,
                ssl_handshake_timeout=self._settings.policy.handshake_timeout
                if direct_tls
                else None,
            )
        except OSError as exc:
            raise listen_error(key, f"{host}:{port}", exc) from None
        self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for peer in [*self._incoming, *(r.peer for r in self._routes.values() if r.peer)]:
            peer.stream.close(StreamCondition.SYSTEM_SHUTDOWN)
            peer.link.write(peer.stream)
            peer.link.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()

    def rows(self) -> list[dict[str, Any]]:
        """Every live s2s stream, for ``heron xmpp s2s`` and the admin page."""
        rows = [
            route.peer.row(route.local, len(route.queue))
            for route in self._routes.values()
            if route.peer is not None
        ]
        rows += [peer.row(", ".join(sorted(self._settings.local_domains))) for peer in self._incoming]
        return rows

    # --- to other domains -----------------------------------------------------------

    def permitted(self, domain: str) -> bool:
        """Whether heron talks to ``domain`` at all (``xmpp.s2s_allow``/``s2s_deny``)."""
        settings = self._settings
        if domain in settings.deny:
            return False
        return not settings.allow or domain in settings.allow

    async def send(self, stanza: Element, sender: JID, to: JID) -> None:
        """Send a stanza from a local domain to a remote one; raises StanzaError when it
        cannot even wait (a denied domain, a full queue)."""
        if not self.permitted(to.domain):
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND, "federation refused")
        if sender.domain not in self._settings.local_domains:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "not from a local domain")
        route = self._route(sender.domain, to.domain)
        if route.ready and route.peer is not None:
            self._write(route, stanza)
            return
        if len(route.queue) >= self._settings.queue_limit:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "too many stanzas waiting")
        route.queue.append(Routed(stanza, sender, to))

    def _route(self, local: str, remote: str) -> _Route:
        route = self._routes.get((local, remote))
        if route is None:
            route = self._routes[(local, remote)] = _Route(local, remote)
        if route.task is None:
            route.task = self._spawn(self._run_outgoing(route))
        return route

    def _write(self, route: _Route, stanza: Element) -> None:
        peer = route.peer
        assert peer is not None
        peer.stream.send_stanza(stanza)
        peer.stanzas += 1
        self.counters["s2s_stanzas_out"] += 1
        peer.link.write_soon(peer.stream)

    async def _run_outgoing(self, route: _Route) -> None:
        """Connect, run the stream until it ends, then bounce what could not leave."""
        failure = StanzaCondition.REMOTE_SERVER_NOT_FOUND
        try:
            link, direct = await self._connect(route.remote)
            failure = StanzaCondition.REMOTE_SERVER_TIMEOUT
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
            )
            route.peer = peer = _Peer(stream, link, "out")
            self.counters["s2s_out"] += 1
            if direct:
                stream.start_tls_done(self._valid_for(link))
            stream.start()
            link.write(stream)
            await self._serve(peer, route)
        except _Unreachable as exc:
            log.info("xmpp s2s: %s unreachable: %s", route.remote, exc)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError) as exc:
            log.info("xmpp s2s: stream to %s lost: %r", route.remote, exc)
        finally:
            route.task, route.peer, route.ready = None, None, False
            route.features.clear()
            for future in route.verifications.values():
                if not future.done():
                    future.set_result(False)
            route.verifications.clear()
            await self._bounce_queue(route, failure)

    async def _connect(self, domain: str) -> tuple[_Link, bool]:
        """A TCP (or direct TLS) connection to ``domain``'s server, trying its targets in order."""
        try:
            targets = await self._locate(domain)
        except StanzaError as error:
            raise _Unreachable(error.text or "no such domain") from None
        tried: list[str] = []
        for target in targets:
            if self._internal(target.address):
                tried.append(f"{target.address} is internal (xmpp.s2s_allowed_destinations)")
                continue
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
            return _Link(reader, writer), target.direct_tls
        raise _Unreachable("; ".join(tried) or "no server found")

    async def _bounce_queue(self, route: _Route, condition: StanzaCondition) -> None:
        error = StanzaError(condition, route.remote)
        while route.queue:
            self.counters["s2s_bounced"] += 1
            waiting = route.queue.popleft()
            await self._bounce(waiting.stanza, error, waiting.sender, waiting.to)

    def _flush(self, route: _Route) -> None:
        while route.queue and route.peer is not None:
            self._write(route, route.queue.popleft().stanza)

    # --- dialback verification (XEP-0220 §2.3) ------------------------------------------

    async def _verify(self, receiving: str, originating: str, stream_id: str, key: str) -> bool:
        """Ask ``originating``'s authoritative server whether it issued ``key``, over heron's
        outgoing stream from ``receiving`` to it."""
        route = self._route(receiving, originating)
        try:
            async with asyncio.timeout(self._settings.policy.handshake_timeout):
                await route.features.wait()
                peer = route.peer
                if peer is None:
                    return False
                future = asyncio.get_running_loop().create_future()
                route.verifications[(stream_id, originating, receiving)] = future
                peer.stream.send_verify(originating, receiving, stream_id, key)
                peer.link.write(peer.stream)
                return bool(await future)
        except TimeoutError:
            return False

    # --- one connection -------------------------------------------------------------------

    async def _accept(self, link: _Link, *, direct_tls: bool) -> None:
        if not self._connections.open(link.peer, "xmpp s2s"):  # it logs the refusal
            link.writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        stream = S2SStream(
            role=Role.INCOMING,
            local_domains=self._settings.local_domains,
            stream_id=secrets.token_hex(12),
            tls_active=direct_tls,
            require_tls=self._settings.require_tls,
            secure_auth=self._settings.secure_auth,
            dialback_secret=self._secret,
            max_stanza_bytes=self._settings.max_stanza_bytes,
        )
        peer = _Peer(stream, link, "in")
        self._incoming.add(peer)
        self.counters["s2s_in"] += 1
        try:
            if direct_tls:
                stream.start_tls_done(self._valid_for(link))
            await self._serve(peer, None)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError) as exc:
            log.debug("xmpp s2s: stream from %s lost: %r", link.peer, exc)
        finally:
            self._incoming.discard(peer)
            self._tasks.discard(task)
            self._connections.close(link.peer)
            link.close()

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _valid_for(self, link: _Link) -> Callable[[str], bool]:
        tls = link.tls
        return lambda domain: self._trust.valid_for(tls, domain)

    async def _serve(self, peer: _Peer, route: _Route | None) -> None:
        """Read until the stream ends: the handshake within ``limits.handshake_timeout``,
        then no silence longer than ``limits.idle_timeout``."""
        stream, link, policy = peer.stream, peer.link, self._settings.policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.handshake_timeout
        try:
            while not stream.closed:
                wait = deadline - loop.time() if not peer.domains else policy.idle_timeout
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        data = await link.reader.read(_READ_SIZE)
                except TimeoutError:
                    stream.close(StreamCondition.CONNECTION_TIMEOUT)
                    link.write(stream)
                    return
                if not data:
                    return
                stream.receive_data(data)
                await self._answer(peer, route)
                link.write(stream)
        except Exception:
            if stream.closed:
                raise
            log.exception("xmpp s2s: stream with %s failed", link.peer)
            stream.close(StreamCondition.INTERNAL_SERVER_ERROR)
            link.write(stream)

    async def _answer(self, peer: _Peer, route: _Route | None) -> None:
        stream, link = peer.stream, peer.link
        while (event := stream.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                peer.stanzas += 1
                self.counters["s2s_stanzas_in"] += 1
                await self._deliver(event.stanza, event.sender, event.to)
            elif isinstance(event, StartTlsRequested):
                link.write(stream)
                await link.writer.drain()
                context = self._client_tls if route is not None else self._server_tls
                await link.writer.start_tls(
                    context,
                    server_hostname=route.remote if route is not None else None,
                    ssl_handshake_timeout=self._settings.policy.handshake_timeout,
                )
                stream.start_tls_done(self._valid_for(link))
                if route is not None:
                    route.features.set()
            elif isinstance(event, Authenticated):
                self._authenticated(peer, route, event)
            elif isinstance(event, DialbackVerifyNeeded):
                self._spawn(self._answer_dialback(peer, event))
            elif isinstance(event, VerifyAnswered) and route is not None:
                key = (event.stream_id, event.originating, event.receiving)
                future = route.verifications.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(event.valid)
            elif isinstance(event, StreamEnded):
                if event.error is not None:
                    log.info("xmpp s2s: stream with %s ended: %s", link.peer, event.error)
                return

    def _authenticated(self, peer: _Peer, route: _Route | None, event: Authenticated) -> None:
        if not self.permitted(event.domain):
            self.counters["s2s_refused"] += 1
            log.info("xmpp s2s: %s refused (xmpp.s2s_deny / s2s_allow)", event.domain)
            peer.stream.close(StreamCondition.POLICY_VIOLATION)
            peer.link.write(peer.stream)
            return
        peer.domains[event.domain] = event.method
        log.info(
            "xmpp s2s: %s %s authenticated by %s",
            "stream to" if route is not None else "stream from",
            event.domain,
            event.method,
        )
        if route is not None:
            route.ready = True
            route.features.set()
            self._flush(route)

    async def _answer_dialback(self, peer: _Peer, event: DialbackVerifyNeeded) -> None:
        """XEP-0220 §2.2: the receiving side's check of a dialback key, skipped when the
        peer's certificate already names the domain (what Prosody does)."""
        if not self.permitted(event.originating):
            valid = False
        elif self._trust.valid_for(peer.link.tls, event.originating):
            valid = True
        else:
            valid = await self._verify(
                event.receiving, event.originating, event.stream_id, event.key
            )
        peer.stream.dialback_verified(event.originating, event.receiving, valid)
        await self._answer(peer, None)
        peer.link.write(peer.stream)


class _Unreachable(Exception):
    """No server of the remote domain could be reached."""
