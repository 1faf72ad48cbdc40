"""SIP over TCP and TLS (RFC 3261 §18.3): Content-Length framing, keep-alives, one flow each.

A connection a peer opens is held to :class:`heron.sip.transports.guard.StreamGuard`
(connections per source, a first-message deadline, an idle timeout); one heron opens
only to the idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from heron.sip.errors import BadRequest, SipRemoteError
from heron.sip.parser import PONG, MessageLimits, Ping, StreamFramer
from heron.sip.transports.flows import Receiver, Source, answer
from heron.sip.transports.guard import StreamGuard

__all__ = ["SipStream"]

log = logging.getLogger(__name__)


class SipStream(asyncio.Protocol):
    """One TCP or TLS connection, accepted or opened by heron."""

    def __init__(
        self,
        transport: str,
        token: str,
        receiver: Receiver,
        limits: MessageLimits,
        on_open: Callable[[SipStream], None],
        on_close: Callable[[SipStream], None],
        guard: StreamGuard | None = None,
        *,
        accepted: bool = True,
    ) -> None:
        """``accepted``: the peer opened it (counted, with a first-message deadline)."""
        self.transport = transport
        self.token = token
        self._receiver = receiver
        self._framer = StreamFramer(limits)
        self._on_open = on_open
        self._on_close = on_close
        self._stream: asyncio.Transport | None = None
        self.remote: tuple[str, str, int] = (transport, "", 0)
        self._local: tuple[str, int] = ("", 0)
        self._guard = guard
        self._accepted = accepted
        self._counted = False
        self._open = False
        self._heard = False
        """Bytes arrived since the last check (one store per read: no per-packet work)."""
        self._spoke = False
        """A whole SIP message arrived."""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._stream = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.remote = (self.transport, host, port)
        self._local = transport.get_extra_info("sockname")[:2]
        guard = self._guard
        if guard is not None and self._accepted:
            if not guard.connections.open(host, "sip"):
                self._stream.abort()  # the limiter logged it
                return
            self._counted = True
        self._open = True
        self._on_open(self)
        if guard is not None:
            loop = asyncio.get_running_loop()
            if self._accepted:
                self._timer = loop.call_later(guard.handshake_timeout, self._handshake_over)
            else:
                self._wait_idle()

    def _handshake_over(self) -> None:
        assert self._guard is not None
        if not self._spoke:
            timeout = self._guard.handshake_timeout
            self._guard.report(self.transport, self.remote[1], f"no SIP message in {timeout:g} s")
            self.abort()
            return
        self._wait_idle()

    def _wait_idle(self) -> None:
        assert self._guard is not None
        self._heard = False
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.idle_timeout, self._idle_over)

    def _idle_over(self) -> None:
        guard = self._guard
        assert guard is not None
        if not self._heard and not guard.carries(self.token):
            guard.report(self.transport, self.remote[1], f"silent for {guard.idle_timeout:g} s")
            self.abort()
            return
        self._wait_idle()

    def data_received(self, data: bytes) -> None:
        self._heard = True
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
            self._spoke = True
            source = Source(self.transport, host, port, self.token, *self._local)
            self._receiver(event, source)

    def send(self, data: bytes) -> None:
        if self._stream is not None and not self._stream.is_closing():
            self._stream.write(data)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def abort(self) -> None:
        """Close at once, unsent data dropped: a peer the guard gave up on."""
        if self._stream is not None:
            self._stream.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._counted:
            assert self._guard is not None
            self._guard.connections.close(self.remote[1])
        if self._open:
            self._on_close(self)
