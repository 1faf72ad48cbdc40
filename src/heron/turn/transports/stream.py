"""TURN over TCP and TLS (RFC 8656 §3.1, RFC 7443): one connection, one 5-tuple."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from heron.stun import StunRemoteError
from heron.stun.framing import StreamFramer
from heron.turn.allocation import Address
from heron.turn.transports.tcp_relay import PeerLink

__all__ = ["StreamClient"]

Receiver = Callable[[bytes, tuple[str, Address, Address], "StreamClient"], None]


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
        on_close: Callable[[tuple[str, Address, Address]], None],
    ) -> None:
        self._kind = kind
        self._receiver = receiver
        self._on_close = on_close
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._link: PeerLink | None = None
        self.key: tuple[str, Address, Address] = (kind, ("", 0), ("", 0))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.key = (self._kind, (peer[0], peer[1]), (local[0], local[1]))

    def data_received(self, data: bytes) -> None:
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
        if self._link is not None:
            self._link.close()
        else:
            self._on_close(self.key)
