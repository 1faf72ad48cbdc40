"""heron behind a TLS-terminating reverse proxy (``web.plain_listen``), attacked through it.

Seen on the old code: every client behind the proxy was the proxy's 127.0.0.1, so
/metrics (served to loopback) was public through the proxy, and 30 bad logins from one
visitor locked every visitor out. Now X-Forwarded-For is believed only from
``web.trusted_proxies``; without it the client behind the proxy is unknown: never
loopback, and with no source address for the guess throttle.

The test plays the proxy itself: requests to the plain listener from 127.0.0.1 carrying
the X-Forwarded-For that nginx's ``$proxy_add_x_forwarded_for`` would send.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import DOMAIN, USERS, Target, target
from tests.security.web_support import Browser
from tests.support.config import free_port

ATTACKER = "203.0.113.66"
VISITOR = "198.51.100.7"


class Proxied:
    def __init__(self, running: Target, port: int) -> None:
        self.target = running
        self.port = port

    def via_proxy(self, client: str | None, *, source: str = "127.0.0.1") -> Browser:
        """Requests as the proxy forwards them for ``client`` (None: no header)."""
        # A browser's login POST carries the Origin of the page, which the proxy served.
        headers = {"X-Forwarded-Proto": "https", "Origin": f"https://127.0.0.1:{self.port}"}
        if client is not None:
            headers["X-Forwarded-For"] = client
        return Browser(self.target, source, port=self.port, tls=False, extra_headers=headers)


def _proxied(directory: Path, trusted: list[str]) -> Iterator[Proxied]:
    port = free_port()
    web = {"plain_listen": [f"127.0.0.1:{port}"], "trusted_proxies": trusted}
    with target(directory, {"web": web}) as running:
        yield Proxied(running, port)


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[Proxied]:
    """The default: a plain listener, and no proxy named in web.trusted_proxies."""
    yield from _proxied(tmp_path / "heron", [])


@pytest.fixture
def trusted(tmp_path: Path) -> Iterator[Proxied]:
    yield from _proxied(tmp_path / "heron", ["127.0.0.1/32"])


def _bad_logins(proxied: Proxied, client: str | None, count: int = 30) -> None:
    """Wrong passwords for ``count`` different names: no account's own wait is reached."""
    for n in range(count):
        answer = proxied.via_proxy(client).login(f"guess{n}@{DOMAIN}", "guess")
        assert answer.status in (403, 429), answer.text


def test_metrics_are_not_public_through_an_untrusted_proxy(untrusted: Proxied) -> None:
    for client in (VISITOR, "127.0.0.1", None):
        answer = untrusted.via_proxy(client).request("GET", "/metrics")
        assert answer.status == 403, (client, answer.text)
    assert "plain_listen without trusted_proxies" in untrusted.target.log()
    # Direct on the HTTPS port, a local scraper still gets them.
    assert Browser(untrusted.target).request("GET", "/metrics").status == 200


def test_metrics_are_not_public_through_a_trusted_proxy(trusted: Proxied) -> None:
    for client in (VISITOR, f"127.0.0.1, {VISITOR}"):  # the second forges loopback
        answer = trusted.via_proxy(client).request("GET", "/metrics")
        assert answer.status == 403, (client, answer.text)
    # The proxy's own host, not forwarding anyone, is local.
    assert trusted.via_proxy(None).request("GET", "/metrics").status == 200


def test_headers_from_anyone_else_are_not_believed(trusted: Proxied) -> None:
    """Another local address reaching the plain port is not the proxy."""
    forged = trusted.via_proxy("127.0.0.1", source="127.0.0.2")
    assert forged.request("GET", "/metrics").status == 403


def test_bad_logins_through_an_untrusted_proxy_do_not_lock_everyone_out(
    untrusted: Proxied,
) -> None:
    _bad_logins(untrusted, ATTACKER)
    visitor = untrusted.via_proxy(VISITOR)
    assert visitor.login(f"roland@{DOMAIN}", USERS["roland"]).status == 302


def test_bad_logins_through_a_trusted_proxy_hold_only_their_client(trusted: Proxied) -> None:
    _bad_logins(trusted, ATTACKER)
    held = trusted.via_proxy(ATTACKER).login(f"roland@{DOMAIN}", USERS["roland"])
    assert held.status == 429, held.text  # the attacker's own address waits
    visitor = trusted.via_proxy(VISITOR)
    assert visitor.login(f"roland@{DOMAIN}", USERS["roland"]).status == 302
    assert f"from {ATTACKER}" in trusted.target.log()
