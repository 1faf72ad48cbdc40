"""Benchmark: heron's XMPP server against Prosody (``python -m bench.xmpp``, see ``__main__``).

Four loads, the same for both servers, one server after the other: concurrent
logins (STARTTLS, SCRAM-SHA-1, bind), one-to-one messages between pairs, MUC
fan-out in one room, and the memory of idle authenticated connections. The
load client is our own (``client``); figures are rates, the server's CPU time
per unit of work from ``/proc`` (``bench.proc``) and resident memory.

This module holds what the servers (``prosody``, ``heron``) and the runner
share: the domain, the accounts, and the shape of a running server.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from bench.proc import Address, RunningServer

__all__ = ["ADMIN", "DOMAIN", "MUC_DOMAIN", "Account", "Address", "RunningServer", "Server"]

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

    @property
    def jid(self) -> str:
        return f"{self.name}@{DOMAIN}"


class Server(Protocol):
    """What the bench needs of either server."""

    name: str

    def prepare(self, accounts: list[Account]) -> None:
        """Certificates, configuration and accounts, once; raises ServerUnavailable."""

    def running(self) -> AbstractContextManager[RunningServer]:
        """A freshly started server, stopped when the block ends."""

    def version(self) -> str: ...
