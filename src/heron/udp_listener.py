"""Binding a UDP listener with room for bursts, shared by TURN and SIP.

A listener's default receive buffer (``net.core.rmem_default``, 208 KiB here) holds
about 150 small datagrams: a process that is not scheduled for a moment (a busy host,
a garbage collection) finds the rest dropped by the kernel, and a SIP client then
retransmits every dropped request after T1, which doubles the load just when the
server is behind. Each listener therefore asks for :data:`LISTENER_BUFFER`.
"""

from __future__ import annotations

import logging
import socket

from heron.config import ListenAddress
from heron.errors import listen_error

__all__ = ["LISTENER_BUFFER", "bind_udp", "report_buffers"]

log = logging.getLogger(__name__)

LISTENER_BUFFER = 4 << 20
"""Bytes of socket buffer per UDP listener (the kernel caps it at net.core.rmem_max)."""


def bind_udp(address: ListenAddress, key: str, *, reuse_port: bool = False) -> socket.socket:
    """A UDP socket bound to ``address`` with :data:`LISTENER_BUFFER` each way; ``key``
    names the setting in the one-line error when the address cannot be had."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LISTENER_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LISTENER_BUFFER)
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise listen_error(key, address, exc) from None
    return sock


def report_buffers(service: str, name: str, sock: socket.socket) -> None:
    """Log the buffers a listener got; warn when the host's limits cut what we asked for.

    Linux silently caps SO_RCVBUF/SO_SNDBUF at net.core.rmem_max/wmem_max and reports
    twice the size it grants (its bookkeeping overhead), so half of it is compared.
    """
    got = {
        option: sock.getsockopt(socket.SOL_SOCKET, option) // 2
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF)
    }
    log.info(
        "%s: %s buffers: receive %d KiB, send %d KiB",
        service,
        name,
        got[socket.SO_RCVBUF] >> 10,
        got[socket.SO_SNDBUF] >> 10,
    )
    for option, sysctl in ((socket.SO_RCVBUF, "rmem_max"), (socket.SO_SNDBUF, "wmem_max")):
        if got[option] < LISTENER_BUFFER:
            log.warning(
                "%s: %s %s buffer capped at %d KiB by net.core.%s (asked %d KiB): bursts "
                "will be dropped sooner; raise it with sysctl -w net.core.%s=%d",
                service,
                name,
                "receive" if option == socket.SO_RCVBUF else "send",
                got[option] >> 10,
                sysctl,
                LISTENER_BUFFER >> 10,
                sysctl,
                LISTENER_BUFFER,
            )
