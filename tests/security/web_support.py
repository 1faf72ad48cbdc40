"""A browser as an attacker drives it: HTTPS requests to the target's web port, by hand.

Each request is a new connection (``http.client``), so a test can choose the source
address it comes from (127.0.0.2, 127.0.0.3, ... are loopback too) and the exact bytes
of headers and bodies. The session cookie is kept by hand: it is Secure and the host is
an IP address, which cookie jars refuse.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.security.support import DOMAIN, HOST, Target

COOKIE = "heron_session"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browser:
    """One visitor of the target's web port, from ``source``."""

    target: Target
    source: str = HOST
    port: int | None = None
    """Another port than ``web.listen``'s, such as a plain listener's (then ``tls`` False)."""
    tls: bool = True
    token: str | None = None
    csrf: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def connection(self) -> http.client.HTTPConnection:
        port = self.port or self.target.ports["web.listen"]
        if self.tls:
            return http.client.HTTPSConnection(
                HOST,
                port,
                timeout=30,
                context=self.target.tls_context(),
                source_address=(self.source, 0),
            )
        return http.client.HTTPConnection(HOST, port, timeout=30, source_address=(self.source, 0))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {**self.extra_headers, **(headers or {})}
        if self.token is not None:
            sent.setdefault("Cookie", f"{COOKIE}={self.token}")
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        for value in answer.headers.get_all("Set-Cookie") or []:
            match = re.match(rf"{COOKIE}=([^;]*)", value)
            if match:
                self.token = match[1].strip('"') or None
        return answer

    def login(self, address: str, password: str) -> Answer:
        form = urllib.parse.urlencode({"address": address, "password": password})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", "/login", form.encode(), headers)

    def login_ok(self, address: str, password: str) -> None:
        answer = self.login(address, password)
        assert answer.status == 302, (answer.status, answer.text)
        session = self.request("GET", "/api/session")
        assert session.status == 200, session.text
        self.csrf = session.json()["csrf"]

    def write(self, method: str, path: str, body: Any) -> Answer:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf or ""}
        return self.request(method, path, json.dumps(body).encode(), headers)


def wait_for(predicate: Callable[[], bool], what: str, deadline: float = 30.0) -> None:
    """Poll an observable until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sip_register(target: Target, user: str, username: str, password: str) -> int:
    """REGISTER ``user`` over UDP with digest credentials ``username``/``password``
    (MD5, RFC 2617 with qop=auth, as JsSIP does); the final status heron answers."""
    realm = DOMAIN
    port = target.ports["sip.listen"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(10)
        local = sock.getsockname()[1]
        call_id = secrets.token_hex(8)

        def send(cseq: int, authorization: str | None) -> str:
            lines = [
                f"REGISTER sip:{realm} SIP/2.0",
                f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{secrets.token_hex(6)};rport",
                "Max-Forwards: 70",
                f"From: <sip:{user}@{realm}>;tag={secrets.token_hex(4)}",
                f"To: <sip:{user}@{realm}>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{user}@{HOST}:{local}>",
                "Expires: 60",
            ]
            if authorization is not None:
                lines.append(f"Authorization: {authorization}")
            message = "\r\n".join([*lines, "Content-Length: 0", "", ""])
            sock.sendto(message.encode(), (HOST, port))
            while True:
                data = sock.recv(65535).decode("utf-8", "replace")
                status = int(data.split(" ", 2)[1])
                if status >= 200:
                    return data

        first = send(1, None)
        if not first.startswith("SIP/2.0 401"):
            return int(first.split(" ", 2)[1])
        challenges = re.findall(r"(?im)^WWW-Authenticate:\s*Digest\s+(.*)$", first)
        params = next(
            dict(re.findall(r'(\w+)="?([^",]*)"?', c))
            for c in challenges
            if "MD5" in c.upper() and "SHA-256" not in c.upper()
        )

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        nonce, cnonce, nc = params["nonce"], secrets.token_hex(8), "00000001"
        ha1 = md5(f"{username}:{realm}:{password}")
        ha2 = md5(f"REGISTER:sip:{realm}")
        response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        authorization = (
            f'Digest username="{username}", realm="{realm}", nonce="{nonce}", '
            f'uri="sip:{realm}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc={nc}, cnonce="{cnonce}"'
        )
        if "opaque" in params:
            authorization += f', opaque="{params["opaque"]}"'
        return int(send(2, authorization).split(" ", 2)[1])
