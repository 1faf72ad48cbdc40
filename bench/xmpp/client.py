"""A minimal asyncio XMPP client for load, and the load worker process that runs it.

Not slixmpp: its pure-Python SCRAM caps a load generator at ~14 logins/s
(reference-servers.md), far below what the servers do. This client does only
what the loads need, the way any client does it: STARTTLS with an unverified
context (both servers have self-signed certificates), SASL SCRAM-SHA-1 with
``hashlib.pbkdf2_hmac`` (the one mechanism both offer; Prosody 0.12 has no
SHA-256), resource binding, initial presence, chat messages and a MUC room
(XEP-0045), created as an instant room by its first occupant. The salted
password is cached per (password, salt, iterations), as real clients cache it
(RFC 5802 §5.1), so a repeated login costs the client one HMAC, not 10,000.

Run as a worker (``bench.proc.Worker``): ``python -m bench.xmpp.client SETTINGS``.
It sets up (logs its users in, joins the room), writes ``ready``, waits for
``go``, runs the load and writes one JSON line; the login load repeats that
once per round.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import resource
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.sax.saxutils import quoteattr

from bench.proc import read_settings, say, wait_go
from bench.xmpp import DOMAIN, MUC_DOMAIN, Account, Address

__all__ = ["Client", "XmppError", "answers_stream", "stream_header"]

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_DATA = "jabber:x:data"
NS_SM = "urn:xmpp:sm:3"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_ROSTER = "jabber:iq:roster"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
PEP_NODE = "urn:xmpp:bench:0"
"""The PEP node each account of the modern login load publishes one item to."""

STEP_TIMEOUT = 60.0
"""Longest wait for one answer during set-up; a loaded server answers logins in seconds."""
ROOM = f"bench@{MUC_DOMAIN}"
OPENING = 32
"""Connections per load process that may wait for the server's first answer at once."""
SETUP_LOGINS = 50
"""Logins at once while a load sets up (pairs, room occupants), outside any measurement."""


def stream_header(domain: str = DOMAIN) -> bytes:
    """The client's stream header (RFC 6120 §4.2); sent again after STARTTLS and SASL."""
    return (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='{NS_STREAM}' to={quoteattr(domain)} version='1.0'>"
    ).encode()


def answers_stream(address: Address, domain: str = DOMAIN, timeout: float = 2.0) -> bool:
    """A stream header and stream features come back: an XMPP server listens there."""
    try:
        with socket.create_connection(address, timeout) as probe:
            probe.sendall(stream_header(domain))
            received = b""
            deadline = time.monotonic() + timeout
            while b"features" not in received and time.monotonic() < deadline:
                chunk = probe.recv(65536)
                if not chunk:
                    break
                received += chunk
            probe.sendall(b"</stream:stream>")
    except OSError:
        return False
    return b"stream:stream" in received and b"features" in received


class XmppError(Exception):
    """A step of the login or the load got something else than it needed."""


def _describe(stanza: Element) -> str:
    """The tag and first child, enough to say which error condition came."""
    child = next(iter(stanza), None)
    inner = f"/{child.tag.rpartition('}')[2]}" if child is not None else ""
    return stanza.tag.rpartition("}")[2] + inner


class StreamParser:
    """Top-level elements (stanzas, features, SASL answers) out of a byte stream.

    An element closing at depth 1 is complete; it is taken off the stream
    root at once so that a long load does not grow the tree. A new parser is
    made for each stream restart (after STARTTLS and after SASL).
    """

    def __init__(self) -> None:
        self._parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root: Element | None = None
        self.closed = False

    def feed(self, data: bytes) -> list[Element]:
        try:
            self._parser.feed(data)
            events = list(self._parser.read_events())
        except ParseError as exc:
            raise XmppError(f"malformed XML from the server: {exc}") from None
        found: list[Element] = []
        for item in events:
            event, element = item[0], item[-1]
            if not isinstance(element, Element):
                continue  # only start and end events are asked for
            if event == "start":
                self._depth += 1
                if self._depth == 1:
                    self._root = element
                continue
            self._depth -= 1
            if self._depth == 1 and self._root is not None:
                found.append(element)
                self._root.remove(element)
            elif self._depth == 0:
                self.closed = True
        return found


@lru_cache(maxsize=8192)
def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i) of RFC 5802 §2.2, in C."""
    return hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


Handler = Callable[[Element], None]


@dataclass
class Client:
    """One c2s connection: ``login`` step by step, then ``start`` pumps stanzas to a handler."""

    account: Account
    address: Address
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    parser: StreamParser = field(default_factory=StreamParser)
    queued: list[Element] = field(default_factory=list)
    jid: str = ""
    handler: Handler | None = None
    waiters: list[tuple[Callable[[Element], bool], asyncio.Future[Element]]] = field(
        default_factory=list
    )
    pump: asyncio.Task[None] | None = None

    def send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(text.encode())

    async def drain(self) -> None:
        assert self.writer is not None
        await self.writer.drain()

    async def _read(self) -> Element:
        """The next top-level element; EOF or a stream error is an XmppError."""
        assert self.reader is not None
        while not self.queued:
            data = await self.reader.read(65536)
            if not data:
                raise XmppError("the server closed the connection")
            self.queued.extend(self.parser.feed(data))
            if self.parser.closed and not self.queued:
                raise XmppError("the server closed the stream")
        element = self.queued.pop(0)
        if element.tag == f"{{{NS_STREAM}}}error":
            raise XmppError(f"stream error: {_describe(element)}")
        return element

    async def _expect(self, tag: str, step: str) -> Element:
        async with asyncio.timeout(STEP_TIMEOUT):
            element = await self._read()
        if element.tag != tag:
            raise XmppError(f"{step}: got {_describe(element)}")
        return element

    async def _restart(self) -> Element:
        """A new stream on the same connection; returns its features."""
        self.parser = StreamParser()
        self.queued.clear()
        assert self.writer is not None
        self.writer.write(stream_header(self.account.domain))
        return await self._expect(f"{{{NS_STREAM}}}features", "stream features")

    async def login(
        self,
        context: ssl.SSLContext,
        resource_name: str,
        opening: asyncio.Semaphore,
        presence: bool = True,
    ) -> None:
        """STARTTLS, SCRAM-SHA-1, bind, initial presence (RFC 6120 §5, §6, §7; RFC 6121 §4.2);
        without ``presence`` the caller sends its own (``modern_login``).

        ``opening`` bounds the connections not yet answered: more than the
        server's listen backlog at once (Prosody 128, asyncio 100) and the
        kernel drops SYNs, which the client retries only after 1 s.
        """
        async with opening:
            self.reader, self.writer = await asyncio.open_connection(*self.address)
            features = await self._restart()
        if features.find(f"{{{NS_TLS}}}starttls") is None:
            raise XmppError("no STARTTLS offered")
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        await self._expect(f"{{{NS_TLS}}}proceed", "STARTTLS")
        await self.writer.start_tls(context, server_hostname=self.account.domain)
        features = await self._restart()
        await self._scram(features)
        features = await self._restart()
        if features.find(f"{{{NS_BIND}}}bind") is None:
            raise XmppError("no resource binding offered")
        self.send(
            f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'>"
            f"<resource>{resource_name}</resource></bind></iq>"
        )
        bound = await self._expect(f"{{{NS_CLIENT}}}iq", "bind")
        self.jid = bound.findtext(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid") or ""
        if bound.get("type") != "result" or not self.jid:
            raise XmppError(f"bind: got {_describe(bound)}")
        session = features.find(f"{{{NS_SESSION}}}session")
        if session is not None and session.find(f"{{{NS_SESSION}}}optional") is None:
            self.send(f"<iq type='set' id='sess'><session xmlns='{NS_SESSION}'/></iq>")
            await self._expect(f"{{{NS_CLIENT}}}iq", "session")
        if presence:
            self.send("<presence/>")

    async def _scram(self, features: Element) -> None:
        """SCRAM-SHA-1 (RFC 5802 §3), checking the server's signature too."""
        mechanisms = [m.text for m in features.iter(f"{{{NS_SASL}}}mechanism")]
        if "SCRAM-SHA-1" not in mechanisms:
            raise XmppError(f"SCRAM-SHA-1 not offered (only {', '.join(map(str, mechanisms))})")
        nonce = secrets.token_urlsafe(18)
        bare = f"n={self.account.name},r={nonce}"
        self.send(
            f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>{_b64(b'n,,' + bare.encode())}</auth>"
        )
        challenge = await self._expect(f"{{{NS_SASL}}}challenge", "SASL")
        server_first = base64.b64decode(challenge.text or "").decode()
        values = dict(item.split("=", 1) for item in server_first.split(",") if "=" in item)
        if not values.get("r", "").startswith(nonce) or "s" not in values or "i" not in values:
            raise XmppError(f"SASL: bad server-first-message {server_first!r}")
        salted = salted_password(
            self.account.password, base64.b64decode(values["s"]), int(values["i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha1")
        without_proof = f"c=biws,r={values['r']}"
        message = f"{bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha1(client_key).digest(), message, "sha1")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = f"{without_proof},p={_b64(proof)}"
        self.send(f"<response xmlns='{NS_SASL}'>{_b64(final.encode())}</response>")
        async with asyncio.timeout(STEP_TIMEOUT):
            success = await self._read()
        if success.tag != f"{{{NS_SASL}}}success":
            raise XmppError(f"SASL: got {_describe(success)}")
        server_key = hmac.digest(salted, b"Server Key", "sha1")
        expected = "v=" + _b64(hmac.digest(server_key, message, "sha1"))
        if base64.b64decode(success.text or "").decode() != expected:
            raise XmppError("SASL: wrong server signature")

    def start(self, handler: Handler) -> None:
        """From now on every stanza goes to the waiters that match, then to ``handler``."""
        self.handler = handler
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            try:
                element = await self._read()
            except (XmppError, OSError):
                return
            for waiter in list(self.waiters):
                if waiter[0](element):
                    self.waiters.remove(waiter)
                    if not waiter[1].done():
                        waiter[1].set_result(element)
            if self.handler is not None:
                self.handler(element)

    def expect(self, match: Callable[[Element], bool]) -> asyncio.Future[Element]:
        """The first element from now on that matches: registered at once, before any send."""
        future: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self.waiters.append((match, future))
        return future

    async def wait_for(self, match: Callable[[Element], bool], step: str) -> Element:
        return await _bounded(self.expect(match), step)

    async def close(self) -> None:
        """Close the stream and the connection; the server's answer is not awaited."""
        if self.pump is not None:
            self.pump.cancel()
        if self.writer is None:
            return
        try:
            self.writer.write(b"</stream:stream>")
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except OSError:
            pass


async def _bounded(future: asyncio.Future[Element], step: str) -> Element:
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            return await future
    except TimeoutError:
        raise XmppError(f"{step}: no answer in {STEP_TIMEOUT:.0f} s") from None


def client_context() -> ssl.SSLContext:
    """TLS without verification: both servers present self-signed certificates."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# --- loads ------------------------------------------------------------------------------


def _is_body(element: Element) -> bool:
    return (
        element.tag == f"{{{NS_CLIENT}}}message"
        and element.find(f"{{{NS_CLIENT}}}body") is not None
    )


def _is_error(element: Element) -> bool:
    return element.get("type") == "error"


@dataclass
class Tally:
    """What one worker saw during its load: the parent sums these."""

    delivered: int = 0
    errors: int = 0
    first_error: str = ""
    last: float = 0.0
    slowest: float = 0.0
    """Longest single login: past 1 s, a SYN was probably dropped and retried."""

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what

    def report(self) -> None:
        say(json.dumps(self.__dict__))


async def _login_all(
    clients: Sequence[Client],
    context: ssl.SSLContext,
    limit: int,
    tally: Tally,
    partners: Mapping[str, str] | None = None,
) -> list[Client]:
    """Log everyone in, at most ``limit`` at a time; the ones that failed are counted and closed.
    With ``partners`` (each account's contact), each logs in as Conversations does."""
    gate, opening = asyncio.Semaphore(limit), asyncio.Semaphore(OPENING)

    async def one(client: Client) -> bool:
        async with gate:
            started = time.monotonic()
            try:
                if partners is None:
                    await client.login(context, f"bench-{secrets.token_hex(3)}", opening)
                else:
                    await modern_login(client, context, opening, partners[client.account.jid])
            except (XmppError, OSError) as exc:
                tally.error(f"{client.account.name}: {exc or type(exc).__name__}")
                await client.close()
                return False
            tally.last = max(tally.last, time.monotonic())
            tally.slowest = max(tally.slowest, tally.last - started)
            return True

    done = await asyncio.gather(*(one(client) for client in clients))
    tally.delivered = sum(done)
    return [client for client, ok in zip(clients, done, strict=True) if ok]


Servers = Mapping[str, Address]
"""The client port of each domain's server: one domain, or two for the federation load."""


def _clients(accounts: Sequence[Account], servers: Servers) -> list[Client]:
    """A client for each account, each for the server of its own domain."""
    return [Client(account, servers[account.domain]) for account in accounts]


async def _set_up(accounts: list[Account], servers: Servers) -> list[Client] | None:
    """Everyone logged in before a load, or None (said to the parent) if anyone failed."""
    tally = Tally()
    clients = await _login_all(_clients(accounts, servers), client_context(), SETUP_LOGINS, tally)
    if tally.errors:
        say(f"login failed: {tally.first_error}")
        return None
    return clients


async def run_logins(settings: dict[str, Any], accounts: list[Account], servers: Servers) -> None:
    """Each round: everyone logs in at once; report; log out; ready for the next round."""
    context = client_context()
    say("ready")
    while True:
        wait_go()
        tally = Tally()
        clients = _clients(accounts, servers)
        logged_in = await _login_all(clients, context, len(clients), tally)
        tally.report()
        await asyncio.gather(*(client.close() for client in logged_in))
        say("ready")


async def run_idle(settings: dict[str, Any], accounts: list[Account], servers: Servers) -> None:
    """Log everyone in (a few at a time), report, and stay connected until told to end."""
    context = client_context()
    say("ready")
    wait_go()
    tally = Tally()
    clients = await _login_all(
        _clients(accounts, servers), context, int(settings["concurrency"]), tally
    )
    for client in clients:
        client.start(lambda element: None)
    await asyncio.sleep(0)
    tally.report()
    await asyncio.get_running_loop().run_in_executor(None, wait_go)


@dataclass
class Pair:
    """Two clients sending to each other: each delivery lets the receiver send one back."""

    left: Client
    right: Client
    quota: int
    sent: int = 0
    delivered: int = 0


async def _first_messages(pair: Pair, stanzas: Mapping[int, str]) -> None:
    """One message each way before the load, uncounted: between two domains the first one
    opens the server-to-server stream (DNS, TLS, authentication), which is set-up, not load."""
    for sender, receiver in ((pair.left, pair.right), (pair.right, pair.left)):
        arrived = receiver.wait_for(_is_body, f"first message to {receiver.jid}")
        sender.send(stanzas[id(sender)])
        await arrived


async def run_messages(settings: dict[str, Any], accounts: list[Account], servers: Servers) -> None:
    """Pairs exchanging chat messages in a closed loop, ``window`` in flight per pair."""
    quota, window = int(settings["messages"]), int(settings["window"])
    clients = await _set_up(accounts, servers)
    if clients is None:
        return
    pairs = [Pair(clients[i], clients[i + 1], quota) for i in range(0, len(clients) - 1, 2)]
    finished = asyncio.Event()
    remaining = [len(pairs)]
    stanzas = {
        id(client): f"<message type='chat' to='{partner.jid}'><body>m</body></message>"
        for pair in pairs
        for client, partner in ((pair.left, pair.right), (pair.right, pair.left))
    }
    tally = Tally()

    def send(pair: Pair, sender: Client) -> None:
        pair.sent += 1
        sender.send(stanzas[id(sender)])

    def handler_for(pair: Pair, me: Client) -> Handler:
        def handle(element: Element) -> None:
            if _is_error(element):
                tally.error(_describe(element))
            elif _is_body(element):
                pair.delivered += 1
                tally.delivered += 1
                tally.last = time.monotonic()
                if pair.sent < pair.quota:
                    send(pair, me)
                elif pair.delivered == pair.quota:
                    remaining[0] -= 1
                    if not remaining[0]:
                        finished.set()

        return handle

    for client in clients:
        client.start(lambda element: None)
    try:
        await asyncio.gather(*(_first_messages(pair, stanzas) for pair in pairs))
    except XmppError as exc:
        say(f"first messages failed: {exc}")
        return
    for pair in pairs:
        pair.left.handler = handler_for(pair, pair.left)
        pair.right.handler = handler_for(pair, pair.right)
    say("ready")
    await asyncio.get_running_loop().run_in_executor(None, wait_go)
    for pair in pairs:
        for _ in range(min(window, quota)):
            send(pair, pair.left)
    try:
        async with asyncio.timeout(float(settings["timeout"])):
            await finished.wait()
    except TimeoutError:
        tally.error(f"timed out with {tally.delivered:,} of {quota * len(pairs):,} delivered")
    tally.report()
    await asyncio.gather(*(client.close() for client in clients))


def _joined(nick: str) -> Callable[[Element], bool]:
    """Our own presence back from the room: status 110 (XEP-0045 §7.2.3)."""

    def match(element: Element) -> bool:
        if element.tag != f"{{{NS_CLIENT}}}presence" or element.get("from") != f"{ROOM}/{nick}":
            return False
        codes = {s.get("code") for s in element.iter(f"{{{NS_MUC_USER}}}status")}
        return "110" in codes or _is_error(element)

    return match


async def _join(client: Client, nick: str, owner: bool) -> None:
    """Enter the room; its first occupant accepts the default configuration (XEP-0045 §10.1.2)."""
    joined = client.wait_for(_joined(nick), f"join as {nick}")
    client.send(
        f"<presence to='{ROOM}/{nick}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>"
    )
    presence = await joined
    if _is_error(presence):
        raise XmppError(f"join: got {_describe(presence)}")
    codes = {s.get("code") for s in presence.iter(f"{{{NS_MUC_USER}}}status")}
    if owner and "201" in codes:
        configured = client.wait_for(
            lambda e: e.tag == f"{{{NS_CLIENT}}}iq" and e.get("id") == "instant", "room config"
        )
        client.send(
            f"<iq type='set' id='instant' to='{ROOM}'><query xmlns='{NS_MUC_OWNER}'>"
            f"<x xmlns='{NS_DATA}' type='submit'/></query></iq>"
        )
        if (await configured).get("type") != "result":
            raise XmppError("the room refused the instant configuration")


async def run_muc(settings: dict[str, Any], accounts: list[Account], servers: Servers) -> None:
    """Occupants count groupchat deliveries; the sender (first worker's first user) sends."""
    messages, window = int(settings["messages"]), int(settings["window"])
    sender_here = bool(settings["sender"])
    clients = await _set_up(accounts, servers)
    if clients is None:
        return
    tally = Tally()
    expected = messages * len(clients)
    finished = asyncio.Event()
    sent = [0]
    sender = clients[0] if sender_here else None
    own_nick = f"{ROOM}/{clients[0].account.name}"
    stanza = f"<message type='groupchat' to='{ROOM}'><body>m</body></message>"

    def handle(element: Element) -> None:
        if _is_error(element) and element.tag == f"{{{NS_CLIENT}}}message":
            tally.error(_describe(element))
        elif _is_body(element) and "/" in element.get("from", ""):  # an occupant's, not the room's
            tally.delivered += 1
            tally.last = time.monotonic()
            if tally.delivered >= expected:
                finished.set()

    def handle_sender(element: Element) -> None:
        handle(element)
        if sender is not None and _is_body(element) and element.get("from") == own_nick:
            if sent[0] < messages:
                sent[0] += 1
                sender.send(stanza)

    for client in clients:
        client.start(handle_sender if client is sender else handle)
    try:
        for client in clients:
            await _join(client, client.account.name, owner=sender_here and client is sender)
    except XmppError as exc:
        say(f"MUC join failed: {exc}")
        return
    say("ready")
    await asyncio.get_running_loop().run_in_executor(None, wait_go)
    tally = Tally()  # what the room said while we joined does not count
    if sender is not None:
        for _ in range(min(window, messages)):
            sent[0] += 1
            sender.send(stanza)
    try:
        async with asyncio.timeout(float(settings["timeout"])):
            await finished.wait()
    except TimeoutError:
        tally.error(f"timed out with {tally.delivered:,} of {expected:,} delivered")
    tally.report()
    await asyncio.gather(*(client.close() for client in clients))


# --- the modern login: as Conversations logs in ----------------------------------------

CAPS_NODE = "https://heron.invalid/bench"
CAPS_IDENTITY = "<identity category='client' type='phone' name='bench'/>"
CAPS_FEATURES = sorted([NS_CAPS, NS_DISCO_INFO, f"{PEP_NODE}+notify"])
STANZAS = {f"{{{NS_CLIENT}}}{name}" for name in ("message", "presence", "iq")}


def caps_ver() -> str:
    """XEP-0115 §5.1's verification string of ``CAPS_IDENTITY`` and ``CAPS_FEATURES``."""
    text = "client/phone//bench<" + "".join(f"{feature}<" for feature in CAPS_FEATURES)
    return _b64(hashlib.sha1(text.encode()).digest())


def _disco_answer(element: Element) -> str | None:
    """Our identity and features for a server's disco#info get (XEP-0115 §6.2), else None."""
    query = element.find(f"{{{NS_DISCO_INFO}}}query")
    if element.tag != f"{{{NS_CLIENT}}}iq" or element.get("type") != "get" or query is None:
        return None
    node = query.get("node")
    to = element.get("from")
    features = "".join(f"<feature var='{feature}'/>" for feature in CAPS_FEATURES)
    return (
        f"<iq type='result'{f' to={quoteattr(to)}' if to else ''} "
        f"id={quoteattr(element.get('id', ''))}><query xmlns='{NS_DISCO_INFO}'"
        f"{f' node={quoteattr(node)}' if node else ''}>{CAPS_IDENTITY}{features}</query></iq>"
    )


def _modern_handler(client: Client) -> Handler:
    """Acks for XEP-0198 requests (``h`` counts the stanzas since ``enabled``), disco#info
    answers for the servers' caps queries."""
    handled = [0]

    def handle(element: Element) -> None:
        if element.tag in STANZAS:
            handled[0] += 1
        if element.tag == f"{{{NS_SM}}}enabled":
            handled[0] = 0
        elif element.tag == f"{{{NS_SM}}}r":
            client.send(f"<a xmlns='{NS_SM}' h='{handled[0]}'/>")
        elif (answer := _disco_answer(element)) is not None:
            client.send(answer)

    return handle


def _iq_answer(iq_id: str) -> Callable[[Element], bool]:
    return lambda e: e.tag == f"{{{NS_CLIENT}}}iq" and e.get("id") == iq_id


def _pep_item(publisher: str) -> Callable[[Element], bool]:
    """A PEP notification (XEP-0163 §4.3) of ``PEP_NODE`` from ``publisher``'s bare JID."""
    path = (
        f"{{{NS_PUBSUB_EVENT}}}event/{{{NS_PUBSUB_EVENT}}}items[@node='{PEP_NODE}']"
        f"/{{{NS_PUBSUB_EVENT}}}item"
    )
    return lambda e: (
        e.tag == f"{{{NS_CLIENT}}}message"
        and e.get("from") == publisher
        and e.find(path) is not None
    )


def _sm_answer(element: Element) -> bool:
    return element.tag in (f"{{{NS_SM}}}enabled", f"{{{NS_SM}}}failed")


async def modern_login(
    client: Client, context: ssl.SSLContext, opening: asyncio.Semaphore, contact: str
) -> None:
    """``login`` without its presence, then what Conversations sends after binding, at once:
    XEP-0198 enable with resumption, XEP-0280 carbons, the roster, presence with XEP-0115
    caps that ask for ``PEP_NODE`` notifications, a XEP-0313 query of the archive's last
    page; done when every answer and ``contact``'s last PEP item (XEP-0163 §6.2) came."""
    await client.login(context, f"bench-{secrets.token_hex(3)}", opening, presence=False)
    client.start(_modern_handler(client))
    steps = [
        (client.expect(_sm_answer), "SM enable"),
        (client.expect(_iq_answer("carbons")), "carbons"),
        (client.expect(_iq_answer("roster")), "roster"),
        (client.expect(_iq_answer("mam")), "MAM query"),
        (client.expect(_pep_item(contact)), "PEP notification"),
    ]
    client.send(
        f"<enable xmlns='{NS_SM}' resume='true'/>"
        f"<iq type='set' id='carbons'><enable xmlns='{NS_CARBONS}'/></iq>"
        f"<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>"
        f"<presence><c xmlns='{NS_CAPS}' hash='sha-1' node='{CAPS_NODE}' ver='{caps_ver()}'/>"
        "</presence>"
        f"<iq type='set' id='mam'><query xmlns='{NS_MAM}' queryid='last'>"
        f"<set xmlns='{NS_RSM}'><max>20</max><before/></set></query></iq>"
    )
    for future, step in steps:
        answer = await _bounded(future, step)
        if answer.tag == f"{{{NS_SM}}}failed" or _is_error(answer):
            raise XmppError(f"{step}: got {_describe(answer)}")


def _approver(client: Client) -> Handler:
    """Approves every subscription request (RFC 6121 §3.1.4)."""

    def handle(element: Element) -> None:
        sender = element.get("from", "").partition("/")[0]
        if element.tag == f"{{{NS_CLIENT}}}presence" and element.get("type") == "subscribe":
            client.send(f"<presence type='subscribed' to={quoteattr(sender)}/>")

    return handle


def _subscribed_by(jid: str) -> Callable[[Element], bool]:
    return lambda e: (
        e.tag == f"{{{NS_CLIENT}}}presence"
        and e.get("type") == "subscribed"
        and e.get("from", "").partition("/")[0] == jid
    )


async def _befriend(left: Client, right: Client) -> None:
    """Mutual presence subscription, one item each on ``PEP_NODE`` and one message each way
    (something for the archive's last page): what a modern login then finds. Each asks for
    its roster first: Prosody delivers ``subscribed`` to interested resources only (RFC 6121
    §2.1.6)."""
    for me in (left, right):
        roster = me.expect(_iq_answer("roster"))
        me.send(f"<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>")
        await _bounded(roster, "roster")
    for me, other in ((left, right), (right, left)):
        approved = me.expect(_subscribed_by(other.account.jid))
        me.send(f"<presence type='subscribe' to={quoteattr(other.account.jid)}/>")
        await _bounded(approved, f"subscription of {me.account.jid} to {other.account.jid}")
    for me, other in ((left, right), (right, left)):
        published = me.expect(_iq_answer("publish"))
        me.send(
            f"<iq type='set' id='publish'><pubsub xmlns='{NS_PUBSUB}'><publish node='{PEP_NODE}'>"
            f"<item id='current'><entry xmlns='{PEP_NODE}'>{me.account.name}</entry></item>"
            "</publish></pubsub></iq>"
        )
        if _is_error(answer := await _bounded(published, "PEP publish")):
            raise XmppError(f"PEP publish: got {_describe(answer)}")
        arrived = other.expect(_is_body)
        me.send(f"<message type='chat' to={quoteattr(other.jid)}><body>m</body></message>")
        await _bounded(arrived, f"message to {other.jid}")


async def run_modern(settings: dict[str, Any], accounts: list[Account], servers: Servers) -> None:
    """Set-up: pairs become contacts (``_befriend``) and log out. Then each round: everyone
    logs in as Conversations does at once (``modern_login``); report; log out; ready."""
    clients = await _set_up(accounts, servers)
    if clients is None:
        return
    for client in clients:
        client.start(_approver(client))
    pairs = [(clients[i], clients[i + 1]) for i in range(0, len(clients) - 1, 2)]
    try:
        await asyncio.gather(*(_befriend(left, right) for left, right in pairs))
    except XmppError as exc:
        say(f"contacts set-up failed: {exc}")
        return
    await asyncio.gather(*(client.close() for client in clients))
    partners = {}
    for left, right in pairs:
        partners[left.account.jid], partners[right.account.jid] = (
            right.account.jid,
            left.account.jid,
        )
    context = client_context()
    say("ready")
    while True:
        wait_go()
        tally = Tally()
        round_clients = [Client(c.account, c.address) for c in clients if c.account.jid in partners]
        logged_in = await _login_all(round_clients, context, len(round_clients), tally, partners)
        tally.report()
        await asyncio.gather(*(client.close() for client in logged_in))
        say("ready")


ROLES = {
    "logins": run_logins,
    "idle": run_idle,
    "messages": run_messages,
    "muc": run_muc,
    "modern": run_modern,
}


def main() -> None:
    settings = read_settings()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 idle connections
    accounts = [Account(name, password, domain) for name, password, domain in settings["accounts"]]
    servers = {
        str(domain): (str(host), int(port)) for domain, (host, port) in settings["servers"].items()
    }
    asyncio.run(ROLES[str(settings["role"])](settings, accounts, servers))


if __name__ == "__main__":
    main()
