"""A deliberately small SIP user agent for the interop tests: text in, text out.

It stands in for the clients sipp cannot be here (sipp from Debian is built without
TLS) and for a browser (JsSIP's SIP over WebSocket, RFC 7118). It shares no code
with heron, so a heron parsing or digest mistake cannot hide behind the same mistake
in the test: messages are built as text, parsed with a few lines of splitting, and
the digest (RFC 2617 with qop=auth, MD5) is computed here.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
}
LIST_HEADERS = frozenset({"via", "route", "record-route", "contact"})
_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def split_list(value: str) -> list[str]:
    """Comma-separated header values, not splitting inside <...> or quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth -= 1
        elif char == "," and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


@dataclass(frozen=True)
class SipMessage:
    start: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @property
    def status(self) -> int | None:
        if not self.start.startswith("SIP/2.0 "):
            return None
        return int(self.start.split()[1])

    @property
    def method(self) -> str | None:
        return None if self.status is not None else self.start.split()[0]

    @property
    def uri(self) -> str:
        assert self.method is not None, self.start
        return self.start.split()[1]

    @property
    def cseq_method(self) -> str:
        return self.get("CSeq", "").split()[-1]

    def all(self, name: str) -> list[str]:
        """Every value of a header, list headers split at their commas."""
        wanted = COMPACT.get(name.lower(), name.lower())
        values = [v for n, v in self.headers if COMPACT.get(n.lower(), n.lower()) == wanted]
        if wanted in LIST_HEADERS:
            return [item for value in values for item in split_list(value)]
        return values

    def get(self, name: str, default: str = "") -> str:
        values = self.all(name)
        return values[0] if values else default

    def __str__(self) -> str:
        lines = [self.start, *(f"{name}: {value}" for name, value in self.headers)]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body


def parse(text: str) -> SipMessage:
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.strip("\n").split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 §7.3.1)
            name, value = headers.pop()
            headers.append((name, value + " " + line.strip()))
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return SipMessage(lines[0].strip(), tuple(headers), body.replace("\n", "\r\n"))


def unsealed(routes: Sequence[str]) -> list[str]:
    """Route or Record-Route values without the seal heron puts in its own (``hs``, ``hc``:
    an HMAC binding the dialog, checked when in-dialog requests come back)."""
    return [re.sub(r";h[sc]=[0-9a-f]+", "", route) for route in routes]


def tag_of(address: str) -> str | None:
    found = re.search(r";\s*tag=([^;>\s]+)", address.rpartition(">")[2] or address)
    return found.group(1) if found else None


def uri_of(address: str) -> str:
    """The URI inside a name-addr (<...>) or the addr-spec before its parameters."""
    if "<" in address:
        return address.split("<", 1)[1].split(">", 1)[0]
    return address.split(";", 1)[0].strip()


def encode(start: str, headers: Sequence[tuple[str, str]], body: str = "") -> str:
    lines = [start, *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def reply(
    request: SipMessage,
    status: int,
    reason: str,
    *,
    to_tag: str | None,
    headers: Sequence[tuple[str, str]] = (),
    body: str = "",
) -> str:
    """A response copying Via, From, To, Call-ID, CSeq and Record-Route (RFC 3261 §8.2.6.2,
    §12.1.1)."""
    to = request.get("To")
    if to_tag is not None and tag_of(to) is None:
        to += f";tag={to_tag}"
    copied = [("Via", via) for via in request.all("Via")]
    copied += [("From", request.get("From")), ("To", to), ("Call-ID", request.get("Call-ID"))]
    copied += [("CSeq", request.get("CSeq"))]
    if 100 < status < 300:
        copied += [("Record-Route", route) for route in request.all("Record-Route")]
    return encode(f"SIP/2.0 {status} {reason}", [*copied, *headers], body)


def challenge_params(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme.lower() == "digest", value
    return {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}


def md5_challenge(response: SipMessage) -> dict[str, str]:
    """The MD5 challenge of a 401 or 407 (heron offers MD5 first, then SHA-256)."""
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    for value in response.all(name):
        params = challenge_params(value)
        if params.get("algorithm", "MD5").upper() == "MD5":
            return params
    raise AssertionError(f"no MD5 challenge in:\n{response}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_credentials(
    challenge: dict[str, str], method: str, uri: str, username: str, password: str
) -> str:
    """RFC 2617 §3.2.2 digest with qop=auth, computed independently of heron."""
    realm, nonce = challenge["realm"], challenge["nonce"]
    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        "algorithm=MD5",
    ]
    if "auth" in qops:
        answer = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += [f'response="{answer}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        fields.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(fields)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


# --- channels ---------------------------------------------------------------------------


class Channel(Protocol):
    transport: str
    """What goes in our Via: "WSS" or "TLS"."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> SipMessage: ...

    async def close(self) -> None: ...


class WebSocketChannel:
    """SIP over WebSocket (RFC 7118): one message per text frame, as JsSIP sends."""

    transport = "WSS"

    def __init__(self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse):
        self._session = session
        self.socket = socket

    @classmethod
    async def connect(cls, url: str, context: ssl.SSLContext) -> WebSocketChannel:
        """Open ``url`` with the ``sip`` subprotocol and, as a page would, an Origin."""
        session = aiohttp.ClientSession()
        origin = "https://" + url.split("://", 1)[1].split("/", 1)[0]
        try:
            socket = await session.ws_connect(
                url, protocols=("sip",), ssl=context, origin=origin, heartbeat=None
            )
        except BaseException:
            await session.close()
            raise
        assert socket.protocol == "sip", socket.protocol
        return cls(session, socket)

    async def send(self, text: str) -> None:
        await self.socket.send_str(text)

    async def receive(self) -> SipMessage:
        message = await self.socket.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            return parse(message.data)
        if message.type == aiohttp.WSMsgType.BINARY:
            return parse(message.data.decode())
        raise ConnectionError(f"WebSocket closed: {message.type!r} {message.extra!r}")

    async def close(self) -> None:
        await self.socket.close()
        await self._session.close()


class StreamChannel:
    """SIP over TLS: messages framed by Content-Length (RFC 3261 §18.3)."""

    transport = "TLS"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.local = writer.get_extra_info("sockname")[:2]

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl.SSLContext) -> StreamChannel:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        return cls(reader, writer)

    async def send(self, text: str) -> None:
        self._writer.write(text.encode())
        await self._writer.drain()

    async def receive(self) -> SipMessage:
        while True:
            head = await self._reader.readuntil(b"\r\n\r\n")
            if head.strip():
                break  # CRLF keep-alives (RFC 5626 §3.5.1) are skipped
        message = parse(head.decode())
        length = int(message.get("Content-Length", "0"))
        body = await self._reader.readexactly(length) if length else b""
        return parse(head.decode() + body.decode())

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


# --- the user agent ---------------------------------------------------------------------


class UserAgent:
    """One user on one channel: REGISTER, INVITE, in-dialog requests, answering calls.

    Messages that arrive while the agent waits for something else are kept, in order,
    for the next :meth:`expect`.
    """

    def __init__(
        self,
        channel: Channel,
        user: str,
        password: str,
        *,
        domain: str = "localhost",
        sent_by: str | None = None,
        contact: str | None = None,
    ) -> None:
        self.channel = channel
        self.user = user
        self.password = password
        self.domain = domain
        self.sent_by = sent_by or f"{secrets.token_hex(6)}.invalid"
        self.contact = contact or f"<sip:{secrets.token_hex(4)}@{self.sent_by};transport=ws>"
        self.call_id = secrets.token_hex(10)
        self.from_tag = secrets.token_hex(5)
        self.cseq = 0
        self.instance = str(uuid.uuid4())
        self._backlog: list[SipMessage] = []

    def via(self, branch: str | None = None) -> str:
        return f"SIP/2.0/{self.channel.transport} {self.sent_by};branch={branch or new_branch()}"

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    async def send(self, text: str) -> None:
        await self.channel.send(text)

    async def expect(
        self, predicate: Callable[[SipMessage], bool], timeout: float = 10.0
    ) -> SipMessage:
        """The first message, kept or new, that ``predicate`` accepts."""
        for index, message in enumerate(self._backlog):
            if predicate(message):
                return self._backlog.pop(index)
        async with asyncio.timeout(timeout):
            while True:
                message = await self.channel.receive()
                if predicate(message):
                    return message
                self._backlog.append(message)

    async def final_response(self, call_id: str, cseq: int, timeout: float = 10.0) -> SipMessage:
        return await self.expect(
            lambda m: (
                (m.status or 0) >= 200
                and m.get("Call-ID") == call_id
                and m.get("CSeq").split()[0] == str(cseq)
            ),
            timeout,
        )

    def _next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq

    async def register(
        self, expires: int = 600, password: str | None = None, *, outbound: bool = True
    ) -> tuple[SipMessage, SipMessage]:
        """REGISTER as JsSIP does (with ``outbound``, RFC 5626 instance and reg-id); answer
        the 401 once. Returns (challenge, final)."""
        uri = f"sip:{self.domain}"
        contact = self.contact
        if outbound:
            contact += f';+sip.ice;reg-id=1;+sip.instance="<urn:uuid:{self.instance}>"'
        contact += f";expires={expires}"
        headers = [
            ("Max-Forwards", "69"),
            ("To", f"<{self.aor}>"),
            ("From", f'"{self.user.title()} Test" <{self.aor}>;tag={self.from_tag}'),
            ("Call-ID", self.call_id),
            ("Expires", str(expires)),
            ("Contact", contact),
            ("Allow", "INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY,SUBSCRIBE"),
            ("Supported", "path,gruu,outbound"),
            ("User-Agent", "heron-interop-test"),
        ]
        cseq = self._next_cseq()
        await self.send(
            encode(
                f"REGISTER {uri} SIP/2.0", [("Via", self.via()), *headers, _cseq(cseq, "REGISTER")]
            )
        )
        challenge = await self.final_response(self.call_id, cseq)
        if challenge.status != 401:
            return challenge, challenge
        credentials = digest_credentials(
            md5_challenge(challenge), "REGISTER", uri, self.user, password or self.password
        )
        cseq = self._next_cseq()
        await self.send(
            encode(
                f"REGISTER {uri} SIP/2.0",
                [
                    ("Via", self.via()),
                    *headers,
                    _cseq(cseq, "REGISTER"),
                    ("Authorization", credentials),
                ],
            )
        )
        return challenge, await self.final_response(self.call_id, cseq)

    async def invite(self, callee: str, sdp: str) -> tuple[Call, list[SipMessage]]:
        """INVITE ``callee`` (a user at our domain), answering one 407.

        Returns the call and every response to the last INVITE, up to its final one.
        """
        call = Call(self, f"sip:{callee}@{self.domain}", secrets.token_hex(10))
        responses = await call.send_invite(sdp)
        if responses[-1].status == 407:
            await call.ack_non_2xx(responses[-1])
            credentials = digest_credentials(
                md5_challenge(responses[-1]), "INVITE", call.target, self.user, self.password
            )
            responses = await call.send_invite(sdp, ("Proxy-Authorization", credentials))
        call.established(responses[-1])
        return call, responses

    async def answer_invite(
        self, invite: SipMessage, sdp: str, *, ring: bool = True
    ) -> AnsweredCall:
        """180 then 200 to an INVITE received, copying its Record-Route."""
        to_tag = secrets.token_hex(5)
        contact = [("Contact", self.contact)]
        if ring:
            await self.send(reply(invite, 180, "Ringing", to_tag=to_tag, headers=contact))
        ok = reply(
            invite,
            200,
            "OK",
            to_tag=to_tag,
            headers=[*contact, ("Content-Type", "application/sdp")],
            body=sdp,
        )
        await self.send(ok)
        return AnsweredCall(self, invite, to_tag)


@dataclass
class Call:
    """A call this agent places: the INVITE transaction and then the dialog (UAC side)."""

    agent: UserAgent
    target: str
    call_id: str
    cseq: int = 0
    invite_branch: str = ""
    remote_target: str = ""
    route_set: tuple[str, ...] = ()
    to: str = ""

    def _base_headers(self, to: str) -> list[tuple[str, str]]:
        agent = self.agent
        return [
            ("Max-Forwards", "69"),
            ("To", to),
            ("From", f'"{agent.user.title()} Test" <{agent.aor}>;tag={agent.from_tag}'),
            ("Call-ID", self.call_id),
        ]

    async def send_invite(self, sdp: str, *extra: tuple[str, str]) -> list[SipMessage]:
        """Send an INVITE; every response to it up to its final one (100s included)."""
        agent = self.agent
        self.cseq += 1
        self.invite_branch = new_branch()
        headers = [
            ("Via", agent.via(self.invite_branch)),
            *self._base_headers(f"<{self.target}>"),
            _cseq(self.cseq, "INVITE"),
            ("Contact", agent.contact[:-1] + ";ob>"),
            ("Content-Type", "application/sdp"),
            ("Allow", "INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY,SUBSCRIBE"),
            ("Supported", "ice,replaces,outbound"),
            ("User-Agent", "heron-interop-test"),
            *extra,
        ]
        await agent.send(encode(f"INVITE {self.target} SIP/2.0", headers, sdp))
        responses: list[SipMessage] = []
        while not responses or (responses[-1].status or 0) < 200:
            responses.append(
                await agent.expect(
                    lambda m: (
                        m.status is not None
                        and m.get("Call-ID") == self.call_id
                        and m.get("CSeq") == f"{self.cseq} INVITE"
                    )
                )
            )
        return responses

    def established(self, final: SipMessage) -> None:
        """Dialog state from a 2xx (RFC 3261 §12.1.2): the route set is the Record-Route
        reversed, the remote target its Contact."""
        if final.status is not None and 200 <= final.status < 300:
            self.route_set = tuple(reversed(final.all("Record-Route")))
            self.remote_target = uri_of(final.get("Contact"))
            self.to = final.get("To")

    async def ack_non_2xx(self, response: SipMessage) -> None:
        """RFC 3261 §17.1.1.3: same Request-URI and branch as the INVITE, the response's To."""
        headers = self._base_headers(response.get("To"))
        await self.agent.send(
            encode(
                f"ACK {self.target} SIP/2.0",
                [("Via", self.agent.via(self.invite_branch)), *headers, _cseq(self.cseq, "ACK")],
            )
        )

    def _in_dialog(self, method: str, cseq: int) -> str:
        routes = [("Route", route) for route in self.route_set]
        return encode(
            f"{method} {self.remote_target} SIP/2.0",
            [
                ("Via", self.agent.via()),
                *self._base_headers(self.to),
                _cseq(cseq, method),
                *routes,
            ],
        )

    async def ack(self) -> None:
        """ACK for the 2xx: a new transaction, along the route set (RFC 3261 §13.2.2.4)."""
        await self.agent.send(self._in_dialog("ACK", self.cseq))

    async def bye(self) -> SipMessage:
        self.cseq += 1
        await self.agent.send(self._in_dialog("BYE", self.cseq))
        return await self.agent.final_response(self.call_id, self.cseq)


@dataclass
class AnsweredCall:
    """A call this agent answered (UAS side): what it waits for afterwards."""

    agent: UserAgent
    invite: SipMessage
    to_tag: str

    @property
    def call_id(self) -> str:
        return self.invite.get("Call-ID")

    def _in_this_dialog(self, method: str) -> Callable[[SipMessage], bool]:
        return lambda m: m.method == method and m.get("Call-ID") == self.call_id

    async def receive(self, method: str, timeout: float = 10.0) -> SipMessage:
        return await self.agent.expect(self._in_this_dialog(method), timeout)

    async def answer(self, request: SipMessage, status: int = 200, reason: str = "OK") -> None:
        await self.agent.send(reply(request, status, reason, to_tag=None))


def _cseq(number: int, method: str) -> tuple[str, str]:
    return ("CSeq", f"{number} {method}")


def trusting(certificate: str) -> ssl.SSLContext:
    """A client TLS context trusting heron's self-signed certificate, and verifying it."""
    context = ssl.create_default_context(cafile=certificate)
    context.check_hostname = True
    return context


SDP = (
    "v=0\r\n"
    "o=- 8821646753627605362 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "m=audio 38676 UDP/TLS/RTP/SAVPF 111 0\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=setup:actpass\r\n"
    "a=sendrecv\r\n"
)
