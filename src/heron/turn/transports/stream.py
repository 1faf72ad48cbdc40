"""TURN over TCP and TLS (RFC 8656 §3.1, RFC 7443): one connection, one 5-tuple.

A connection costs a file descriptor, so each one counts in the connections its
source network may hold over every listener (``limits.connections_per_source``),
must hold an allocation (or become a peer data connection) within
``limits.handshake_timeout``, and without an allocation is closed after
``limits.idle_timeout`` of silence. Checks run on a timer, never per packet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from heron.connections import ConnectionLimiter
from heron.stun import StunRemoteError
from heron.stun.framing import StreamFramer
from heron.turn.allocation import ClientKey
from heron.turn.transports.tcp_relay import PeerLink

__all__ = ["StreamClient", "StreamLimits"]

log = logging.getLogger(__name__)

Receiver = Callable[[bytes, ClientKey, "StreamClient"], None]


@dataclass(slots=True)
class StreamLimits:
    """What every TURN stream connection of one component is held to."""

    connections: ConnectionLimiter
    handshake_timeout: float
    idle_timeout: float
    allocated: Callable[[ClientKey], bool]
    """Whether the connection's 5-tuple holds an allocation."""
    closed: int = field(default=0)
    """Connections closed for want of an allocation or for silence."""

    def report(self, key: ClientKey, why: str) -> None:
        self.closed += 1
        if self.closed == 1 or self.closed % 1000 == 0:
            log.warning(
                "turn: %s connection from %s closed: %s; %d closed so far",
                key[0],
                key[1][0],
                why,
                self.closed,
            )


class StreamClient(asyncio.Protocol):
    """Frames a client's byte stream into STUN messages and ChannelData for ``receiver``.

    A stream that cannot be framed is beyond repair (RFC 8656 §12.5), so
    the connection closes; its allocation goes with it via ``on_close``.
    """

    stream = True

    def __init__(
        self,
        kind: str,
        receiver: Receiver,
        on_close: Callable[[ClientKey], None],
        limits: StreamLimits | None = None,
    ) -> None:
        self._kind = kind
        self._receiver = receiver
        self._on_close = on_close
        self._limits = limits
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._link: PeerLink | None = None
        self._counted = False
        self._heard = False
        """Bytes arrived since the last check (one store per read: no per-packet work)."""
        self._timer: asyncio.TimerHandle | None = None
        self.key: ClientKey = (kind, ("", 0), ("", 0))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.key = (self._kind, (peer[0], peer[1]), (local[0], local[1]))
        limits = self._limits
        if limits is None:
            return
        if not limits.connections.open(peer[0], "turn"):
            self._transport.abort()  # the limiter logged it
            return
        self._counted = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(limits.handshake_timeout, self._handshake_over)

    def _handshake_over(self) -> None:
        """RFC 8656 gives no deadline; a connection that made no allocation (and is no peer
        data connection) by now is holding a descriptor for nothing."""
        assert self._limits is not None and self._transport is not None
        if self._link is not None:
            return
        if not self._limits.allocated(self.key):
            timeout = self._limits.handshake_timeout
            self._limits.report(self.key, f"no allocation within {timeout:g} s")
            self._transport.abort()
            return
        self._wait_idle()

    def _wait_idle(self) -> None:
        assert self._limits is not None
        self._heard = False
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.idle_timeout, self._idle_over)

    def _idle_over(self) -> None:
        assert self._limits is not None and self._transport is not None
        if self._link is not None:
            return
        if not self._heard and not self._limits.allocated(self.key):
            timeout = self._limits.idle_timeout
            self._limits.report(self.key, f"no allocation and silent for {timeout:g} s")
            self._transport.abort()
            return
        self._wait_idle()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        if self._link is not None:
            self._link.write(data)
            return
        try:
            frames = self._framer.feed(data)
        except StunRemoteError:
            assert self._transport is not None
            self._transport.close()
            return
        for index, frame in enumerate(frames):
            self._receiver(frame, self.key, self)
            if self._link is not None:  # a ConnectionBind: the rest is the peer's data
                self._link.write(b"".join(frames[index + 1 :]) + self._framer.rest())
                return

    def pipe(self, link: PeerLink) -> None:
        """After a ConnectionBind (RFC 6062 §5.4) this stream carries raw peer data."""
        assert self._transport is not None
        self._link = link
        link.join(self._transport)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._counted:
            assert self._limits is not None
            self._limits.connections.close(self.key[1][0])
        if self._link is not None:
            self._link.close()
        else:
            self._on_close(self.key)
