"""A heron facing the Internet with its defaults, for tests that attack it over real sockets.

Every service listens on loopback, on ports chosen at run time; the settings are
what ``heron serve`` does out of the box but for those addresses, so an attack
that works here works on a default install. Tests that need another setting
pass ``overrides`` (merged one section deep).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, merge, provision, serving

HOST = "127.0.0.1"
DOMAIN = "localhost"
USERS = {"roland": "falcot-roland", "admin": "falcot-admin", "mallory": "mallory-own"}
"""Accounts of the target, by local part; ``admin`` is an administrator and ``mallory``
an attacker's own ordinary account."""


@dataclass
class Target:
    """The running server under attack and where each of its services listens."""

    heron: RunningHeron
    directory: Path
    ports: dict[str, int]
    """By config key: ``turn.listen``, ``turn.tls_listen``, ``sip.listen``, ``sip.tls_listen``,
    ``xmpp.listen``, ``xmpp.tls_listen``, ``xmpp.s2s_listen``, ``xmpp.s2s_tls_listen``,
    ``web.listen``."""

    @property
    def certificate(self) -> Path:
        return self.directory / "var" / "tls" / "heron.crt"

    @property
    def data_dir(self) -> Path:
        return self.directory / "var"

    def tls_context(self) -> ssl.SSLContext:
        """A client context trusting only the target's certificate."""
        context = ssl.create_default_context(cafile=str(self.certificate))
        context.check_hostname = False
        return context

    def log(self) -> str:
        return "".join(self.heron.log)

    def url(self, path: str = "/") -> str:
        return f"https://{HOST}:{self.ports['web.listen']}{path}"


def _settings(directory: Path, ports: Mapping[str, int]) -> dict[str, Any]:
    def at(key: str) -> list[str]:
        return [f"{HOST}:{ports[key]}"]

    return {
        "data_dir": str(directory / "var"),
        "admins": [f"admin@{DOMAIN}"],
        "turn": {"listen": at("turn.listen"), "tls_listen": at("turn.tls_listen")},
        "sip": {"listen": at("sip.listen"), "tls_listen": at("sip.tls_listen")},
        "xmpp": {
            "listen": at("xmpp.listen"),
            "tls_listen": at("xmpp.tls_listen"),
            "s2s_listen": at("xmpp.s2s_listen"),
            "s2s_tls_listen": at("xmpp.s2s_tls_listen"),
        },
        "web": {"listen": at("web.listen")},
    }


@contextmanager
def target(
    directory: Path,
    overrides: Mapping[str, Any] | None = None,
    users: Mapping[str, str] = USERS,
    *,
    reuse: bool = True,
) -> Iterator[Target]:
    """``heron serve`` with every service on, ``users`` imported; stopped after the block.

    ``reuse=False`` runs ``heron cert`` and ``heron user import`` for this data directory
    rather than copy another's (:func:`tests.support.heron.provision`)."""
    keys = ("turn.listen", "turn.tls_listen", "sip.listen", "sip.tls_listen")
    keys += ("xmpp.listen", "xmpp.tls_listen", "xmpp.s2s_listen", "xmpp.s2s_tls_listen")
    keys += ("web.listen",)
    ports = {key: free_port() for key in keys}
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "heron.toml"
    settings = merge(_settings(directory, ports), dict(overrides or {}))
    config.write_text(render_toml(settings))
    addresses = {f"{user}@{DOMAIN}": password for user, password in users.items()}
    provision(config, addresses, reuse=reuse)
    with serving(config) as heron:
        yield Target(heron, directory, ports)


def listening(log: str, service: str) -> list[str]:
    """The URLs a service logged as listening on."""
    return re.findall(rf"{service} listening on (\S+)", log)
