"""XMPP client listeners: 5222 with STARTTLS, 5223 with direct TLS (XEP-0368), and RFC 7395
WebSocket at /xmpp-websocket; the only place in ``heron.xmpp`` that does I/O.

Each connection runs one :class:`~heron.xmpp.stream.C2SStream` and answers
its events: a TLS upgrade, account keys for SASL, a resource for binding,
stanzas for the router. The stream decides; this module only carries bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from aiohttp import WSMsgType, web

from heron.accounts import AccountChange, Missing
from heron.accounts.model import Account
from heron.accounts.scram import ScramHash, ScramKeys
from heron.component import Listener, Services, uncounted_client
from heron.config import Config, ListenAddress
from heron.connections import ConnectionPolicy
from heron.control import View
from heron.credentials import load_or_create_secret, turn_secret
from heron.destinations import own_addresses
from heron.errors import StoreError
from heron.guesses import account_key
from heron.handoff import AcceptedSockets, Handoff, stream_protocol
from heron.listeners import Accepting, Rebinding, Where
from heron.peer_tls import s2s_client_context, s2s_server_context
from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from heron.xmpp.features.admin import AdminCommands
from heron.xmpp.features.blocking import BlockingHandler, BlocklistStore
from heron.xmpp.features.disco import (
    ACCOUNT_IDENTITY,
    DiscoInfo,
    DiscoInfoHandler,
    DiscoItem,
    DiscoItemsHandler,
    Identity,
)
from heron.xmpp.features.external_services import ExternalServicesHandler, Transport
from heron.xmpp.features.mam import ArchiveSettings, ArchiveStore
from heron.xmpp.features.offline import OfflineStore
from heron.xmpp.features.ping import PingHandler
from heron.xmpp.features.presence import LoginStore
from heron.xmpp.features.push import ID_PREFIX as PUSH_ID_PREFIX
from heron.xmpp.features.push import PushNotifications, PushStore
from heron.xmpp.features.roster import RosterStore
from heron.xmpp.features.upload import UploadFiles, UploadService
from heron.xmpp.features.vcard import VCardHandler, VCardStore
from heron.xmpp.features.version import VersionHandler
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.model import RoomStore
from heron.xmpp.muc.service import MucService
from heron.xmpp.pep import PepStore
from heron.xmpp.pep.service import CAPS_QUERY_PREFIX, DISCO_FEATURES, PepService
from heron.xmpp.read_rate import ReadRate
from heron.xmpp.router import Router
from heron.xmpp.s2s.dns import ServerLocator, s2s_destinations
from heron.xmpp.s2s.server import Federation, FederationSettings
from heron.xmpp.sasl import SaslConfig
from heron.xmpp.sm import Fate, Hibernation, SmLimits, fate
from heron.xmpp.stanza import NS, qname
from heron.xmpp.stream import (
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    C2SStream,
    PlainCheckNeeded,
    ResumeRequested,
    ScramKeysNeeded,
    SmEnabled,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
)
from heron.xmpp.upload import SlotSigner

__all__ = ["XmppComponent", "XmppStores", "build_xmpp"]

log = logging.getLogger(__name__)

_READ_SIZE = 65_536
_WRITE_LIMIT = 1 << 20
"""Bytes queued for a slow client before heron gives up on it."""
_CROWDED = "too many sessions hibernate (xmpp.hibernated_per_account, hibernated_total)"
_LATE_LIMIT = 500
"""Stanzas kept for a session whose stream ended while it is unbound (its end stores
or bounces them)."""
_ENDING_WAIT = 10.0
"""Seconds a login that replaces a session waits for it to hand its unacked messages to
offline storage."""
_EXPIRY_EVERY = 3600.0
"""Seconds between two sweeps of expired archived messages (``xmpp.archive_expires``)."""
_PING_GRACE = 60.0
"""Seconds a client silent for ``limits.idle_timeout`` has to answer the server's ping
(the idle timeout itself if shorter)."""


@dataclass(frozen=True, slots=True)
class XmppStores:
    """Where the XMPP service keeps what outlives a session; ``login`` reads the
    ``roster`` and ``offline`` data at once, so it must share their storage."""

    roster: RosterStore
    offline: OfflineStore
    login: LoginStore
    blocklists: BlocklistStore
    vcards: VCardStore
    rooms: RoomStore
    archive: ArchiveStore
    pep: PepStore
    push: PushStore


def build_xmpp(services: Services, stores: XmppStores) -> XmppComponent | None:
    return XmppComponent(services, stores) if services.config.xmpp.enabled else None


def _archive_id() -> str:
    """An archive id (XEP-0359): random, so that ids tell nothing of other archives."""
    return secrets.token_urlsafe(12)


def _scheme(key: str) -> str:
    return "tls" if key.endswith("tls_listen") else "tcp"


def _derived_secret(config: Config, purpose: bytes) -> bytes:
    """A key for one ``purpose``, derived from the server's own secret in the data
    directory, so that it outlives restarts: the fake SCRAM salts of unknown accounts stay
    what they were, as real ones do, and dialback keys (XEP-0185) given out before a
    restart still verify after it."""
    server_secret = load_or_create_secret(config.sip_secret_path)
    return hmac.digest(server_secret, b"heron xmpp: " + purpose, "sha256")


class _Link:
    """The byte pipe under one stream: a TCP/TLS socket or a WebSocket."""

    async def read(self, timeout: float) -> bytes | None:
        """The next bytes, None at the end; raises TimeoutError after ``timeout`` seconds."""
        raise NotImplementedError

    def write(self, stream: C2SStream) -> None:
        raise NotImplementedError

    def write_soon(self, stream: C2SStream) -> None:
        """Write what ``stream`` has queued once this turn of the event loop is over.

        Stanzas routed to one client in one turn (a burst of chat messages, a
        room's fan-out of several messages) then leave in one TLS record and
        one system call instead of one each, as Prosody's buffered writes do.
        """
        if self._flush_pending:
            return
        self._flush_pending = True
        asyncio.get_running_loop().call_soon(self._flush, stream)

    def _flush(self, stream: C2SStream) -> None:
        self._flush_pending = False
        self.write(stream)

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """The TLS handshake after <proceed/>; raises TimeoutError after ``timeout`` s."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def backlog(self) -> int:
        return 0

    peer = ""
    _flush_pending = False


class _SocketLink(_Link):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if peer else ""

    async def read(self, timeout: float) -> bytes | None:
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.read(_READ_SIZE)
        except TimeoutError:  # an OSError too, but not the end of the connection
            raise
        except (ConnectionError, ssl.SSLError, OSError):
            return None
        return data or None

    def write(self, stream: C2SStream) -> None:
        data = stream.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        await self._writer.drain()
        await self._writer.start_tls(context, ssl_handshake_timeout=timeout)

    def close(self) -> None:
        self._writer.close()

    @property
    def backlog(self) -> int:
        transport = self._writer.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()


class _WebSocketLink(_Link):
    def __init__(self, socket: web.WebSocketResponse, peer: str) -> None:
        self._socket = socket
        self.peer = peer
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._gone = False
        self._writer = asyncio.create_task(self._write())

    async def read(self, timeout: float) -> bytes | None:
        message = await self._socket.receive(timeout=max(timeout, 0.001))  # 0: no timeout
        if message.type == WSMsgType.TEXT:
            return str(message.data).encode()
        return None  # RFC 7395 §3.2: only text frames carry XMPP

    def write(self, stream: C2SStream) -> None:
        messages = stream.messages_to_send()
        if self._gone:
            return  # nobody left to read them
        for message in messages:
            self._queue.put_nowait(message)

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        raise AssertionError("a WebSocket stream is already secure or never offers STARTTLS")

    def close(self) -> None:
        self._queue.put_nowait(None)

    @property
    def backlog(self) -> int:
        return self._queue.qsize() * 1024

    async def finished(self) -> None:
        """Wait until what was queued before :meth:`close` is sent (or found undeliverable),
        so that the closing stream error reaches the browser before the handler returns."""
        await self._writer

    async def _write(self) -> None:
        try:
            while (message := await self._queue.get()) is not None:
                await self._socket.send_str(message)
            await self._socket.close()
        except ConnectionError as exc:  # aiohttp's ClientConnectionResetError among them
            # The browser went away (a closed tab, a lost network): nothing to tell it.
            self._gone = True
            log.debug("xmpp: WebSocket to %s gone: %s", self.peer, exc)


class _Session:
    """What the router sees of one client: its JID, a way to send, a way to end it.

    With XEP-0198 resumption it outlives its connection: while hibernating, what is sent
    waits in its stream's unacked queue, and a resumed connection takes its place
    (:meth:`attach`). ``end`` ends it for good when it is closed or overflows then.
    """

    def __init__(
        self,
        stream: C2SStream,
        link: _Link,
        jid: JID,
        transport: str,
        end: Callable[[_Session], None],
    ) -> None:
        self.stream = stream
        self._link = link
        self.jid = jid
        self.transport = transport
        self.since = time.time()
        self._end = end
        self.ended = asyncio.Event()
        """Set once the session is over and what it never acknowledged is dealt with."""
        self.late: list[Element] = []
        """Stanzas that reached it after its stream ended, before it was unbound."""

    @property
    def peer(self) -> str:
        return self._link.peer

    def attach(self, stream: C2SStream, link: _Link, transport: str) -> None:
        """A resumed connection carries the session from now on."""
        self.stream, self._link, self.transport = stream, link, transport

    def send(self, stanza: Element) -> None:
        stream = self.stream
        if stream.closed:
            if not self.ended.is_set() and len(self.late) < _LATE_LIMIT:
                self.late.append(stanza)  # its end deals with it as with the unacked
            return
        if stream.hibernated:
            stream.send_stanza(stanza)
            if stream.closed:  # its unacked queue is full: it waited long enough
                self._end(self)
            return
        if self._link.backlog > _WRITE_LIMIT:
            self.close(StreamCondition.POLICY_VIOLATION)
            return
        stream.send_stanza(stanza)
        if stream.closed:  # the client left too much unacknowledged (XEP-0198)
            self._link.write(stream)
            self._link.close()
            return
        self._link.write_soon(stream)

    def close_link(self) -> None:
        """Cut the connection under the session, which another one takes over."""
        self._link.close()

    def close(self, condition: StreamCondition | None = None) -> None:
        if self.stream.hibernated:
            self.stream.close(condition)
            self._end(self)
            return
        if not self.stream.closed:
            self.stream.close(condition)
            self._link.write(self.stream)
        self._link.close()


class XmppComponent:
    """Chat, presence and group chat for the configured hosts (what Prosody does)."""

    def __init__(self, services: Services, stores: XmppStores) -> None:
        self._services = services
        self._stores = stores
        self._config = config = services.config
        self._hosts = frozenset(config.xmpp_hosts)
        self._admins = frozenset(parse_jid(admin) for admin in config.admins)
        self._listening: Rebinding[Accepting] = Rebinding("xmpp")
        self._take: Handoff | None = None
        self._accepted = AcceptedSockets("xmpp-client")
        self._connections: set[asyncio.Task[None]] = set()
        self._tls: ssl.SSLContext | None = None
        self._sasl = SaslConfig(
            server_secret=_derived_secret(config, b"SCRAM keys of unknown accounts"),
            nonce=lambda: secrets.token_urlsafe(18),
        )
        archive = config.xmpp.archive
        archive_settings = ArchiveSettings(
            page=config.xmpp.archive_page, limit=config.xmpp.archive_max
        )
        self._router = Router(
            hosts=self._hosts,
            exists=self._account_exists,
            roster=stores.roster,
            offline=stores.offline,
            clock=time.time,
            new_resource=lambda: f"heron-{secrets.token_hex(4)}",
            blocked=self._is_blocked,
            is_admin=self._is_admin,
            login=stores.login,
            archive=stores.archive if archive else None,
            archive_settings=archive_settings,
            archive_ids=_archive_id,
        )
        self._blocking = BlockingHandler(stores.blocklists, self._router, self._router.presence)
        self._admin_accounts: set[JID] = set()
        """Accounts looked up with admin rights (config ``admins`` or ``heron admin add``)."""
        self._changes = 0
        """Account change announcements heard: a lookup that overlapped one grants no
        admin rights."""
        self._muc = MucService(
            config.muc_domain,
            router=self._router,
            store=stores.rooms,
            admins=self._admins,
            local_hosts=self._hosts,
            history=config.xmpp.muc_history,
            rooms_per_user=config.xmpp.rooms_per_user,
            archive=stores.archive if archive else None,
            archive_settings=archive_settings,
        )
        self._archive_sweep: asyncio.Task[None] | None = None
        self._upload: UploadService | None = None
        self._pep: PepService | None = None
        self._upload_sweep: asyncio.Task[None] | None = None
        services.accounts.subscribe(self._account_changed)
        self._guards = services.guards
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "connections",
                "logins",
                "auth_failures",
                "auth_refused",
                "timeouts",
                "slowed",
                "stanzas",
                "hibernated",
                "resumed",
                "resume_refused",
                "hibernation_evicted",
            ),
            0,
        )
        self._pings = 0
        self._federation: Federation | None = None
        xmpp = config.xmpp
        self._sm = SmLimits(stanzas=xmpp.sm_queue)
        self._hibernation: Hibernation[_Session] | None = None
        if xmpp.resume_timeout:
            self._hibernation = Hibernation(
                xmpp.resume_timeout,
                per_account=xmpp.hibernated_per_account,
                total=xmpp.hibernated_total,
            )
        self._expiry: asyncio.TimerHandle | None = None
        self._endings: set[asyncio.Task[None]] = set()
        """Sessions ending after hibernation: their unacked stanzas go to storage."""

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> Sequence[Listener]:
        config, xmpp = self._config, self._config.xmpp
        served = self._services.certificate
        self._tls = served.context()
        direct = served.context(alpn=("xmpp-client",))
        self._upload = self._uploads()
        self._register_features()
        await self._muc.load()
        if self._router.archive is not None and xmpp.archive_expires is not None:
            self._archive_sweep = asyncio.create_task(self._expire_archives(xmpp.archive_expires))
        self._take = self._handoff(direct)
        if xmpp.s2s_listen or xmpp.s2s_tls_listen:
            await self._federate()
        wanted = self._wanted(config)
        await self._listening.start(wanted)
        listeners = [
            Listener("xmpp-s2s" if "s2s" in key else "xmpp", f"{_scheme(key)}://{address}")
            for key, address in wanted
        ]
        if config.mux.listen:
            self._services.handoffs["xmpp-client"] = self._take
            if self._federation is not None:
                self._services.handoffs["xmpp-server"] = self._federation.handoff()
        if (uploads := self._upload) is not None:
            self._router.register_component(uploads)
            self._services.web_any_method.append(("/upload/{token}/{name}", uploads.handle_http))
            if xmpp.upload_expires is not None:
                files = UploadFiles(config.upload_path)
                self._upload_sweep = asyncio.create_task(
                    self._expire_uploads(files, xmpp.upload_expires)
                )
        if xmpp.websocket and config.web.enabled:
            self._services.web_routes.append(("/xmpp-websocket", self._websocket))
            for address in config.web.listen:
                listeners.append(Listener("xmpp", f"wss://{address}/xmpp-websocket"))
        return listeners

    async def _federate(self) -> None:
        """Let the router reach other domains and take their streams (RFC 6120 §10.4)."""
        config, xmpp = self._config, self._config.xmpp
        destinations = s2s_destinations(config)
        destinations.add_own(await own_addresses(config.host_name))
        settings = FederationSettings(
            local_domains=self._router.local_domains,
            require_tls=xmpp.s2s_require_encryption,
            secure_auth=xmpp.s2s_secure_auth,
            allow=frozenset(xmpp.s2s_allow),
            deny=frozenset(xmpp.s2s_deny),
            queue_limit=xmpp.s2s_queue,
            read_rate=xmpp.s2s_read_rate,
            streams_per_domain=xmpp.s2s_streams_per_domain,
            bidi=xmpp.s2s_bidi,
            max_stanza_bytes=xmpp.max_stanza_size,
            policy=self._guards.policy,
        )
        served = self._services.certificate
        cert, key = served.cert_path, served.key_path
        federation = Federation(
            settings,
            deliver=self._router.route,
            bounce=self._router.bounce,
            locate=ServerLocator(self._services.resolver, destinations).locate,
            server_tls=served.keep(s2s_server_context(cert, key, xmpp.s2s_ca_file)),
            client_tls=served.keep(s2s_client_context(cert, key, xmpp.s2s_ca_file)),
            connections=self._guards.connections,
            dialback_secret=_derived_secret(config, b"dialback keys"),
        )
        self._router.federate(federation)
        self._federation = federation

    async def _expire_archives(self, keep: float) -> None:
        """Sweep messages older than ``keep`` seconds out of every archive, at the start
        and then hourly (Prosody's mod_mam cleanup does it daily)."""
        archive = self._router.archive
        assert archive is not None
        while True:
            try:
                await archive.expire(time.time() - keep)
            except StoreError as error:
                log.error("expired archived messages not removed: %s", error)
            await asyncio.sleep(_EXPIRY_EVERY)

    def _uploads(self) -> UploadService | None:
        """XEP-0363's service, when uploads are on and the web component can take them: on
        its own listener, else on the port-443 mux, which serves the web by itself."""
        config = self._config
        web = config.web.listen or config.mux.listen
        if not (config.xmpp.upload and config.web.enabled and web):
            return None
        return UploadService(
            config.upload_domain,
            signer=SlotSigner(_derived_secret(config, b"upload slots")),
            files=UploadFiles(config.upload_path),
            base_url=f"https://{config.host_name}:{web[0].port}",
            max_size=config.xmpp.upload_max_size,
            quota=config.xmpp.upload_quota,
            local_domains=self._hosts,
            send=self._router.route,
        )

    async def _expire_uploads(self, files: UploadFiles, keep: float) -> None:
        """Remove uploaded files older than ``keep`` seconds, at the start and then hourly."""
        while True:
            try:
                removed = await asyncio.to_thread(files.sweep, time.time() - keep)
            except OSError as error:
                log.error("expired uploads not removed: %s", error)
            else:
                if removed:
                    log.info("xmpp: %d expired uploads removed", removed)
            await asyncio.sleep(_EXPIRY_EVERY)

    def apply(self, config: Config) -> frozenset[str]:
        """``admins``: a server admin removed loses the rights at once, one added gets
        them at the account's next lookup (its next login); sessions stay. The listeners:
        new addresses open (ListenError if one cannot: nothing changes then), removed ones
        stop accepting while their streams go on. The s2s ones only while federation
        stays on: turning it on or off needs a restart."""
        xmpp = config.xmpp
        federates = bool(xmpp.s2s_listen or xmpp.s2s_tls_listen)
        live = {"xmpp.listen", "xmpp.tls_listen"}
        if federates == (self._federation is not None):
            live |= {"xmpp.s2s_listen", "xmpp.s2s_tls_listen"}
        wanted = {where: make for where, make in self._wanted(config).items() if where[0] in live}
        self._listening.apply(wanted, keys=live)
        admins = frozenset(parse_jid(admin) for admin in config.admins)
        self._admin_accounts -= self._admins - admins
        self._admins = admins
        self._muc.set_admins(admins)
        return frozenset({"admins"} | live)

    def _wanted(self, config: Config) -> dict[Where, Callable[[], Accepting]]:
        """The listeners ``config`` names, s2s ones while federating."""
        xmpp = config.xmpp
        take, federation = self._take, self._federation
        assert take is not None
        keys: list[tuple[str, list[ListenAddress], Handoff, bool]] = [
            ("xmpp.listen", xmpp.listen, take, False),
            ("xmpp.tls_listen", xmpp.tls_listen, take, True),
        ]
        if federation is not None:
            s2s = federation.handoff()
            keys += [
                ("xmpp.s2s_listen", xmpp.s2s_listen, s2s, False),
                ("xmpp.s2s_tls_listen", xmpp.s2s_tls_listen, s2s, True),
            ]
        return {
            (key, address): partial(Accepting, "xmpp", address, handoff, tls=tls)
            for key, addresses, handoff, tls in keys
            for address in addresses
        }

    async def stop(self) -> None:
        for sweep in (self._archive_sweep, self._upload_sweep):
            if sweep is not None:
                sweep.cancel()
                await asyncio.gather(sweep, return_exceptions=True)
        self._listening.close()
        if self._federation is not None:
            await self._federation.stop()
        self._accepted.close()
        for session in list(self._router.sessions()):
            session.close(StreamCondition.SYSTEM_SHUTDOWN)
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        # Until each has unbound its session: the database closes after the components,
        # and a query cut off under it leaves the process unable to exit.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._expiry is not None:
            self._expiry.cancel()
        await asyncio.gather(*self._endings, return_exceptions=True)

    def views(self) -> Mapping[str, View]:
        return {
            "xmpp.sessions": self._session_rows,
            "xmpp.rooms": self._room_rows,
            "xmpp.counters": self._counter_rows,
            "xmpp.s2s": lambda: self._federation.rows() if self._federation else [],
        }

    def _session_rows(self) -> list[dict[str, Any]]:
        rows = []
        for session in self._router.sessions():
            assert isinstance(session, _Session)
            resource = self._router.resource(session.jid)
            presence = resource.presence if resource is not None else None
            show = presence.findtext("{jabber:client}show") if presence is not None else None
            rows.append(
                {
                    "jid": str(session.jid),
                    "transport": "hibernating" if session.stream.hibernated else session.transport,
                    "address": session.peer,
                    "presence": "unavailable" if presence is None else (show or "available"),
                }
            )
        return rows

    def _room_rows(self) -> list[dict[str, Any]]:
        return [
            {"room": str(room.jid), "occupants": room.occupants, "persistent": room.persistent}
            for room in self._muc.rooms()
        ]

    def _counter_rows(self) -> list[dict[str, Any]]:
        sessions = len(self._router.sessions())
        s2s = self._federation.counters if self._federation else {}
        return [{**self._counters, "sessions": sessions, **self._muc.counters, **s2s}]

    def _register_features(self) -> None:
        config = self._config
        secret = turn_secret(config)
        admin = AdminCommands(self._router)
        handlers: list[Any] = [
            PingHandler(),
            VersionHandler(os=None),
            self._blocking,
            admin,
        ]
        if config.turn.enabled and (config.turn.listen or config.mux.listen):
            handlers.append(
                ExternalServicesHandler(
                    secret,
                    host=config.host_name,
                    port=config.turn.listen[0].port if config.turn.listen else None,
                    transports=(Transport.UDP, Transport.TCP),
                    tls_port=config.turn.tls_listen[0].port if config.turn.tls_listen else None,
                    mux_port=config.mux.listen[0].port if config.mux.listen else None,
                    ttl=config.xmpp.turn_credentials_ttl,
                    local_domains=self._hosts,
                    clock=time.time,
                )
            )
        for handler in handlers:
            self._router.register_iq_handler(handler)
        pep = PepService(
            self._router,
            self._router.roster,
            self._stores.pep,
            clock=time.time,
            new_item_id=lambda: secrets.token_hex(8),
        )
        self._pep = pep
        publish, owner, private, vcard4 = pep.handlers
        self._router.register_iq_handler(publish, for_accounts=True)  # others read items
        self._router.register_iq_handler(owner)
        self._router.register_iq_handler(private)
        self._router.register_iq_handler(vcard4, for_accounts=True)
        self._router.register_results(CAPS_QUERY_PREFIX, pep.caps_result)
        self._router.presence.listeners.append(pep)
        self._router.presence.stamp = pep.stamp
        vcard = VCardHandler(self._stores.vcards, clock=time.time, avatars=pep)
        self._router.register_iq_handler(vcard, for_accounts=True)
        push = PushNotifications(
            self._stores.push,
            self._router,
            ids=lambda: secrets.token_urlsafe(12),
            include_body=config.xmpp.push_include_body,
        )
        self._router.push = push
        self._router.register_iq_handler(push)
        self._router.register_results(PUSH_ID_PREFIX, push.answer)
        advertised = [self._router.roster, self._router.carbons, vcard, private, *handlers]
        archive = self._router.archive
        mine = archive.disco_features if archive is not None else ()
        # XEP-0163 §7: the account is a PEP service; XEP-0313 §7: it keeps an archive.
        account = DiscoInfo(
            (ACCOUNT_IDENTITY, Identity("pubsub", "pep")),
            (NS.DISCO_INFO, *DISCO_FEATURES, *mine, *push.disco_features),
        )
        self._router.register_iq_handler(
            DiscoInfoHandler(advertised, nodes=[admin], account=account)
        )
        items = [DiscoItem(config.muc_domain, "Chatrooms")]
        if self._upload is not None:
            items.append(DiscoItem(config.upload_domain, "HTTP File Upload"))
        self._router.register_iq_handler(DiscoItemsHandler(items, nodes=[admin]))
        self._router.register_component(self._muc)

    def _handoff(self, direct: ssl.SSLContext) -> Handoff:
        """A client stream (STARTTLS, or direct TLS by ALPN ``xmpp-client``) on a connection
        the port-443 mux accepted."""

        def take(sock: socket.socket, tls: bool) -> None:
            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self._accept(reader, writer, tls_active=tls)

            self._accepted.serve(
                stream_protocol(accept, _READ_SIZE),
                sock,
                direct if tls else None,
                self._guards.policy.handshake_timeout,
            )

        return take

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls_active: bool
    ) -> None:
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else ""
        connections = self._guards.connections
        if not connections.open(ip, "xmpp"):  # it logs the refusal
            writer.transport.abort()
            return
        try:
            await self._run(_SocketLink(reader, writer), tls_active=tls_active)
        except asyncio.CancelledError:
            # stop() ended it; Python 3.11's start_server callback calls exception() on a
            # cancelled task and logs what that raises as an error.
            pass
        finally:
            connections.close(ip)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ip = uncounted_client(request)
        connections = self._guards.connections
        if ip is not None and not connections.open(ip, "xmpp"):  # it logs the refusal
            return web.Response(status=503, text="too many connections from your address\n")
        try:
            socket = web.WebSocketResponse(
                protocols=("xmpp",), max_msg_size=self._config.xmpp.max_stanza_size
            )
            try:
                await socket.prepare(request)
            except ConnectionError:  # the browser left during the upgrade (a closed tab)
                return socket
            if socket.ws_protocol != "xmpp":
                await socket.close(code=1002, message=b"subprotocol xmpp required")
                return socket
            link = _WebSocketLink(socket, request.remote or "")
            await self._run(link, tls_active=request.secure, websocket=True)
            await link.finished()
            return socket
        finally:
            if ip is not None:
                connections.close(ip)

    # --- one connection ------------------------------------------------------------------

    async def _run(self, link: _Link, *, tls_active: bool, websocket: bool = False) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._counters["connections"] += 1
        stream = C2SStream(
            hosts=self._hosts,
            stream_id=secrets.token_hex(8),
            tls_active=tls_active,
            tls_available=not websocket,
            mechanisms=self._sasl,
            websocket=websocket,
            require_tls=self._config.xmpp.require_encryption,
            max_stanza_bytes=self._config.xmpp.max_stanza_size,
            csi_queue=self._config.xmpp.csi_queue,
            sm=self._sm,
            resume_ids=None if self._hibernation is None else lambda: secrets.token_urlsafe(24),
            resume_max=self._config.xmpp.resume_timeout,
        )
        transport = (
            ("wss" if tls_active else "ws") if websocket else ("tls" if tls_active else "tcp")
        )
        session: _Session | None = None
        policy = self._guards.policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.handshake_timeout
        pinged = False
        xmpp = self._config.xmpp
        rate = ReadRate.for_stanzas(xmpp.read_rate, xmpp.max_stanza_size)
        try:
            while not stream.closed:
                authenticated = stream.authenticated_jid is not None
                if not authenticated:
                    wait = deadline - loop.time()
                else:
                    wait = min(_PING_GRACE, policy.idle_timeout) if pinged else policy.idle_timeout
                try:
                    data = await link.read(max(wait, 0.0))
                except TimeoutError:
                    if pinged and stream.resume_id is not None:
                        break  # a phone out of reach: the session hibernates (XEP-0198 §5)
                    if authenticated and not pinged and session is not None:
                        # XEP-0199 §4.1: a client gone quiet is asked before it is dropped.
                        pinged = True
                        session.send(self._idle_ping(session.jid, stream.host))
                        continue
                    self._timed_out(stream, link, authenticated, policy)
                    break
                if data is None:
                    break
                pinged = False
                stream.receive_data(data)
                session = await self._answer(stream, link, session, transport)
                link.write(stream)
                if (pause := rate.pause(len(data), loop.time())) > 0:
                    self._slowed(link.peer, xmpp.read_rate)
                    await asyncio.sleep(pause)  # the peer's bytes wait in its socket meanwhile
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            # TimeoutError: a STARTTLS handshake not done by limits.handshake_timeout.
            log.debug("xmpp: connection from %s lost: %r", link.peer, exc)
        except Exception:
            log.exception("xmpp: connection from %s failed", link.peer)
            stream.close(StreamCondition.INTERNAL_SERVER_ERROR)
            link.write(stream)
        finally:
            try:
                if session is not None and session.stream is stream:
                    if stream.connection_lost():
                        self._hibernate(session)
                    else:
                        await self._end_session(session)
                link.close()
            finally:
                self._connections.discard(task)

    def _slowed(self, peer: str, rate: int) -> None:
        self._counters["slowed"] += 1
        slowed = self._counters["slowed"]
        if slowed == 1 or slowed % 1000 == 0:
            log.info(
                "xmpp: reading from %s slowed to %d bytes/s (xmpp.read_rate); %d pause(s) so far",
                peer,
                rate,
                slowed,
            )

    def _idle_ping(self, jid: JID, host: str) -> Element:
        self._pings += 1
        ping = Element(qname(NS.CLIENT, "iq"), {"type": "get", "id": f"idle-{self._pings}"})
        ping.set("from", host)
        ping.set("to", str(jid))
        SubElement(ping, qname(NS.PING, "ping"))
        return ping

    def _timed_out(
        self, stream: C2SStream, link: _Link, authenticated: bool, policy: ConnectionPolicy
    ) -> None:
        """RFC 6120 §4.9.3.4 connection-timeout: no login within the handshake deadline, or
        silence past the idle timeout (and the ping that followed it)."""
        self._counters["timeouts"] += 1
        if authenticated:
            why = f"idle for {policy.idle_timeout:.0f} s (limits.idle_timeout)"
        else:
            why = f"not logged in after {policy.handshake_timeout:.0f} s (limits.handshake_timeout)"
        timeouts = self._counters["timeouts"]
        if timeouts == 1 or timeouts % 1000 == 0:
            log.info("xmpp: connection from %s closed: %s; %d so far", link.peer, why, timeouts)
        else:
            log.debug("xmpp: connection from %s closed: %s", link.peer, why)
        stream.close(StreamCondition.CONNECTION_TIMEOUT)
        link.write(stream)

    async def _answer(
        self, stream: C2SStream, link: _Link, session: _Session | None, transport: str
    ) -> _Session | None:
        while (event := stream.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                assert session is not None
                self._counters["stanzas"] += 1
                await self._router.receive_from_session(session, event.stanza, event.to)
            elif isinstance(event, StartTlsRequested):
                assert self._tls is not None
                link.write(stream)
                await link.start_tls(self._tls, self._guards.policy.handshake_timeout)
                stream.start_tls_done({})
            elif isinstance(event, ScramKeysNeeded | PlainCheckNeeded):
                if self._must_wait(event.username, stream.host, link.peer):
                    stream.refuse_authentication()
                elif isinstance(event, ScramKeysNeeded):
                    keys = await self._scram_keys(event.username, stream.host, event.hash)
                    stream.provide_scram_keys(keys)
                else:
                    account = await self._account(event.username, stream.host)
                    stored = None if account is None else account.secrets
                    # Unknown accounts cost the same Argon2 check (the verifier's dummy hash).
                    ok = await self._guards.verifier.verify(stored, event.password)
                    if ok and account is not None:
                        # PLAIN only runs inside TLS: an imported account gets what it misses.
                        await self._services.accounts.complete(account, event.password)
                    stream.plain_verified(ok and account is not None)
            elif isinstance(event, Authenticated):
                self._counters["logins"] += 1
                jid = event.jid
                self._guards.guesses.success(
                    account_key(jid.local, jid.domain), link.peer, time.time()
                )
            elif isinstance(event, AuthenticationFailed):
                self._counters["auth_failures"] += 1
                if event.counted:
                    user = account_key(event.username, stream.host) if event.username else None
                    self._guards.guesses.failure(user, link.peer, time.time())
            elif isinstance(event, BindRequested):
                session = await self._bind(stream, link, event.resource, transport)
            elif isinstance(event, SmEnabled):
                if event.resume_id is not None and self._hibernation is not None:
                    assert session is not None
                    self._hibernation.register(event.resume_id, session.jid, session)
            elif isinstance(event, ResumeRequested):
                session = self._resume(stream, link, event, transport)
            elif isinstance(event, StreamEnded):
                break
        return session

    async def _bind(
        self, stream: C2SStream, link: _Link, resource: str | None, transport: str
    ) -> _Session | None:
        account = stream.authenticated_jid
        assert account is not None
        session = _Session(stream, link, account, transport, self._ending)
        old = self._router.resource(account.with_resource(resource)) if resource else None
        try:
            session.jid = self._router.bind(session, resource)
        except StanzaError as error:
            stream.bind_refused(error.condition)
            return None
        if old is not None and isinstance(old.session, _Session):
            # The session it replaced first puts what it never acknowledged in offline
            # storage, where the new one's initial presence finds it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(old.session.ended.wait(), _ENDING_WAIT)
        stream.bind_done(session.jid)
        return session

    # --- XEP-0198 resumption -----------------------------------------------------------

    def _resume(
        self, stream: C2SStream, link: _Link, request: ResumeRequested, transport: str
    ) -> _Session | None:
        """XEP-0198 §5: the account's own session ``previd``, hibernating or still connected
        (the old connection is cut: the client knows better), goes on over ``link``."""
        account = stream.authenticated_jid
        assert account is not None
        hibernation = self._hibernation
        old = None if hibernation is None else hibernation.claim(request.previd, account)
        if old is None or old.stream.closed:
            self._counters["resume_refused"] += 1
            handled = None if hibernation is None else hibernation.handled(request.previd, account)
            stream.resume_failed(handled)
            return None
        self._counters["resumed"] += 1
        previous = old.stream
        if not previous.hibernated:
            old.close_link()
        stream.resumed(previous)  # a bad 'h' closes the stream: this connection ends it
        old.attach(stream, link, transport)
        self._router.hibernating(old, False)
        self._arm()
        return old

    def _hibernate(self, session: _Session) -> None:
        assert self._hibernation is not None and session.stream.resume_id is not None
        self._counters["hibernated"] += 1
        self._router.hibernating(session, True)
        loop = asyncio.get_running_loop()
        for evicted in self._hibernation.hibernate(session.stream.resume_id, loop.time()):
            self._ending(evicted)
            self._counters["hibernation_evicted"] += 1
            evictions = self._counters["hibernation_evicted"]
            if evictions & (evictions - 1) == 0:  # the first, then rarely (powers of two)
                log.info("xmpp: %s ended early: %s; %d so far", evicted.jid, _CROWDED, evictions)
        self._arm()

    def _arm(self) -> None:
        """One timer, at the earliest hibernation deadline."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = None if self._hibernation is None else self._hibernation.next_deadline()
        if deadline is not None:
            self._expiry = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        assert self._hibernation is not None
        for session in self._hibernation.expire(asyncio.get_running_loop().time()):
            self._ending(session)
        self._arm()

    def _ending(self, session: _Session) -> None:
        """End a session that has no connection to do it (hibernating, or one that lost it)."""
        task = asyncio.get_running_loop().create_task(self._end_session(session))
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)

    async def _end_session(self, session: _Session) -> None:
        """The session is over: what it never acknowledged goes to offline storage or back
        to its senders (:func:`heron.xmpp.sm.fate`), then its contacts see it leave; what
        reached it while it was being unbound goes the same way."""
        stream = session.stream
        if stream.resume_id is not None and self._hibernation is not None:
            self._hibernation.forget(stream.resume_id)
            if stream.handled is not None:
                self._hibernation.ended(stream.resume_id, session.jid, stream.handled)
        unacked = stream.take_unacked()
        stream.close()  # from now on, what is sent to it waits in session.late
        try:
            await self._dispose(session, unacked)
            await self._router.unbind(session)
            late, session.late = session.late, []
            await self._dispose(session, late)
        finally:
            session.ended.set()

    async def _dispose(self, session: _Session, unacked: list[Element]) -> None:
        account = session.jid.bare
        bound = self._router.bound(account)
        others = [r for r in bound if r.session is not session]
        carbons = any(r.carbons for r in others)
        # RFC 6121 §8.5.2.1.1: a message to the bare JID went to every resource of the
        # highest priority; those of a lower one never got it.
        mine = max((r.priority for r in bound if r.session is session), default=0)
        elsewhere = any(r.available and r.priority >= max(mine, 0) for r in others)
        for stanza in unacked:
            to_bare = "/" not in stanza.get("to", "")
            outcome = fate(stanza, carbons or (to_bare and elsewhere))
            if outcome is Fate.STORE and await self._router.offline.store(account, stanza):
                continue
            if outcome is Fate.DROP or not stanza.get("from"):
                continue
            try:
                sender = parse_jid(stanza.get("from", ""))
            except StanzaError:
                continue
            error = StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, "the recipient is gone")
            await self._router.bounce(stanza, error, sender, session.jid)

    async def _account(self, username: str, host: str) -> Account | None:
        """The account, from the accounts every protocol shares
        (:class:`heron.accounts.AccountCache`), remembering its admin rights unless an
        account change was announced meanwhile (what was read may predate it)."""
        changes = self._changes
        account = await self._services.account_cache.get(username, host)
        if account is not None and changes == self._changes:
            if self._services.accounts.is_admin(account):
                self._admin_accounts.add(JID(username, host))
        return account

    async def _scram_keys(self, username: str, host: str, hash_name: ScramHash) -> ScramKeys | None:
        """The keys to check a SCRAM login against."""
        account = await self._account(username, host)
        if account is None:
            return None
        return next((keys for keys in account.secrets.scram if keys.hash is hash_name), None)

    def _must_wait(self, username: str, host: str, peer: str) -> bool:
        """Whether guesses for the account, or from the peer's network, must wait now (the
        shared :class:`heron.guesses.GuessThrottle`); the attempt is then refused unchecked,
        alike for known and unknown accounts."""
        wait = self._guards.guesses.wait(account_key(username, host), peer, time.time())
        if wait <= 0:
            return False
        self._counters["auth_refused"] += 1
        refused = self._counters["auth_refused"]
        if refused == 1 or refused % 1000 == 0:
            log.warning(
                "xmpp: login to %s@%s from %s refused unchecked: guesses must wait %.0f s "
                "more (limits.account_guesses, limits.source_guesses); %d refused so far",
                username,
                host,
                peer,
                wait,
                refused,
            )
        return True

    def _account_changed(self, local: str, domain: str, change: AccountChange) -> None:
        """A removed account, or one whose password changed, is logged out everywhere (as
        Prosody 0.12 does); it logs in again with the new password. Its rights go in
        every case (the shared account cache forgets its keys by itself): rights taken
        away end at once, rights given start at the account's next login."""
        self._changes += 1
        try:
            account = JID.make(local, domain)
        except StanzaError:
            return
        if change is AccountChange.ADMIN:
            if account not in self._admins:
                self._admin_accounts.discard(account)
        if not change.ends_proofs:
            return
        self._admin_accounts.discard(account)
        for session in self._router.sessions():
            if session.jid.bare == account:
                session.close(StreamCondition.NOT_AUTHORIZED)
        if change is not AccountChange.REMOVED:
            return
        # Its rows went with the account (heron.store.owned): what is remembered of them
        # goes too, lest an account made later with the same name inherit it; and its files.
        self._blocking.forget(account)
        if self._pep is not None:
            self._pep.forget(account)
        if self._router.archive is not None:
            self._router.archive.forget(account)
        if self._upload is not None:
            self._upload.forget(account)

    async def _account_exists(self, jid: JID) -> bool:
        known = self._services.account_cache.cached(jid.local, jid.domain)
        if not isinstance(known, Missing):
            return known is not None
        return await self._account(jid.local, jid.domain) is not None

    def _is_admin(self, account: JID) -> bool:
        return account.bare in self._admin_accounts

    async def _is_blocked(self, owner: JID, other: JID) -> bool:
        return await self._blocking.is_blocked(owner, other)
