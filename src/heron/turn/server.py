"""The TURN component: config in, sockets around :class:`~heron.turn.core.TurnCore`.

With the sockets of :mod:`heron.turn.transports` and the keys and guess throttle of
:mod:`heron.turn.adapters`, this is where TURN meets the event loop, the accounts and
the clock; it decodes, looks up keys, and hands everything else to the core.

A key lookup is a database query, so a stranger's datagram gets one only once
the core has found it worth it (:meth:`TurnCore.needs_keys`: a signed request,
our realm, a valid nonce for that address, no wait in the guess throttle).
Accounts come from the cache every protocol shares (:class:`heron.accounts.AccountCache`:
unknown names cached too, an account dropped when it changes); messages waiting for keys
are bounded in all and per source network, beyond which they are dropped (a UDP client
retransmits).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from heron import __version__
from heron.accounts import AccountChange, Missing
from heron.component import Listener, Services
from heron.config import Config, ListenAddress
from heron.control import View, query
from heron.credentials import turn_secret
from heron.errors import ConfigError, HeronError, listen_error
from heron.guesses import account_key, network_key
from heron.handoff import AcceptedSockets, Handoff
from heron.inherit import hand_out, inherited_socket
from heron.stun import KIND_BY_FIRST_BYTE, Message, PacketKind, StunRemoteError, Username
from heron.turn.adapters.keys import TurnKeys, known, turn_account
from heron.turn.adapters.throttle import (
    CHANGES_COMMAND,
    CHANGES_KEPT,
    GUESS_COMMAND,
    GUESS_TIMEOUT,
    Report,
    UnixTimeGuesses,
    WorkerGuesses,
)
from heron.turn.allocation import DROP_REASONS, Address, ClientKey, ClientLink
from heron.turn.auth import Credentials
from heron.turn.core import TurnCore, TurnPolicy
from heron.turn.discovery import AlternateAddresses
from heron.turn.nonce import NonceIssuer
from heron.turn.peers import PeerPolicy
from heron.turn.replies import Reply
from heron.turn.transports.relays import RelaySockets
from heron.turn.transports.stream import StreamClient, StreamLimits
from heron.turn.transports.tcp_relay import PeerLink, TcpRelay, open_outgoing
from heron.turn.transports.udp import (
    SOCKET_DROP_REASONS,
    Datagrams,
    SocketCounters,
    UdpClient,
    UdpSocket,
)
from heron.udp_listener import bind_udp, report_buffers

__all__ = ["TurnComponent", "build_turn", "build_turn_worker", "relay_addresses"]

log = logging.getLogger(__name__)

MAX_WAITING = 256
"""Messages waiting for a key lookup, in all; more are dropped."""
MAX_WAITING_PER_SOURCE = 16
"""Requests from one source network (IPv4 address, IPv6 /64) waiting for a store query of
a name of their own."""
SWEEP_SECONDS = 1.0
COUNTERS_COMMAND = "turn.worker-counters"
"""Control command by which each TURN worker gives the main process its counters, once a
sweep: ``{"pid": PID, "counters": {...}}``, so that ``turn.counters`` covers them all."""
DROPPED = "packets_dropped_"
"""Prefix of the counters view's drop fields, one per reason: ``/metrics`` serves them as
one family, ``heron_turn_packets_dropped_total{reason=...}``."""
CONNECT_TIMEOUT = 25.0
"""RFC 6062 §5.2: give up on a peer that does not answer, with 447."""


def build_turn(services: Services) -> TurnComponent | None:
    return TurnComponent(services) if services.config.turn.enabled else None


def build_turn_worker(services: Services) -> TurnComponent | None:
    """TURN in an extra worker process (``turn.workers``): guesses go to the main process."""
    return TurnComponent(services, worker=True) if services.config.turn.enabled else None


# Per packet: an Enum member looked up on its class costs more than the comparison.
_STUN, _CHANNEL_DATA = PacketKind.STUN, PacketKind.CHANNEL_DATA


def listening_ports(config: Config) -> set[int]:
    """Every port heron's services listen on, by the configuration."""
    ports: set[int] = set()
    for section in (config.turn, config.sip, config.xmpp, config.web, config.mux):
        for value in vars(section).values():
            if isinstance(value, list):
                ports.update(a.port for a in value if isinstance(a, ListenAddress))
    if config.turn.other_address is not None:
        ports.update(a.port + 1 for a in config.turn.listen)  # RFC 5780's second port
    return ports


def relay_addresses(
    config: Config,
) -> tuple[dict[int, IPv4Address | IPv6Address], dict[int, IPv4Address | IPv6Address]]:
    """(addresses to bind relays on, addresses to advertise) by IP version."""
    turn = config.turn
    bind: dict[int, IPv4Address | IPv6Address] = {}
    shown: dict[int, IPv4Address | IPv6Address] = {}
    specific = [
        ip_address(a.host)
        for a in [*turn.listen, *config.mux.listen]
        if a.host != "localhost" and not ip_address(a.host).is_unspecified
    ]
    if turn.relay_addresses or specific:
        for address in turn.relay_addresses or specific:
            bind.setdefault(address.version, address)
    elif config.public_addresses:
        for address in config.public_addresses:
            wildcard = IPv4Address("0.0.0.0") if address.version == 4 else IPv6Address("::")
            bind.setdefault(address.version, wildcard)
            shown.setdefault(address.version, address)
    else:
        log.warning("turn: relaying on 127.0.0.1 only; set turn.relay_addresses for real clients")
        bind[4] = IPv4Address("127.0.0.1")
    if turn.external_address is not None:
        shown[turn.external_address.version] = turn.external_address
    return bind, shown


class TurnComponent:
    """STUN/TURN on UDP, TCP and TLS listeners, relaying through UDP sockets."""

    def __init__(
        self,
        services: Services,
        clock: Callable[[], float] = time.monotonic,
        *,
        worker: bool = False,
    ) -> None:
        self._services = services
        self._config = services.config
        self._clock = clock
        self._guesses = UnixTimeGuesses(services.guards.guesses)
        self._worker = WorkerGuesses(services.config.data_dir) if worker else None
        """Set in an extra worker process: guesses are the main process's to count."""
        self._changes: deque[tuple[int, str]] = deque(maxlen=CHANGES_KEPT)
        """Accounts whose password changed or that went, numbered, for the workers."""
        self._changes_seen = 0
        """In a worker: the last change number heard from the main process."""
        self._udp: list[UdpSocket] = []
        self._udp_by_address: dict[Address, UdpSocket] = {}
        self._links: dict[int, PeerLink] = {}
        self._servers: list[asyncio.Server] = []
        self._accepted = AcceptedSockets("turn")
        self._sweeper: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, int] = {}
        """Messages waiting for keys, by source network."""
        self._waiting_total = 0
        self._dropped = 0
        """Messages dropped because too many were waiting for keys."""
        self._sockets = SocketCounters()
        """What this process's UDP listeners and relays received and lost."""
        self._worker_counters: dict[int, dict[str, int]] = {}
        """In the main process: each worker's last counters, by process id."""
        self.core: TurnCore | None = None
        self._relays: RelaySockets | None = None

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> Sequence[Listener]:
        config, turn = self._config, self._config.turn
        loop = asyncio.get_running_loop()
        secret = turn_secret(config)
        bind, shown = relay_addresses(config)
        self._relays = RelaySockets(
            loop,
            bind,
            (turn.relay_port_min, turn.relay_port_max),
            advertised=shown,
            clock=self._clock,
            counters=self._sockets,
        )
        own = [*bind.values(), *shown.values(), *config.public_addresses]
        alternate = self._alternate()
        policy = TurnPolicy(
            realm=config.turn_realm,
            software=f"heron {__version__}",
            default_lifetime=turn.default_lifetime,
            max_lifetime=turn.max_lifetime,
            user_quota=turn.user_quota,
            total_quota=turn.total_quota,
            max_bps=turn.max_bps,
            allow_anonymous=turn.allow_anonymous,
            alternate=alternate,
        )
        self._relays.on_peer = self._peer_arrived
        self._relays.on_closed = self._peer_gone
        self.core = TurnCore(
            policy,
            self._relays,
            NonceIssuer(os.urandom(32)),
            connection_ids=lambda: int.from_bytes(os.urandom(4), "big"),
            peers=PeerPolicy(
                allowed=turn.allowed_peer_ranges,
                denied=turn.denied_peer_ranges,
                own_addresses=own,
                own_ports=listening_ports(config),
            ),
            guesses=self._worker or self._guesses,
        )
        self._keys = TurnKeys(
            self._services.account_cache, config.domain, config.turn_realm, secret
        )
        guards = self._services.guards
        self._stream_limits = StreamLimits(
            guards.connections,
            guards.policy.handshake_timeout,
            guards.policy.idle_timeout,
            self.core.allocations.__contains__,
        )
        self._services.accounts.subscribe(self._account_changed)
        if self._worker is None:
            self._services.commands[GUESS_COMMAND] = self._guess_command
            self._services.commands[CHANGES_COMMAND] = self._changes_command
            self._services.commands[COUNTERS_COMMAND] = self._counters_command
        listeners: list[Listener] = []
        for address in turn.listen:
            listeners.append(self._listen_udp(loop, address))
            listeners.append(await self._listen_stream(loop, "tcp", "turn.listen", address, None))
        if alternate is not None:
            for host in alternate.ips:
                for port in alternate.ports:
                    if (host, port) not in self._udp_by_address:
                        extra = ListenAddress(host, port)
                        listeners.append(self._listen_udp(loop, extra, "turn.other_address"))
        if turn.tls_listen or config.mux.listen:
            context = self._services.certificate.context(alpn=("stun.turn",))
            for address in turn.tls_listen:
                listeners.append(
                    await self._listen_stream(loop, "tls", "turn.tls_listen", address, context)
                )
            if self._worker is None:
                self._services.handoffs["turn"] = self._handoff(context)
        for address in config.mux.listen:  # UDP of the port-443 mux is STUN/TURN's alone
            listeners.append(self._listen_udp(loop, address, "mux.listen"))
        self._sweeper = asyncio.create_task(self._sweep())
        return listeners

    def apply(self, config: Config) -> frozenset[str]:
        """Nothing of ``[turn]`` yet: its certificate is reloaded with the others, and
        allocations, permissions and channels stay as they are."""
        return frozenset()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        self._accepted.close()
        for udp in self._udp:
            udp.close()
        if self.core is not None:
            for key in list(self.core.allocations):
                self.core.close_client(key)
        if self._relays is not None:
            self._relays.close()
        for server in self._servers:
            await server.wait_closed()

    def views(self) -> Mapping[str, View]:
        return {
            "turn.allocations": self._allocation_rows,
            "turn.counters": self._counter_rows,
            "turn.workers": self._worker_rows,
        }

    def _allocation_rows(self) -> list[dict[str, Any]]:
        assert self.core is not None
        now = self._clock()
        return [
            {
                "transport": transport,
                "client": f"{client[0]}:{client[1]}",
                "user": allocation.username,
                "relays": [f"{r.address[0]}:{r.address[1]}" for r in allocation.relays.values()],
                "expires_in": int(allocation.expires - now),
                "permissions": len(allocation.permissions),
                "channels": len(allocation.channels),
                "bytes_to_peer": allocation.traffic.bytes_to_peer,
                "bytes_to_client": allocation.traffic.bytes_to_client,
            }
            for (transport, client, _), allocation in self.core.live()
        ]

    def _counter_rows(self) -> list[dict[str, Any]]:
        """This process's counters and the last each worker reported, summed."""
        total = self._own_counters()
        for counters in self._live_workers().values():
            for name, value in counters.items():
                total[name] = total.get(name, 0) + value
        return [total]

    def _worker_rows(self) -> list[dict[str, Any]]:
        """Per process (the main one first): what it received, relayed and dropped."""
        processes = {os.getpid(): self._own_counters(), **self._live_workers()}
        return [
            {
                "pid": pid,
                "allocations_active": counters.get("allocations_active", 0),
                "packets_received": counters.get("packets_received", 0),
                "packets_relayed": counters.get("packets_relayed", 0),
                "packets_dropped": sum(
                    value for name, value in counters.items() if name.startswith(DROPPED)
                ),
            }
            for pid, counters in processes.items()
        ]

    def _live_workers(self) -> dict[int, dict[str, int]]:
        """The last report of each worker still running: one that died (the main process
        starts another, :mod:`heron.workers`) took its allocations with it."""
        for pid in list(self._worker_counters):
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):  # workers run as this user
                del self._worker_counters[pid]
        return self._worker_counters

    def _counters_command(self, argument: str) -> list[dict[str, Any]]:
        """A worker's counters (:data:`COUNTERS_COMMAND`)."""
        try:
            report = json.loads(argument)
            pid, counters = int(report["pid"]), report["counters"]
        except (ValueError, TypeError, KeyError):
            raise ValueError("expected {pid, counters}") from None
        if not isinstance(counters, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in counters.values()
        ):
            raise ValueError("counters must map names to integers")
        self._worker_counters[pid] = counters
        return []

    async def _report_counters(self) -> None:
        """In a worker: give the main process this process's counters."""
        report = json.dumps(
            {"pid": os.getpid(), "counters": self._own_counters()}, separators=(",", ":")
        )
        try:
            await asyncio.wait_for(
                query(self._config.data_dir, f"{COUNTERS_COMMAND} {report}"), GUESS_TIMEOUT
            )
        except (HeronError, OSError, ValueError, TimeoutError):
            return  # the main process is stopping

    def _own_counters(self) -> dict[str, int]:
        assert self.core is not None
        counters, traffic = self.core.counters, self.core.traffic()
        return {
            "allocations_active": len(self.core.allocations),
            "allocations_created": counters.allocations_created,
            "allocations_expired": counters.allocations_expired,
            "auth_failures": counters.auth_failures,
            "auth_throttled": counters.auth_throttled,
            "allocations_ended": counters.allocations_ended,
            "key_lookups": self._keys.lookups,
            "connections_closed": self._stream_limits.closed,
            "requests": counters.requests,
            "packets_relayed": traffic.packets_to_peer + traffic.packets_to_client,
            "bytes_relayed": traffic.bytes_to_peer + traffic.bytes_to_client,
            "packets_received": self._sockets.received,
            **{f"{DROPPED}{reason}": count for reason, count in self._drops().items()},
        }

    def _drops(self) -> dict[str, int]:
        """Every packet dropped, by reason (:data:`DROP_REASONS`, :data:`SOCKET_DROP_REASONS`,
        and requests refused while too many waited for a key lookup)."""
        assert self.core is not None and self._relays is not None
        drops = dict.fromkeys((*DROP_REASONS, *SOCKET_DROP_REASONS, "key_lookup_queue_full"), 0)
        drops.update(self.core.counters.drops)
        drops["receive_buffer"] = (
            self._sockets.closed_kernel_drops
            + sum(udp.kernel_drops() for udp in self._udp)
            + self._relays.kernel_drops()
        )
        drops["send_failed"] = self._sockets.send_failed
        drops["key_lookup_queue_full"] = self._dropped
        return drops

    def _alternate(self) -> AlternateAddresses | None:
        """The RFC 5780 grid: the first UDP listener and the other address, ports P and P+1."""
        other = self._config.turn.other_address
        if other is None:
            return None
        primary = next(
            (
                a
                for a in self._config.turn.listen
                if a.host != "localhost"
                and not ip_address(a.host).is_unspecified
                and ip_address(a.host).version == other.version
            ),
            None,
        )
        if primary is None:
            raise ConfigError(
                "turn.other_address: needs a turn.listen address of the same IP version "
                "that is not a wildcard"
            )
        return AlternateAddresses((primary.host, str(other)), (primary.port, primary.port + 1))

    def _listen_udp(
        self, loop: asyncio.AbstractEventLoop, address: ListenAddress, key: str = "turn.listen"
    ) -> Listener:
        name = f"udp://{address}"
        sock = inherited_socket(name) if self._worker is not None else None
        if sock is None:
            # The main process binds every worker's member of the SO_REUSEPORT group too.
            workers = 1 if self._worker is not None else self._config.turn.workers
            group = [bind_udp(address, key, reuse_port=workers > 1) for _ in range(workers)]
            sock = hand_out(name, group, self._services.worker_sockets)
            report_buffers("turn", name, sock)
        udp = UdpSocket(sock, loop, self._sockets)
        log.info(
            "turn: %s and its relays read and send by %s",
            name,
            "recvmmsg/sendmmsg" if udp.batched else "recvfrom/sendto",
        )
        self._udp.append(udp)
        self._udp_by_address[udp.address] = udp
        local = udp.address
        core, clock, stun = self.core, self._clock, self._stun
        assert core is not None
        channel_data = core.channel_data

        def receive(batch: Datagrams) -> None:
            now = clock()  # a batch is read at one instant
            for data, source in batch:
                if not data:
                    continue
                kind = KIND_BY_FIRST_BYTE[data[0]]
                if kind is _CHANNEL_DATA:
                    channel_data(("udp", source, local), data, now)
                elif kind is _STUN:
                    stun(data, ("udp", source, local), UdpClient(udp, source))

        udp.start(receive)
        return Listener("turn", name)

    async def _listen_stream(
        self,
        loop: asyncio.AbstractEventLoop,
        kind: str,
        key: str,
        address: ListenAddress,
        context: ssl.SSLContext | None,
    ) -> Listener:
        core = self.core
        assert core is not None
        limits = self._stream_limits
        handshake = limits.handshake_timeout if context is not None else None
        try:
            server = await loop.create_server(
                lambda: StreamClient(kind, self.receive, core.close_client, limits),
                address.host,
                address.port,
                ssl=context,
                ssl_handshake_timeout=handshake,
                reuse_address=True,
                reuse_port=self._config.turn.workers > 1,
            )
        except OSError as exc:
            raise listen_error(key, address, exc) from None
        self._servers.append(server)
        return Listener("turn", f"{kind}://{address}")

    def _handoff(self, context: ssl.SSLContext) -> Handoff:
        """TURN over TCP or TLS on a connection the port-443 mux accepted."""
        core = self.core
        assert core is not None
        limits = self._stream_limits

        def take(sock: socket.socket, tls: bool) -> None:
            kind = "tls" if tls else "tcp"
            self._accepted.serve(
                lambda: StreamClient(kind, self.receive, core.close_client, limits),
                sock,
                context if tls else None,
                limits.handshake_timeout,
            )

        return take

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = self._clock()
            assert self.core is not None and self._relays is not None
            for connection in self.core.expire(now):
                link = self._links.pop(connection, None)
                if link is not None:
                    link.close()
            self._relays.expire(now)
            if self._worker is not None:
                self._services.certificate.follow()  # renewed by the main process (ACME)
                await self._hear_changes()
                await self._report_counters()

    async def _hear_changes(self) -> None:
        """In a worker: end what accounts changed in the main process had opened here."""
        try:
            rows = await asyncio.wait_for(
                query(self._config.data_dir, f"{CHANGES_COMMAND} {self._changes_seen}"),
                GUESS_TIMEOUT,
            )
        except (HeronError, OSError, ValueError, TimeoutError):
            return  # the main process is stopping; WorkerGuesses logs its absence
        for row in rows:
            self._changes_seen = max(self._changes_seen, int(row["seq"]))
            account = str(row["account"])
            # No announcements reach a worker's own account cache: this is how it hears.
            local, _, domain = account.rpartition("@")
            self._services.account_cache.invalidate(local, domain)
            self._end_account(account, "changed")

    def _changes_command(self, argument: str) -> list[dict[str, Any]]:
        """The account changes after number ``argument`` (:data:`CHANGES_COMMAND`)."""
        try:
            after = int(argument)
        except ValueError:
            raise ValueError("expected the last change number seen") from None
        return [{"seq": seq, "account": account} for seq, account in self._changes if seq > after]

    # --- packets --------------------------------------------------------------------

    def receive(self, frame: bytes, key: ClientKey, client: ClientLink) -> None:
        """A frame from a stream client: ChannelData or STUN (the framer let no other in)."""
        assert self.core is not None
        if KIND_BY_FIRST_BYTE[frame[0]] is _CHANNEL_DATA:
            self.core.channel_data(key, frame, self._clock())
        else:
            self._stun(frame, key, client)

    def _stun(self, data: bytes, key: ClientKey, client: ClientLink) -> None:
        try:
            message = Message.decode(data)
        except StunRemoteError as exc:
            if exc.request is not None:
                client.send(exc.request.error_response(exc.code, exc.reason).encode())
            return
        username = message.find(Username)
        if username is None:
            self._handle(message, key, client, None, None)
            return
        account = turn_account(username.value, self._config.domain)
        credentials = self._keys.cached(username.value)
        missing = isinstance(credentials, Missing)
        worker = self._worker
        if missing or (worker is not None and not worker.fresh(account, key[1][0])):
            assert self.core is not None
            if self.core.needs_keys(message, key[1][0], account, self._clock()):
                self._wait_for_keys(message, key, client, username.value, account)
                return
        self._handle(message, key, client, known(credentials), account)

    def _wait_for_keys(
        self,
        message: Message,
        key: ClientKey,
        client: ClientLink,
        username: str,
        account: str | None,
    ) -> None:
        # Each new name costs a store query, so those count per source; requests for a
        # name already being looked up (a client's burst of allocations) only in all.
        network: str | None = network_key(key[1][0])
        if not self._keys.starts_query(username):
            network = None
        waiting = 0 if network is None else self._waiting.get(network, 0)
        if self._waiting_total >= MAX_WAITING or waiting >= MAX_WAITING_PER_SOURCE:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning(
                    "turn: request from %s dropped: too many waiting for a key lookup "
                    "(%d from that network, %d in all); %d dropped so far",
                    key[1][0],
                    waiting,
                    self._waiting_total,
                    self._dropped,
                )
            return
        if network is not None:
            self._waiting[network] = waiting + 1
        self._waiting_total += 1
        self._spawn(self._lookup_then_handle(message, key, client, username, account, network))

    # --- TCP relaying (RFC 6062) ---------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(self, reply: Reply, client: ClientLink) -> None:
        order = reply.connect
        assert order is not None and self.core is not None
        assert isinstance(order.relay, TcpRelay)
        try:
            link = await open_outgoing(order.relay, order.peer, CONNECT_TIMEOUT)
        except OSError as exc:
            log.info("turn: connect to %s failed: %s", order.peer, exc)
            self.core.connection_closed(order.connection_id)
            client.send(order.failure)
            return
        if not self.core.connected(order.connection_id, self._clock()):
            link.close()  # the allocation went away while we connected
            client.send(order.failure)
            return
        link.connection_id = order.connection_id
        self._links[order.connection_id] = link
        client.send(reply.data)

    def _bind(self, reply: Reply, connection: int, client: ClientLink) -> None:
        link = self._links.get(connection)
        if link is None or not isinstance(client, StreamClient):
            assert self.core is not None
            self.core.connection_closed(connection)
            return
        client.send(reply.data)
        client.pipe(link)

    def _peer_arrived(self, relay: TcpRelay, link: PeerLink) -> None:
        assert self.core is not None
        connection = self.core.peer_connected(relay, link.peer, self._clock())
        if connection is None:
            link.close()
            return
        link.connection_id = connection
        self._links[connection] = link

    def _peer_gone(self, link: PeerLink) -> None:
        if link.connection_id is not None and self.core is not None:
            self._links.pop(link.connection_id, None)
            self.core.connection_closed(link.connection_id)

    async def _lookup_then_handle(
        self,
        message: Message,
        key: ClientKey,
        client: ClientLink,
        username: str,
        account: str | None,
        network: str | None,
    ) -> None:
        try:
            credentials = self._keys.cached(username)
            if isinstance(credentials, Missing):
                credentials = await self._keys.fetch(username)
            if self._worker is not None:
                await self._worker.ask(account, key[1][0])
        finally:
            self._waiting_total -= 1
            if network is not None:
                left = self._waiting.get(network, 1) - 1
                if left > 0:
                    self._waiting[network] = left
                else:
                    self._waiting.pop(network, None)
        self._handle(message, key, client, credentials, account)

    def _guess_command(self, argument: str) -> list[dict[str, Any]]:
        """A worker's question or report for the guess throttle (:data:`GUESS_COMMAND`)."""
        try:
            operation, account, source = json.loads(argument)
        except (ValueError, TypeError):
            raise ValueError("expected [operation, account, source]") from None
        if not isinstance(source, str) or not (account is None or isinstance(account, str)):
            raise ValueError("account must be a string or null, source a string")
        if operation == "wait":
            return [{"wait": self._guesses.wait(account, source)}]
        if operation == "failure":
            self._guesses.failure(account, source)
            return [{"wait": self._guesses.wait(account, source)}]
        if operation == "success" and account is not None:
            self._guesses.success(account, source)
        else:
            raise ValueError(f"unknown operation {operation!r}")
        return []

    def _account_changed(self, local: str, domain: str, change: AccountChange) -> None:
        """A new password or no account: the allocations the old keys opened end (the
        shared account cache forgets the keys by itself). Workers hear of every change
        but admin rights, a new account included, to drop what their caches hold."""
        if change is AccountChange.ADMIN or self.core is None:
            return
        account = account_key(local, domain)
        seq = self._changes[-1][0] + 1 if self._changes else 1
        self._changes.append((seq, account))
        if change.ends_proofs:
            self._end_account(account, change.value)

    def _end_account(self, account: str, why: str) -> None:
        assert self.core is not None
        ended = self.core.end_account(account)
        if ended:
            log.info("turn: %d allocation(s) of %s ended (%s)", ended, account, why)

    def _handle(
        self,
        message: Message,
        key: ClientKey,
        client: ClientLink,
        credentials: Credentials | None,
        account: str | None,
    ) -> None:
        assert self.core is not None
        reply = self.core.handle(message, key, client, credentials, self._clock(), account)
        if reply is None:
            return
        reports = self._worker.take() if self._worker is not None else None
        if reports and any(operation == "failure" for operation, _, _ in reports):
            self._spawn(self._tell_then_deliver(reports, reply, key, client))
            return
        if reports:
            assert self._worker is not None
            self._spawn(self._worker.tell(reports))
        self._deliver(reply, key, client)

    async def _tell_then_deliver(
        self, reports: list[Report], reply: Reply, key: ClientKey, client: ClientLink
    ) -> None:
        assert self._worker is not None
        await self._worker.tell(reports)
        self._deliver(reply, key, client)

    def _deliver(self, reply: Reply, key: ClientKey, client: ClientLink) -> None:
        if reply.connect is not None:
            self._spawn(self._connect(reply, client))
        elif reply.bind is not None:
            self._bind(reply, reply.bind, client)
        elif reply.source is None and reply.destination is None:
            client.send(reply.data)
        else:
            sender = self._udp_by_address[reply.source or key[2]]
            sender.sendto(reply.data, reply.destination or key[1])
