"""The UDP listener of several SIP processes (``sip.workers``): who gets a datagram.

The main process binds every member of each UDP listener's SO_REUSEPORT group before
the first datagram and hands one to each worker (:mod:`heron.inherit`), as for TURN.
Instead of the kernel's hash, a classic BPF program on the group picks the member by
the source port modulo the group's size: a phone keeps its worker for as long as its
port, and a test can choose which worker a request meets.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from heron.config import ListenAddress
from heron.errors import ListenError, listen_error
from heron.udp_listener import bind_udp

__all__ = ["bind_udp_group"]

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
_SKF_NET_OFF = -0x100000
"""Classic BPF addresses the network header from here (linux/filter.h)."""
_SOURCE_PORT = {socket.AF_INET: 20, socket.AF_INET6: 40}
"""Where the UDP source port sits past the network header (no IP options, no
IPv6 extension headers: a datagram with them goes to member 0 or a hashed one)."""


def _steer(sock: socket.socket, count: int) -> None:
    """``A = source port; A %= count; return A``: the member the datagram goes to."""
    offset = (_SKF_NET_OFF + _SOURCE_PORT[sock.family]) & 0xFFFFFFFF
    program = [(0x28, 0, 0, offset), (0x94, 0, 0, count), (0x16, 0, 0, 0)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def bind_udp_group(address: ListenAddress, count: int) -> list[socket.socket]:
    """``count`` UDP sockets on ``address``, member ``i`` getting the datagrams whose
    source port modulo ``count`` is ``i``; one plain socket when ``count`` is 1."""
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            group.append(bind_udp(address, "sip.listen", reuse_port=count > 1))
        if count > 1:
            _steer(group[0], count)
    except (ListenError, OSError) as exc:
        for sock in group:
            sock.close()
        if isinstance(exc, ListenError):
            raise
        raise listen_error("sip.listen", address, exc) from None
    return group
