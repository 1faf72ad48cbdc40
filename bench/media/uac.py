"""The smallest SIP caller the media bench needs: INVITE (with MD5 digest when
challenged), ACK and BYE over UDP, through a record-routing proxy.

The WebRTC side of each bench call is an aiortc peer connection whose SDP this
caller carries; the proxy (heron, or Kamailio with rtpengine) sees a browser's
offer (UDP/TLS/RTP/SAVPF) arriving over UDP and bridges it to the plain-RTP callee.
One UDP socket serves every call; answers are matched by Call-ID and CSeq.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import cast

from bench.proc import Address

_CHALLENGE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
_ANSWER_WAIT = 15.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_response(data: bytes) -> Response | None:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2 or not first[0].startswith("SIP/2.0") or not first[1].isdigit():
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return Response(int(first[1]), headers, body)


def digest(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    """An Authorization value for an MD5 ``Digest`` challenge with qop=auth (RFC 2617)."""
    params = {m[0].lower(): m[1] or m[2] for m in _CHALLENGE.findall(challenge)}
    realm, nonce = params["realm"], params["nonce"]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    cnonce, nc = secrets.token_hex(8), "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    extra = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"{extra}'
    )


@dataclass
class Dialog:
    """An established call as the caller knows it."""

    call_id: str
    local_tag: str
    remote_to: str
    remote_target: str
    routes: list[str]
    cseq: int
    answer: bytes


@dataclass
class Caller(asyncio.DatagramProtocol):
    """One UDP socket placing calls as ``user`` through ``proxy``."""

    proxy: Address
    user: str
    password: str
    domain: str
    transport: asyncio.DatagramTransport | None = None
    local: Address = ("127.0.0.1", 0)
    _waiting: dict[tuple[str, int], asyncio.Queue[Response]] = field(default_factory=dict)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        response = parse_response(data)
        if response is None:  # a request to us (an OPTIONS keepalive): not needed here
            return
        cseq = (response.header("CSeq") or "0").split()[0]
        queue = self._waiting.get((response.header("Call-ID") or "", int(cseq)))
        if queue is not None:
            queue.put_nowait(response)

    def _send(
        self, method: str, uri: str, headers: list[str], body: bytes = b"", branch: str = ""
    ) -> None:
        assert self.transport is not None
        host, port = self.local
        branch = branch or f"z9hG4bK{secrets.token_hex(8)}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
            "Max-Forwards: 70",
            *headers,
            f"Content-Length: {len(body)}",
        ]
        self.transport.sendto("\r\n".join(lines).encode() + b"\r\n\r\n" + body, self.proxy)

    async def _final(self, call_id: str, cseq: int) -> Response:
        queue = self._waiting.setdefault((call_id, cseq), asyncio.Queue())
        try:
            while True:
                response = await asyncio.wait_for(queue.get(), _ANSWER_WAIT)
                if response.status >= 200:
                    return response
        finally:
            self._waiting.pop((call_id, cseq), None)

    async def invite(self, callee: str, sdp: bytes) -> Dialog:
        """Call ``callee`` (a user of ``domain``) offering ``sdp``; the 2xx's dialog."""
        call_id, tag = secrets.token_hex(12), secrets.token_hex(6)
        uri = f"sip:{callee}@{self.domain}"
        host, port = self.local
        base = [
            f"From: <sip:{self.user}@{self.domain}>;tag={tag}",
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"Contact: <sip:{self.user}@{host}:{port}>",
            "Content-Type: application/sdp",
        ]
        authorization: list[str] = []
        for cseq in (1, 2):
            branch = f"z9hG4bK{secrets.token_hex(8)}"
            headers = [*base, f"CSeq: {cseq} INVITE", *authorization]
            self._send("INVITE", uri, headers, sdp, branch)
            response = await self._final(call_id, cseq)
            to = response.header("To") or ""
            if response.status in (401, 407) and not authorization:
                self._ack_failure(uri, base, to, cseq, branch)
                name = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
                challenge = next(
                    c for c in response.all(name) if "MD5" in c or "algorithm" not in c
                )
                credential = digest(challenge, "INVITE", uri, self.user, self.password)
                header = "Proxy-Authorization" if response.status == 407 else "Authorization"
                authorization = [f"{header}: {credential}"]
                continue
            if response.status != 200:
                self._ack_failure(uri, base, to, cseq, branch)
                raise RuntimeError(f"INVITE to {callee} failed: {response.status}")
            contact = re.search(r"<([^>]+)>", response.header("Contact") or "")
            routes = list(reversed([r for v in response.all("Record-Route") for r in _split(v)]))
            dialog = Dialog(call_id, tag, to, contact[1] if contact else uri, routes, cseq, b"")
            dialog.answer = response.body
            self._in_dialog("ACK", dialog, cseq)
            return dialog
        raise RuntimeError(f"INVITE to {callee}: challenged twice")

    def _ack_failure(self, uri: str, base: list[str], to: str, cseq: int, branch: str) -> None:
        """The ACK of a non-2xx final answer: the INVITE's branch, the answer's To tag
        (RFC 3261 §17.1.1.3), so the proxy's transaction stops retransmitting."""
        headers = [h if not h.startswith("To:") else f"To: {to}" for h in base[:3]]
        self._send("ACK", uri, [*headers, f"CSeq: {cseq} ACK"], branch=branch)

    def _in_dialog(self, method: str, dialog: Dialog, cseq: int) -> None:
        headers = [
            f"From: <sip:{self.user}@{self.domain}>;tag={dialog.local_tag}",
            f"To: {dialog.remote_to}",
            f"Call-ID: {dialog.call_id}",
            f"CSeq: {cseq} {method}",
            *(f"Route: {route}" for route in dialog.routes),
        ]
        self._send(method, dialog.remote_target, headers)

    async def bye(self, dialog: Dialog) -> int:
        dialog.cseq += 1
        self._in_dialog("BYE", dialog, dialog.cseq)
        return (await self._final(dialog.call_id, dialog.cseq)).status


def _split(value: str) -> list[str]:
    """The entries of one Record-Route header value (commas outside <...>)."""
    return [part.strip() for part in re.findall(r"<[^>]*>[^,]*", value)]
