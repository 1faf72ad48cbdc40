"""SIP over UDP (RFC 3261 §18): one datagram, one message."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from heron.sip.errors import BadRequest, SipRemoteError
from heron.sip.parser import MessageLimits, parse_datagram
from heron.sip.transports.flows import Receiver, Source, answer

__all__ = ["SipDatagrams", "UdpFlow"]

log = logging.getLogger(__name__)


class UdpFlow:
    """Sending to one remote address from one UDP listener."""

    transport = "udp"

    def __init__(self, socket: SipDatagrams, host: str, port: int) -> None:
        self._socket = socket
        self.remote = (host, port)
        self.token = socket.token(host, port)

    def send(self, data: bytes) -> None:
        self._socket.sendto(data, self.remote)

    def close(self) -> None:
        """A UDP flow has nothing to close."""


class SipDatagrams(asyncio.DatagramProtocol):
    """A UDP listener: parses each datagram and hands it to ``receiver``."""

    def __init__(self, receiver: Receiver, limits: MessageLimits) -> None:
        self._receiver = receiver
        self._limits = limits
        self._transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)
        self._token = "udp::0:"
        """The start of every :class:`UdpFlow` token of this socket."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = (host, port)
        self._token = f"udp:{host}:{port}:"

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(cast(int, addr[1]))
        try:
            event = parse_datagram(data, self._limits)
        except BadRequest as error:
            log.debug("udp %s:%d: %s: %s", host, port, error.reason, error.detail)
            if data := answer(error, host, port):
                self.sendto(data, (host, port))
            return
        except SipRemoteError:
            return  # unanswerable: dropped (RFC 3261 §18.3)
        self._receiver(event, Source("udp", host, port, self.token(host, port), *self.local))

    def token(self, host: str, port: int) -> str:
        """The token of the flow to ``host``:``port`` from this socket."""
        return f"{self._token}{host}:{port}"

    def sendto(self, data: bytes, remote: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, remote)

    def flow(self, host: str, port: int) -> UdpFlow:
        return UdpFlow(self, host, port)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)  # ICMP unreachable for a past datagram

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
