"""heron's XMPP service and slixmpp, a client heron did not write, for the interop tests.

Every wait is on an event the client raises (session start, a stanza, a
presence), bounded by ``TIMEOUT``; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp import JID

from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, merge, provision, serving

DOMAIN = "localhost"
MUC = f"conference.{DOMAIN}"
MUC_PLUGINS = ("xep_0004", "xep_0045")
TIMEOUT = 15.0
PASSWORD = "correct horse"
USERS = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert"
    " sybil trent victor walter eve zed yan quinn uma oscar pat xena wendy"
    " ada brendan cleo dmitri esme felix gus"  # PEP's tests (test_pep.py, test_omemo.py)
    " hana ines jon kai lena mona"  # vCards and avatars (test_vcard.py)
    " nils"  # deleted, then added again (test_account_deletion.py)
    " otto pia"  # blocking (test_blocking.py)
).split()
"""Accounts of the shared server; each test keeps to its own, so rosters never cross."""
_SHOWS = frozenset(("available", "chat", "away", "xa", "dnd"))


@dataclass
class XmppServer:
    heron: RunningHeron
    port: int
    """STARTTLS listener."""
    tls_port: int
    """Direct TLS listener (XEP-0368)."""
    web_port: int
    turn_port: int
    certificate: Path


@contextmanager
def xmpp_server(
    directory: Path, *, users: Sequence[str] = USERS, **overrides: Any
) -> Iterator[XmppServer]:
    """heron with XMPP, TURN and the web port on free loopback ports, and ``users``
    (each account costs an Argon2 hash at import: a server of its own imports few)."""
    port, tls_port, web_port, turn_port = (free_port() for _ in range(4))
    settings = merge(
        base_settings(directory),
        {
            "admins": [f"walter@{DOMAIN}"],
            "xmpp": {
                "enabled": True,
                "listen": [f"127.0.0.1:{port}"],
                "tls_listen": [f"127.0.0.1:{tls_port}"],
                "s2s_listen": [],
                "s2s_tls_listen": [],
            },
            "turn": {
                "enabled": True,
                "listen": [f"127.0.0.1:{turn_port}"],
                "tls_listen": [],
                "allowed_peer_ranges": ["127.0.0.0/8"],
            },
            "web": {"listen": [f"127.0.0.1:{web_port}"]},
        },
    )
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(settings, overrides)))
    provision(config, {f"{user}@{DOMAIN}": PASSWORD for user in users})
    with serving(config) as running:
        yield XmppServer(
            running, port, tls_port, web_port, turn_port, directory / "var" / "tls" / "heron.crt"
        )
    # Stopped by SIGTERM, clients possibly still logged in or half-way through a login.
    log = "".join(running.log)
    assert running.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log and "Exception in callback" not in log, log


@contextmanager
def restarted(server: XmppServer) -> Iterator[XmppServer]:
    """``server``, stopped, started again: the same configuration, data and ports."""
    with serving(server.heron.config) as running:
        yield replace(server, heron=running)
    log = "".join(running.log)
    assert running.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


def client_context(server: XmppServer) -> ssl.SSLContext:
    """Verifies heron's self-signed certificate for localhost, as a careful client would."""
    return ssl.create_default_context(cafile=str(server.certificate))


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that queues what it receives, for tests to await."""

    def __init__(self, jid: str, password: str) -> None:
        super().__init__(jid, password)
        self.messages: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.presences: list[slixmpp.Presence] = []
        self._presence_arrived = asyncio.Condition()
        self.started = asyncio.Event()
        self.failed = asyncio.Event()
        self.ended = asyncio.Event()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_auth", lambda _: self.failed.set())
        self.add_event_handler("disconnected", lambda _: self.ended.set())
        self.add_event_handler("message", self.messages.put_nowait)
        self.add_event_handler("presence", self._presence)
        # slixmpp's MUC plugin takes room presences out of the plain "presence" event.
        self.add_event_handler("groupchat_presence", self._presence)
        self.errors: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.add_event_handler("message_error", self.errors.put_nowait)

    def _start(self, _: Any) -> None:
        self.started.set()

    async def _presence(self, presence: slixmpp.Presence) -> None:
        async with self._presence_arrived:
            self.presences.append(presence)
            self._presence_arrived.notify_all()

    async def next_message(self, body: str | None = None) -> slixmpp.Message:
        """The next chat or groupchat message with a body (``body`` when given)."""
        while True:
            message = await asyncio.wait_for(self.messages.get(), TIMEOUT)
            if message["body"] and (body is None or message["body"] == body):
                return message

    async def presence_from(
        self, jid: str, type_: str = "available", show: str | None = None
    ) -> slixmpp.Presence:
        """The first presence not yet taken of ``type_`` (and ``show``) from ``jid`` (bare or
        full), in arrival order: other presences stay for later calls."""

        def matching() -> slixmpp.Presence | None:
            for presence in self.presences:
                sender = presence["from"]
                # slixmpp reports an available presence's <show/> as its type.
                kind = "available" if presence["type"] in _SHOWS else presence["type"]
                if jid not in (str(sender), str(sender.bare)) or kind != type_:
                    continue
                if show is None or presence["show"] == show:
                    self.presences.remove(presence)
                    return presence
            return None

        async with self._presence_arrived:
            found = await asyncio.wait_for(self._presence_arrived.wait_for(matching), TIMEOUT)
        assert found is not None
        return found


async def connect(
    server: XmppServer,
    user: str,
    *,
    password: str = PASSWORD,
    direct_tls: bool = False,
    resource: str = "test",
    plugins: tuple[str, ...] = (),
    presence: bool = True,
) -> Client:
    """Log ``user`` of heron's ``DOMAIN`` in (STARTTLS by default, or XEP-0368 direct TLS);
    see :func:`login`."""
    return await login(
        f"{user}@{DOMAIN}/{resource}",
        password,
        server.tls_port if direct_tls else server.port,
        client_context(server),
        direct_tls=direct_tls,
        plugins=plugins,
        presence=presence,
    )


async def login(
    jid: str,
    password: str,
    port: int,
    context: ssl.SSLContext,
    *,
    direct_tls: bool = False,
    plugins: tuple[str, ...] = (),
    presence: bool = True,
) -> Client:
    """Log ``jid`` in to the server on 127.0.0.1:``port`` (any server: heron, Prosody, ejabberd)
    verifying its certificate with ``context``, wait for the session, and send initial presence
    (RFC 6121 §4.2) unless ``presence`` is false."""
    client = Client(jid, password)
    client.ssl_context = context
    client.enable_plaintext = False
    client.enable_direct_tls = direct_tls
    client.enable_starttls = not direct_tls
    for plugin in plugins:
        client.register_plugin(plugin)
    client.connect("127.0.0.1", port)
    started = asyncio.ensure_future(client.started.wait())
    failed = asyncio.ensure_future(client.failed.wait())
    done, pending = await asyncio.wait(
        {started, failed}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if started not in done:
        client.abort()
        raise AssertionError(f"{jid} could not log in")
    if presence:
        client.send_presence()
    return client


@asynccontextmanager
async def logged_in(server: XmppServer, *users: str, **options: Any) -> AsyncIterator[list[Client]]:
    """Clients for ``users`` (see :func:`connect`), disconnected at the end."""
    clients = [await connect(server, user, **options) for user in users]
    try:
        yield clients
    finally:
        await log_out(clients)


async def log_out(clients: list[Client]) -> None:
    """Disconnect ``clients`` and wait (bounded) until each stream has ended."""
    for client in clients:
        client.disconnect(wait=0)
    await asyncio.gather(
        *(asyncio.wait_for(c.ended.wait(), TIMEOUT) for c in clients), return_exceptions=True
    )


async def subscribe_each_other(first: Client, second: Client) -> None:
    """A mutual subscription (RFC 6121 §3) started by ``first``, answered by slixmpp's default
    auto-authorize and auto-subscribe; returns once each has the other's available presence.
    The ``subscribed`` answers are not awaited: Prosody turns them into roster pushes."""
    first_jid, second_jid = first.boundjid, second.boundjid
    first.send_presence(pto=second_jid.bare, ptype="subscribe")
    await second.presence_from(first_jid.bare, "subscribe")
    await first.presence_from(second_jid.bare, "subscribe")
    await first.presence_from(str(second_jid))
    await second.presence_from(str(first_jid))


async def join_room(client: Client, room: JID, nick: str) -> None:
    """Join ``room`` (XEP-0045 §7.2); a room this join created is made an instant room
    (§10.1.2) so that others can enter. ``client`` needs :data:`MUC_PLUGINS`."""
    muc = client.plugin["xep_0045"]
    joined, _, _, _ = await muc.join_muc_wait(room, nick, timeout=TIMEOUT)
    if "201" in {str(code) for code in joined["muc"]["status_codes"]}:
        await muc.set_room_config(
            room, client.plugin["xep_0004"].make_form(ftype="submit"), timeout=TIMEOUT
        )


async def make_persistent(client: Client, room: JID) -> None:
    """The owner ``client`` makes ``room`` persistent (XEP-0045 §10.2
    muc#roomconfig_persistentroom): it outlives its last occupant."""
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(
        var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig"
    )
    form.add_field(var="muc#roomconfig_persistentroom", value=True)
    await client.plugin["xep_0045"].set_room_config(room, form, timeout=TIMEOUT)
