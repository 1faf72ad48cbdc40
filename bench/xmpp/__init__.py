"""Benchmark: heron's XMPP server against Prosody (``python -m bench.xmpp``, see ``__main__``).

Five loads, the same for both servers, one server after the other: concurrent
logins (STARTTLS, SCRAM-SHA-1, bind), one-to-one messages between pairs, MUC
fan-out in one room, the memory of idle authenticated connections, and
messages between two domains, each served by its own server of the same kind,
over server-to-server streams (``federation``); on request a sixth, logins as
Conversations does them (``login-modern``: SM, carbons, MAM, PEP). The load client is our own
(``client``); figures are rates, the server's CPU time per unit of work from
``/proc`` (``bench.proc``) and resident memory.

This module holds what the servers (``prosody``, ``heron``) and the runner
share: the domain, the accounts, what a server needs to federate, and the
shape of a running server.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.proc import Address, RunningServer

__all__ = [
    "ADMIN",
    "DOMAIN",
    "MUC_DOMAIN",
    "Account",
    "Address",
    "Deployment",
    "RunningServer",
    "S2s",
    "Served",
    "Server",
]

DOMAIN = "localhost"
"""The XMPP domain (VirtualHost) of both servers."""
MUC_DOMAIN = f"conference.{DOMAIN}"
"""The group-chat component: heron's default name, Prosody's ``Component "..." "muc"``."""
ADMIN = f"admin@{DOMAIN}"
"""Named as administrator in both configurations, as the handbook does; never logs in."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    password: str
    domain: str = DOMAIN

    @property
    def jid(self) -> str:
        return f"{self.name}@{self.domain}"


@dataclass(frozen=True, slots=True)
class S2s:
    """What a server needs to federate on loopback (``federation``): its s2s port, a
    certificate for its domain from the bench's CA, that CA to verify its peer, and the
    name server (port 53) that publishes every domain's SRV and A records."""

    port: int
    certificate: Path
    key: Path
    cafile: Path
    nameserver: str
    resolv_conf: Path
    """``nameserver`` as /etc/resolv.conf names it, for servers that read only that file."""


class Server(Protocol):
    """What the bench needs of either server."""

    name: str
    domain: str

    def prepare(self, accounts: list[Account]) -> None:
        """Certificates, configuration and accounts, once; raises ServerUnavailable."""

    def running(self) -> AbstractContextManager[RunningServer]:
        """A freshly started server, stopped when the block ends."""

    def version(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Served:
    """Started servers as a load sees them: whose CPU to measure (one server, or the two of
    the federation load), and where each domain's users log in."""

    servers: tuple[RunningServer, ...]
    addresses: Mapping[str, Address]


class Deployment(Protocol):
    """What a load runs against: one server alone, or two federating (``Federation``)."""

    @property
    def name(self) -> str: ...

    def prepare(self, accounts: list[Account]) -> None:
        """Every server's set-up, once; raises ServerUnavailable."""

    def running(self) -> AbstractContextManager[Served]:
        """Freshly started servers, stopped when the block ends."""

    def version(self) -> str: ...
