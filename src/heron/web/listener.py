"""The web port's listening sockets, guarded like every other listener of heron.

aiohttp's own site accepts every connection and, under TLS, holds a peer that
never finishes the handshake or never sends a request for as long as it likes.
:class:`GuardedSite` accepts the TCP connection itself and, before anything else:

- counts it against the source in the shared
  :class:`heron.connections.ConnectionLimiter` (``limits.connections_per_source``),
  refusing one over the limit at once (``web.trusted_proxies`` are not counted: all
  their clients share the proxy's address);
- gives it ``limits.handshake_timeout`` seconds to finish TLS and send a first
  whole request and be answered, and each later request as long from its first byte
  to its answer (a slowloris peer sending a header a minute is closed);
- then hands it to aiohttp, whose keep-alive timeout closes it once idle between
  requests. A WebSocket (the answer 101) belongs to its handler from then on: SIP and
  XMPP keep their own deadlines.

Each limit logs one line when it first acts, then one per thousand.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Coroutine, Sequence
from http import HTTPStatus
from ipaddress import IPv4Network, IPv6Network
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from heron.connections import ConnectionLimiter
from heron.handoff import accept_forever, listening_sockets
from heron.web.proxy import is_trusted

__all__ = ["SERVER", "ConnectionGuard", "GuardedSite", "server_header"]

SERVER = "heron"
"""The Server header of every answer."""

log = logging.getLogger(__name__)

Network = IPv4Network | IPv6Network


class ConnectionGuard:
    """What every guarded connection of one web component shares."""

    def __init__(
        self,
        limiter: ConnectionLimiter,
        *,
        deadline: float,
        keepalive: float = 75.0,
        trusted: Sequence[Network] = (),
    ) -> None:
        self.limiter = limiter
        self.deadline = deadline
        self.keepalive = keepalive
        self.trusted = tuple(trusted)
        self.expired = 0
        self._open: dict[asyncio.BaseTransport, _Connection] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp signal: the request is answered, its deadline ends."""
        connection = self._open.get(request.transport) if request.transport else None
        if connection is not None:
            connection.answered(upgraded=response.status == 101)

    def handler(self, server: Server) -> RequestHandler:
        """aiohttp's protocol for one connection, with heron's answers to broken HTTP."""
        options: dict[str, Any] = {"keepalive_timeout": self.keepalive, "access_log": None}
        return _Handler(server, loop=asyncio.get_running_loop(), **options)

    def close_all(self) -> None:
        for connection in list(self._open.values()):
            connection.abort()

    def _expired(self, peer: str) -> None:
        self.expired += 1
        if self.expired == 1 or self.expired % 1000 == 0:
            log.warning(
                "web: connection from %s closed: no request answered within %.0f s "
                "(limits.handshake_timeout); %d closed so far",
                peer,
                self.deadline,
                self.expired,
            )


class _Handler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol, but for what it answers by itself.

    For a request it cannot parse, aiohttp logs "Error handling request" with a
    traceback at ERROR (any client can fill the log so) and answers with the
    parser's own message; for a handler's exception it answers 500. Here: one
    debug line for a malformed request, an error line with the traceback only for
    a handler's exception (a bug of ours), and a body that says only the status.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # A client that leaves in the middle of its body (ConnectionResetError) is no bug.
        if status >= 500 and not isinstance(exc, HttpProcessingError | ConnectionError):
            log.error(
                "web: error answering %s %s from %s",
                request.method,
                _printable(request.path)[:200],
                request.remote,
                exc_info=exc,
            )
        else:
            why = _printable(str(exc or message or ""))[:200]
            log.debug("web: malformed request from %s (%d): %s", request.remote, status, why)
        if request.writer.output_size > 0:  # aiohttp's rule: too late for an answer
            raise ConnectionError("the response was already started")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        response = web.Response(
            status=status,
            text=f"{status} {phrase}\n",
            headers={"Server": SERVER, "Cache-Control": "no-store"},
        )
        response.force_close()
        return response


def _printable(text: str) -> str:
    """``text`` for a log line: control characters (CR, LF) escaped."""
    return text.encode("unicode_escape", "replace").decode("ascii")


async def server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp signal: say "heron", not which Python and aiohttp versions answer."""
    response.headers["Server"] = SERVER


class _Connection(asyncio.Protocol):
    """One accepted connection, past TLS: aiohttp's handler under the request deadline."""

    def __init__(
        self,
        guard: ConnectionGuard,
        handler: RequestHandler,
        peer: str,
        accepted: float,
        lost: asyncio.Future[None],
    ) -> None:
        self._guard = guard
        self._inner = handler
        self._lost = lost
        self._peer = peer
        self._accepted = accepted
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._upgraded = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's is not a subclass
        self._transport = transport
        self._guard._open[transport] = self
        # What is left of the deadline the accept started (TLS took the rest).
        left = self._accepted + self._guard.deadline - self._loop.time()
        self._timer = self._loop.call_later(max(0.0, left), self._expire)
        self._inner.connection_made(transport)

    # --- deadlines ------------------------------------------------------------------

    def _expire(self) -> None:
        self._timer = None
        self._guard._expired(self._peer)
        self.abort()

    def answered(self, *, upgraded: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._upgraded = self._upgraded or upgraded

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # --- to aiohttp -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._timer is None and not self._upgraded:
            # A request begins: it has the deadline to be answered.
            self._timer = self._loop.call_later(self._guard.deadline, self._expire)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._guard._open.pop(self._transport, None)
        if not self._lost.done():
            self._lost.set_result(None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP listener of ``runner`` whose connections go through ``guard``.

    It accepts connections itself, so that a source over its limit is refused
    before any TLS work, and a handshake that never ends is timed from the accept.
    With ``host`` None it opens no socket and serves only the connections the
    port-443 mux hands to :meth:`take`.
    """

    __slots__ = ("_accepting", "_guard", "_host", "_port", "_sockets", "_tasks")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        guard: ConnectionGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self._sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}/"

    def bind(self) -> None:
        """Open the listening sockets now, so that an address in use fails here, where a
        reload can still refuse, rather than in :meth:`start`."""
        if self._host is not None and not self._sockets:
            self._sockets = listening_sockets(self._host, self._port, self._backlog)

    async def start(self) -> None:
        self.bind()
        await super().start()
        for sock in self._sockets:
            accepting = accept_forever(sock, "web", lambda accepted, _: self.take(accepted))
            self._accepting.append(self._spawn(accepting))

    def close_listener(self) -> None:
        """Accept no more (a reload removed the address); connections accepted go on
        until they end or the runner stops."""
        for task in self._accepting:
            task.cancel()
        for sock in self._sockets:
            sock.close()
        self._accepting, self._sockets = [], []

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        await super().stop()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def take(self, sock: socket.socket) -> None:
        """Serve ``sock``, accepted here or handed over by the port-443 mux: count it
        against its source (refused at once over the limit), then TLS and aiohttp."""
        guard = self._guard
        try:
            address = sock.getpeername()
        except OSError:  # reset already
            sock.close()
            return
        peer = str(address[0]) if isinstance(address, tuple) and address else ""
        counted = not is_trusted(peer, guard.trusted)
        if counted and not guard.limiter.open(peer, "web"):
            sock.close()
            return
        self._spawn(self._serve(sock, peer, counted, asyncio.get_running_loop().time()))

    async def _serve(self, sock: socket.socket, peer: str, counted: bool, accepted: float) -> None:
        """TLS (within the deadline), then aiohttp's handler until the connection ends."""
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        lost: asyncio.Future[None] = loop.create_future()
        connection = _Connection(self._guard, self._guard.handler(server), peer, accepted, lost)
        try:
            tls = self._ssl_context
            await loop.connect_accepted_socket(
                lambda: connection,
                sock,
                ssl=tls,
                ssl_handshake_timeout=self._guard.deadline if tls is not None else None,
            )
            await lost
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            # The handshake timeout is a TimeoutError or a ConnectionAbortedError by loop.
            if loop.time() - accepted >= self._guard.deadline:
                self._guard._expired(peer)
            else:
                log.debug("web: connection from %s failed before a request: %s", peer, exc)
            sock.close()
        finally:
            if counted:
                self._guard.limiter.close(peer)
