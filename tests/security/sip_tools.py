"""Raw SIP over real sockets for the SIP attack tests: text out, parsed text in.

Messages are written by hand (the attacker's bytes), answers parsed with the interop
tests' small independent parser (:mod:`tests.interop.sip.wire`), so a mistake in
heron's SIP code cannot hide behind the same mistake here.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from tests.interop.sip.wire import SipMessage, digest_credentials, md5_challenge, parse
from tests.security.support import DOMAIN, HOST, USERS

__all__ = [
    "Phone",
    "TcpPeer",
    "UdpPeer",
    "listener",
    "request",
    "wait_for",
]

TIMEOUT = 10.0


def request(
    method: str,
    uri: str,
    *,
    via: str,
    headers: Sequence[tuple[str, str]] = (),
    body: str = "",
    length: str | None = None,
    cseq: int = 1,
    call_id: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    tagged: bool = True,
    max_forwards: int = 70,
) -> bytes:
    """A request as an attacker writes it; ``length`` overrides Content-Length; ``from_``,
    ``to`` and ``call_id`` are left out when "", defaulted when None; ``tagged`` adds a
    From tag."""
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}", f"Max-Forwards: {max_forwards}"]
    if from_ != "":
        tag = f";tag={secrets.token_hex(4)}" if tagged else ""
        lines.append(f"From: {from_ or f'<sip:stranger@{DOMAIN}>'}{tag}")
    if to != "":
        lines.append(f"To: {to or f'<sip:roland@{DOMAIN}>'}")
    if call_id != "":
        lines.append(f"Call-ID: {call_id or secrets.token_hex(8)}")
    lines.append(f"CSeq: {cseq} {method}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body.encode()) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


class UdpPeer:
    """A UDP socket on loopback, sending to heron's SIP port and reading what comes back."""

    def __init__(self, port: int, host: str = HOST) -> None:
        """``host`` is the local address: any of 127.0.0.0/8 is another source network."""
        self.target = (HOST, port)
        self.host = host
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((host, 0))
        self.port: int = self.socket.getsockname()[1]

    def via(self, sent_by: str | None = None) -> str:
        return f"SIP/2.0/UDP {sent_by or f'{self.host}:{self.port}'};branch={branch()}"

    def send(self, data: bytes) -> None:
        self.socket.sendto(data, self.target)

    def receive(self, timeout: float = TIMEOUT) -> SipMessage:
        self.socket.settimeout(timeout)
        data, _ = self.socket.recvfrom(65535)
        return parse(data.decode("utf-8", "replace"))

    def final(self, timeout: float = TIMEOUT) -> SipMessage:
        """The next final response, provisional ones skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if message.status is None or message.status >= 200:
                return message

    def nothing(self, within: float) -> bool:
        """True when nothing arrives within ``within`` seconds (a silence check, bounded)."""
        self.socket.settimeout(within)
        try:
            self.socket.recvfrom(65535)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.socket.close()


class TcpPeer:
    """A TCP connection to heron's SIP port, messages framed by Content-Length."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.port: int = self.socket.getsockname()[1]
        self._buffer = b""

    def via(self) -> str:
        return f"SIP/2.0/TCP {HOST}:{self.port};branch={branch()}"

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def receive(self, timeout: float = TIMEOUT) -> SipMessage:
        self.socket.settimeout(timeout)
        while True:
            self._buffer = self._buffer.lstrip(b"\r\n")
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                message = parse(head.decode("utf-8", "replace") + "\r\n\r\n")
                length = int(message.get("Content-Length", "0") or 0)
                if len(rest) >= length:
                    self._buffer = rest[length:]
                    return parse((head + sep + rest[:length]).decode("utf-8", "replace"))
            data = self.socket.recv(65535)
            if not data:
                raise ConnectionError("heron closed the connection")
            self._buffer += data

    def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once heron has closed the connection (reads until EOF or a reset)."""
        self.socket.settimeout(timeout)
        try:
            while self.socket.recv(65535):
                pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def close(self) -> None:
        self.socket.close()


class Phone:
    """A user agent registered over UDP with digest, as a desk phone would."""

    def __init__(
        self, port: int, user: str = "roland", password: str | None = None, host: str = HOST
    ) -> None:
        self.peer = UdpPeer(port, host)
        self.user = user
        self.password = USERS[user] if password is None else password

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.peer.host}:{self.peer.port}>"

    def authenticated(
        self, build: Callable[[str | None], bytes], method: str, uri: str, expect: int = 407
    ) -> SipMessage:
        """Send ``build(None)``; on ``expect`` send ``build(credentials)`` once more."""
        self.peer.send(build(None))
        answer = self.peer.final()
        if answer.status != expect:
            return answer
        credentials = digest_credentials(
            md5_challenge(answer), method, uri, self.user, self.password
        )
        self.peer.send(build(credentials))
        return self.peer.final()

    def register(self, expires: int = 600) -> SipMessage:
        call_id = secrets.token_hex(8)
        uri = f"sip:{DOMAIN}"
        cseq = iter(range(1, 10))

        def build(credentials: str | None) -> bytes:
            headers = [("Contact", self.contact), ("Expires", str(expires))]
            if credentials:
                headers.append(("Authorization", credentials))
            aor = f"<sip:{self.user}@{DOMAIN}>"
            return request(
                "REGISTER",
                uri,
                via=self.peer.via(),
                from_=aor,
                to=aor,
                call_id=call_id,
                cseq=next(cseq),
                headers=headers,
            )

        return self.authenticated(build, "REGISTER", uri, expect=401)

    def invite(
        self,
        uri: str,
        *,
        to: str | None = None,
        from_: str | None = None,
        routes: Sequence[str] = (),
        call_id: str | None = None,
    ) -> SipMessage:
        """INVITE ``uri`` as this user, answering one 407; the final response."""
        call_id = call_id or secrets.token_hex(8)
        cseq = iter(range(1, 10))
        tag = secrets.token_hex(4)

        def build(credentials: str | None) -> bytes:
            headers = [("Contact", self.contact), ("Content-Type", "application/sdp")]
            headers += [("Route", route) for route in routes]
            if credentials:
                headers.append(("Proxy-Authorization", credentials))
            return request(
                "INVITE",
                uri,
                via=self.peer.via(),
                from_=(from_ or f"<sip:{self.user}@{DOMAIN}>") + f";tag={tag}",
                to=to or f"<{uri}>",
                call_id=call_id,
                cseq=next(cseq),
                headers=headers,
                body=SDP,
                tagged=False,
            )

        answer = self.authenticated(build, "INVITE", uri)
        if answer.status is not None and answer.status >= 300:
            self.peer.send(ack_for(answer, uri))
        return answer

    def close(self) -> None:
        self.peer.close()


SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def ack_for(response: SipMessage, uri: str) -> bytes:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3), same branch."""
    lines = [
        f"ACK {uri} SIP/2.0",
        f"Via: {response.get('Via')}",
        "Max-Forwards: 70",
        f"From: {response.get('From')}",
        f"To: {response.get('To')}",
        f"Call-ID: {response.get('Call-ID')}",
        f"CSeq: {response.get('CSeq').split()[0]} ACK",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextmanager
def listener(kind: int = socket.SOCK_STREAM) -> Iterator[socket.socket]:
    """A loopback socket the attack tries to make heron reach (a stand-in for Redis)."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((HOST, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    try:
        yield sock
    finally:
        sock.close()


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (for log lines)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
