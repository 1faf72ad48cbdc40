"""One heron whose services are reachable only through the port-443 mux, for issue 13's
interop tests: TURN, SIP and XMPP have no listener of their own, so a client that gets
an answer got it through ``mux.listen``.

The handles it gives out (:class:`TurnServer`, :class:`SipServer`, :class:`XmppServer`)
are the other interop packages' own, with every port set to the mux port, so their
helpers (``uclient``, ``register``, ``login``...) drive the clients unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.interop.sip.support import USERS as SIP_USERS
from tests.interop.sip.support import SipServer
from tests.interop.turn.support import SECRET, TurnServer, relay_window
from tests.interop.xmpp.support import XmppServer
from tests.support.certs import CertificateAuthority
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, merge, provision, serving

LOCALHOST = "127.0.0.1"
DOMAIN = "localhost"
TURN_NAME = "turn.localhost"
"""A server name ``mux.sni`` gives to TURN: a client offering no ALPN is classified by it."""
SIP_NAME = "sip.localhost"
"""A server name ``mux.sni`` gives to SIP (socat offers no ALPN)."""
ACCOUNTS = {user: SIP_USERS[user] for user in ("alice", "bob", "ivan")}
"""The accounts, by local part, with the SIP package's passwords; few, as each costs a
password hash at start. alice allocates TURN relays, registers and calls; ivan is called
over TCP and bob over TLS (each call its own callee, so no binding one test leaves forks
another's call); over XMPP bob logs in with direct TLS and ivan with STARTTLS."""
METRIC = re.compile(r"^(heron_mux_\w+) (\S+)$", re.MULTILINE)


@dataclass
class MuxHeron:
    heron: RunningHeron
    directory: Path
    port: int
    """The mux port: TCP for every service, UDP for STUN/TURN."""
    web_port: int
    """web.listen (``base_settings`` gives one), which the clients here do not use; the
    mux port when there is none."""
    relay_ports: tuple[int, int]
    certificate: Path
    """The CA that issued heron's certificate: what clients verify it with."""

    @property
    def turn(self) -> TurnServer:
        return TurnServer(self.heron, self.port, self.port, self.relay_ports, self.certificate)

    @property
    def sip(self) -> SipServer:
        return SipServer(
            self.heron, self.directory, self.port, self.port, self.web_port, self.certificate
        )

    @property
    def xmpp(self) -> XmppServer:
        return XmppServer(
            self.heron, self.port, self.port, self.web_port, self.port, self.certificate
        )

    def log(self) -> str:
        return "".join(self.heron.log)


def certify(directory: Path) -> tuple[Path, dict[str, str]]:
    """A CA file and ``[tls]`` settings for a certificate it issued naming heron's domain,
    the names ``mux.sni`` maps and 127.0.0.1 (``heron cert`` names no ``mux.sni`` name)."""
    authority = CertificateAuthority()
    names: list[x509.GeneralName] = [
        x509.DNSName(name) for name in (DOMAIN, f"conference.{DOMAIN}", TURN_NAME, SIP_NAME)
    ]
    names.append(x509.IPAddress(ipaddress.ip_address(LOCALHOST)))
    certificate, key = authority.issue(names, server_auth_only=True).write(directory, "heron")
    key.chmod(0o600)
    settings = {"certificate": str(certificate), "key": str(key)}
    return authority.write(directory / "ca.crt"), settings


def mux_settings(port: int, relay_ports: tuple[int, int], tls: dict[str, str]) -> dict[str, Any]:
    """TURN, SIP and XMPP on, none with a listener of its own; the mux on ``port``."""
    return {
        "domain": DOMAIN,
        "tls": tls,
        "turn": {
            "enabled": True,
            "listen": [],
            "tls_listen": [],
            "relay_addresses": [LOCALHOST],
            "relay_port_min": relay_ports[0],
            "relay_port_max": relay_ports[1],
            "allowed_peer_ranges": ["127.0.0.0/8"],
            "auth_secret": SECRET,
        },
        "sip": {"enabled": True, "listen": [], "tls_listen": []},
        "xmpp": {
            "enabled": True,
            "listen": [],
            "tls_listen": [],
            "s2s_listen": [],
            "s2s_tls_listen": [],
        },
        "mux": {
            "listen": [f"{LOCALHOST}:{port}"],
            "sni": {TURN_NAME: "turn", SIP_NAME: "sip"},
        },
    }


@contextmanager
def mux_heron(directory: Path, *, web_listen: bool = True) -> Iterator[MuxHeron]:
    """heron with every service behind the mux on a free port, and ``ACCOUNTS``;
    checked to stop cleanly. Without ``web_listen`` the web too is the mux's alone."""
    port = free_port()
    relay_ports = relay_window()
    directory.mkdir(parents=True, exist_ok=True)
    authority, tls = certify(directory)
    settings = merge(base_settings(directory), mux_settings(port, relay_ports, tls))
    if not web_listen:
        settings["web"]["listen"] = []
    config = directory / "heron.toml"
    config.write_text(render_toml(settings))
    provision(config, {f"{user}@{DOMAIN}": password for user, password in ACCOUNTS.items()})
    web = settings["web"]["listen"]
    web_port = int(web[0].rsplit(":", 1)[1]) if web else port
    with serving(config) as heron:
        yield MuxHeron(heron, directory, port, web_port, relay_ports, authority)
    log = "".join(heron.log)
    assert heron.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


def mux_counters(metrics: str) -> dict[str, float]:
    """The ``heron_mux_*`` samples of a /metrics page, by name."""
    return {name: float(value) for name, value in METRIC.findall(metrics)}
