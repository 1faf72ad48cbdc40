"""A ``sip.listen`` address: UDP and TCP on one port (RFC 3261 §18: a server MUST take
both), opened and closed together so that a reload can move it (:mod:`heron.listeners`).

UDP has no connections to let finish: a removed UDP socket closes at once, and a
transaction still answering through it, or a dialog whose Record-Route names it, loses
what it would have sent or received there (the UA's retransmissions reach a closed
port). New transactions go out of the first UDP socket left.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from heron.config import ListenAddress
from heron.errors import ListenError
from heron.handoff import Handoff
from heron.listeners import Accepting
from heron.sip.transports.udp import SipDatagrams
from heron.udp_listener import bind_udp, report_buffers

__all__ = ["UdpAndTcp"]


class UdpAndTcp:
    """UDP sockets served by ``datagrams`` (each kept in ``udp`` while open) and a TCP
    listener whose connections go to ``take``."""

    __slots__ = ("_address", "_datagrams", "_open", "_sockets", "_tcp", "_udp")

    def __init__(
        self,
        address: ListenAddress,
        datagrams: Callable[[], SipDatagrams],
        take: Handoff,
        udp: list[SipDatagrams],
    ) -> None:
        self._address = address
        self._datagrams = datagrams
        self._udp = udp
        self._tcp = Accepting("sip", address, take, tls=False)
        self._sockets: list[socket.socket] = []
        self._open: list[SipDatagrams] = []

    def bind(self) -> None:
        self._tcp.bind()
        try:
            self._sockets = [bind_udp(self._address, "sip.listen")]
        except ListenError:
            self._tcp.close_listener()
            raise

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            report_buffers("sip", f"udp://{self._address}", sock)
            _, protocol = await loop.create_datagram_endpoint(self._datagrams, sock=sock)
            self._open.append(protocol)
            self._udp.append(protocol)
        await self._tcp.start()

    def close_listener(self) -> None:
        self._tcp.close_listener()
        for sock in self._sockets:
            sock.close()
        for protocol in self._open:
            protocol.close()
            self._udp.remove(protocol)
        self._sockets, self._open = [], []
