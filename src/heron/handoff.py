"""Serving a TCP connection another listener accepted: how the port-443 mux hands over.

The mux (:mod:`heron.mux.server`) accepts a connection, peeks at its first bytes
without consuming them and gives the socket to the service they name, in the same
process. The service then runs it exactly as one its own listener accepted: its
protocol, its per-source count and deadlines, and its TLS context, so TLS is
terminated once, by the service, and no byte is copied through a proxy hop.

A component offers this by putting a :data:`Handoff` into ``Services.handoffs``
under the service's name (``turn``, ``sip``, ``xmpp-client``, ``xmpp-server``,
``web``: the values of :class:`heron.mux.Service`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = [
    "AcceptedSockets",
    "Handoff",
    "StreamAccept",
    "accept_forever",
    "listening_sockets",
    "stream_protocol",
]

log = logging.getLogger(__name__)

Handoff = Callable[[socket.socket, bool], None]
"""Serve an accepted, non-blocking ``socket``, which the callee now owns; the flag says
its first bytes are a TLS ClientHello that the service must answer with its context."""


class AcceptedSockets:
    """Brings accepted sockets up as transports of one service's protocol.

    ``loop.connect_accepted_socket`` runs the TLS handshake (within the deadline) before
    the protocol sees the connection; the tasks doing it are kept here, so that they
    are not collected half-way and :meth:`close` can end them when the service stops.
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._tasks: set[asyncio.Task[None]] = set()

    def serve(
        self,
        protocol: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        async def connect() -> None:
            try:
                await asyncio.get_running_loop().connect_accepted_socket(
                    protocol,
                    sock,
                    ssl=context,
                    ssl_handshake_timeout=handshake_timeout if context is not None else None,
                )
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                # A handshake that failed or timed out: the peer's problem, not the server's.
                log.debug("%s: handed-over connection failed in TLS: %s", self._service, exc)
                sock.close()
            except asyncio.CancelledError:
                sock.close()
                raise

        self.spawn(connect())

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking listening TCP sockets for ``host`` (every address it names) and ``port``,
    for listeners that accept connections themselves (the web port, the mux)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


StreamAccept = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def stream_protocol(accept: StreamAccept, limit: int) -> Callable[[], asyncio.BaseProtocol]:
    """What ``asyncio.start_server(accept, limit=limit)`` runs each connection with, for a
    socket accepted elsewhere: services written on asyncio streams (XMPP) take it so."""
    return lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=limit), accept)


async def accept_forever(
    listening: socket.socket, service: str, take: Callable[[socket.socket, Any], None]
) -> None:
    """Accept on ``listening`` until cancelled, giving each socket and its peer address
    to ``take``; a failed accept (out of file descriptors, most likely) lets some go."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            sock, peer = await loop.sock_accept(listening)
        except OSError as exc:
            log.warning("%s: cannot accept a connection: %s", service, exc)
            await asyncio.sleep(0.5)
            continue
        take(sock, peer)
