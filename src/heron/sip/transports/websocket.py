"""SIP over WebSocket (RFC 7118) at /sip on the web port, for browsers (JsSIP, SIP.js).

Each WebSocket message is one SIP message, framed like a UDP datagram
(RFC 7118 §5); the connection is a flow like a TCP one, so calls to a
browser go back over the socket it registered from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from heron.component import uncounted_client
from heron.sip.errors import BadRequest, SipRemoteError
from heron.sip.parser import MessageLimits, parse_datagram
from heron.sip.transports.flows import FlowTable, Receiver, Source, answer
from heron.sip.transports.guard import StreamGuard

__all__ = ["WebSocketFlow", "websocket_handler"]

log = logging.getLogger(__name__)

_QUEUE_LIMIT = 256
"""Messages waiting for a slow browser before its flow is closed."""


class WebSocketFlow:
    def __init__(self, token: str, transport: str, socket: web.WebSocketResponse) -> None:
        self.token = token
        self.transport = transport
        self._socket = socket
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_LIMIT)
        self.writer = asyncio.create_task(self._write())

    def send(self, data: bytes) -> None:
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self.writer.cancel()

    async def _write(self) -> None:
        try:
            while (data := await self._queue.get()) is not None:
                # SIP is text; RFC 7118 §5.1 lets either frame type carry it.
                await self._socket.send_str(data.decode("utf-8", "surrogateescape"))
        except ConnectionError:
            # The browser went without a close frame (a closed tab): no one to tell.
            return
        await self._socket.close()


def websocket_handler(
    receiver: Receiver, flows: FlowTable, limits: MessageLimits, guard: StreamGuard | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler speaking the ``sip`` WebSocket subprotocol (RFC 7118 §4), each
    connection held to ``guard`` (see :mod:`heron.sip.transports.guard`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        # The web listener counted the connection already, but one a trusted proxy relays.
        ip = uncounted_client(request) if guard is not None else None
        if guard is not None and ip is not None and not guard.connections.open(ip, "sip"):
            return web.Response(status=503, text="too many connections from your address\n")
        try:
            return await serve(request)
        finally:
            if guard is not None and ip is not None:
                guard.connections.close(ip)

    async def serve(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(protocols=("sip",), max_msg_size=limits.max_message_size)
        try:
            await socket.prepare(request)
        except ConnectionError:  # the browser left during the upgrade (a closed tab)
            return socket
        if socket.ws_protocol != "sip":
            await socket.close(code=1002, message=b"subprotocol sip required")
            return socket
        transport = "wss" if request.secure else "ws"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        host, port = (peer[0], peer[1]) if peer else ("", 0)
        local = request.transport.get_extra_info("sockname") if request.transport else None
        local_host, local_port = (local[0], local[1]) if local else ("", 0)
        flow = WebSocketFlow(flows.token(transport), transport, socket)
        remote = (transport, host, port)
        flows.add(flow, remote)
        source = Source(transport, host, port, flow.token, local_host, local_port)
        spoke = False
        try:
            while True:
                try:
                    message = await socket.receive(timeout=_deadline(guard, spoke))
                except TimeoutError:
                    assert guard is not None
                    if spoke and guard.carries(flow.token):
                        continue  # a registration's flow stays while the binding lives
                    why = (
                        f"silent for {guard.idle_timeout:g} s"
                        if spoke
                        else (f"no SIP message in {guard.handshake_timeout:g} s")
                    )
                    guard.report(transport, request.remote or host, why)
                    break
                if message.type == WSMsgType.TEXT:
                    data = message.data.encode("utf-8", "surrogateescape")
                elif message.type == WSMsgType.BINARY:
                    data = message.data
                else:
                    break
                try:
                    event = parse_datagram(data, limits)
                except BadRequest as error:
                    if answer_data := answer(error, host, port):
                        flow.send(answer_data)
                    continue
                except SipRemoteError:
                    continue
                spoke = True
                receiver(event, source)
        finally:
            flows.remove(flow, remote)
            flow.close()
        return socket

    return handle


def _deadline(guard: StreamGuard | None, spoke: bool) -> float | None:
    if guard is None:
        return None
    return guard.idle_timeout if spoke else guard.handshake_timeout
