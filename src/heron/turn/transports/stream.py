"""TURN over TCP and TLS (RFC 8656 §3.1, RFC 7443): one connection, one 5-tuple."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from heron.stun import StunRemoteError
from heron.stun.framing import StreamFramer
from heron.turn.allocation import Address

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
        self.key: tuple[str, Address, Address] = (kind, ("", 0), ("", 0))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.key = (self._kind, (peer[0], peer[1]), (local[0], local[1]))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._framer.feed(data)
        except StunRemoteError:
            assert self._transport is not None
            self._transport.close()
            return
        for frame in frames:
            self._receiver(frame, self.key, self)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close(self.key)
