"""Where a message came from, and the way back to it (RFC 3261 §18.2.2, RFC 5626 flows).

Every connection (TCP, TLS, WebSocket) and every UDP source is a *flow*
with a token. A registration remembers the token, so a request for a user
behind NAT, or on a WebSocket, goes back over the very connection the user
registered from.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from heron.sip.errors import BadRequest, SipError
from heron.sip.message import Response
from heron.sip.parser import Event

__all__ = ["Elsewhere", "Flow", "FlowTable", "Receiver", "Source", "answer"]


@dataclass(frozen=True, slots=True)
class Source:
    """A received message's origin: transport, address, and the flow to answer on."""

    transport: str
    """"udp", "tcp", "tls", "ws" or "wss"."""
    host: str
    port: int
    flow: str
    """Token of the connection (or UDP socket and address) it arrived on."""
    local_host: str
    local_port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


class Flow(Protocol):
    """One way to send: a connection, or a UDP socket with a fixed remote address."""

    token: str
    transport: str

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


Receiver = Callable[[Event, Source], None]


class Elsewhere(Protocol):
    """The flows other SIP processes hold (``sip.workers``, nodes sharing Redis)."""

    def holds(self, token: str) -> bool: ...

    def to(self, transport: str, host: str, port: int) -> Flow | None: ...


class FlowTable:
    """Live flows by token and by remote (transport, host, port), for connection reuse."""

    def __init__(self, suffix: str = "", elsewhere: Elsewhere | None = None) -> None:
        """``suffix`` ends every token: which process holds the flow, when several serve;
        ``elsewhere`` knows the flows other processes hold."""
        self._suffix = suffix
        self._elsewhere = elsewhere
        self._by_token: dict[str, Flow] = {}
        self._by_remote: dict[tuple[str, str, int], Flow] = {}
        self._counter = itertools.count(1)

    def token(self, transport: str) -> str:
        return f"{transport}-{next(self._counter)}{self._suffix}"

    def add(self, flow: Flow, remote: tuple[str, str, int]) -> None:
        self._by_token[flow.token] = flow
        self._by_remote[remote] = flow

    def remove(self, flow: Flow, remote: tuple[str, str, int]) -> None:
        self._by_token.pop(flow.token, None)
        if self._by_remote.get(remote) is flow:
            del self._by_remote[remote]

    def get(self, token: str) -> Flow | None:
        return self._by_token.get(token)

    def held(self, token: str) -> bool:
        """Whether the flow is open, here or in another SIP process (``sip.workers``)."""
        return token in self._by_token or (
            self._elsewhere is not None and self._elsewhere.holds(token)
        )

    def to(self, transport: str, host: str, port: int) -> Flow | None:
        """The flow to that address: ours, or one another process holds (sending on it
        hands the bytes to that process)."""
        flow = self._by_remote.get((transport, host, port))
        if flow is None and self._elsewhere is not None:
            return self._elsewhere.to(transport, host, port)
        return flow

    def here(self, transport: str, host: str, port: int) -> Flow | None:
        """The flow to that address if this process holds it."""
        return self._by_remote.get((transport, host, port))

    def close_all(self) -> None:
        for flow in list(self._by_token.values()):
            flow.close()
        self._by_token.clear()
        self._by_remote.clear()

    def __len__(self) -> int:
        return len(self._by_token)


def answer(error: BadRequest, host: str, port: int) -> bytes:
    """The bytes of the stateless answer to a request that failed to parse, its top Via
    stamped with where it came from (RFC 3261 §8.2.7, §18.2.1); nothing when even that
    cannot be built."""
    try:
        return Response.from_error(error, source=(host, port)).encode()
    except SipError:
        return b""
