"""SIP over TCP and TLS (RFC 3261 §18.3): Content-Length framing, keep-alives, one flow each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from heron.sip.errors import BadRequest, SipRemoteError
from heron.sip.parser import PONG, Limits, Ping, StreamFramer
from heron.sip.transports.flows import Receiver, Source, answer

__all__ = ["SipStream"]

log = logging.getLogger(__name__)


class SipStream(asyncio.Protocol):
    """One TCP or TLS connection, accepted or opened by heron."""

    def __init__(
        self,
        transport: str,
        token: str,
        receiver: Receiver,
        limits: Limits,
        on_open: Callable[[SipStream], None],
        on_close: Callable[[SipStream], None],
    ) -> None:
        self.transport = transport
        self.token = token
        self._receiver = receiver
        self._framer = StreamFramer(limits)
        self._on_open = on_open
        self._on_close = on_close
        self._stream: asyncio.Transport | None = None
        self.remote: tuple[str, str, int] = (transport, "", 0)
        self._local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._stream = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.remote = (self.transport, host, port)
        self._local = transport.get_extra_info("sockname")[:2]
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        self._framer.feed(data)
        _, host, port = self.remote
        while True:
            try:
                event = self._framer.next_event()
            except BadRequest as error:
                log.debug(
                    "%s %s:%d: %s: %s", self.transport, host, port, error.reason, error.detail
                )
                if data := answer(error, host, port):
                    self.send(data)
                if error.framing:
                    self.close()
                    return
                continue
            except SipRemoteError as error:
                log.debug("%s %s:%d: %s", self.transport, host, port, error)
                self.close()  # the stream cannot be framed any more
                return
            if event is None:
                return
            if isinstance(event, Ping):
                self.send(PONG)
                continue
            source = Source(self.transport, host, port, self.token, *self._local)
            self._receiver(event, source)

    def send(self, data: bytes) -> None:
        if self._stream is not None and not self._stream.is_closing():
            self._stream.write(data)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(self)
