"""Sockets the main process binds for its TURN workers, and the workers' "ready".

With ``turn.workers`` > 1 the UDP listeners are SO_REUSEPORT groups and the kernel
picks a member by a hash of the client's address and port, modulo the group's size.
A group that grows while clients are relaying moves some of them to a member that
holds none of their allocations: every ChannelData they send is then dropped (this
is where ``bench.turn`` lost 4 % of its packets). So the main process binds every
member of each group at once, before the first datagram, and each worker inherits
its own (``pass_fds``); the main process says it is serving only once every worker
has said it is, through a pipe.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
from collections.abc import Mapping, Sequence

__all__ = [
    "PARENT_ENV",
    "READY_ENV",
    "WORKER_ENV",
    "SOCKETS_ENV",
    "follow_parent",
    "hand_out",
    "inherited_socket",
    "tell_ready",
    "wait_ready",
    "worker_environment",
    "worker_index",
]

SOCKETS_ENV = "HERON_INHERITED_SOCKETS"
"""JSON object: listener name (``udp://host:port``) to the file descriptor bound for it."""
WORKER_ENV = "HERON_WORKER_INDEX"
"""A worker's number among its service's processes, from 1 (the main process is 0)."""
READY_ENV = "HERON_READY_FD"
"""The write end of the pipe on which a worker says it serves, one byte."""
PARENT_ENV = "HERON_PARENT_PID"
"""The main process's pid, which a worker ends with."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def inherited_socket(name: str) -> socket.socket | None:
    """The socket the main process bound for listener ``name`` in this worker, if any."""
    fds = json.loads(os.environ.get(SOCKETS_ENV, "{}"))
    fd = fds.get(name)
    return None if fd is None else socket.socket(fileno=int(fd))


def hand_out(
    name: str, group: Sequence[socket.socket], shares: list[dict[str, socket.socket]]
) -> socket.socket:
    """Keep ``group[0]`` of listener ``name``'s SO_REUSEPORT group here and put member
    ``i`` in ``shares[i - 1]``, what worker ``i`` will inherit; the socket kept."""
    shares.extend({} for _ in range(len(group) - 1 - len(shares)))
    for share, member in zip(shares, group[1:], strict=False):
        share[name] = member
    return group[0]


def worker_environment(
    sockets: Mapping[str, socket.socket], ready_fd: int
) -> tuple[dict[str, str], tuple[int, ...]]:
    """The environment and the descriptors that hand ``sockets`` and the pipe to a worker."""
    fds = {name: sock.fileno() for name, sock in sockets.items()}
    env = {
        **os.environ,
        SOCKETS_ENV: json.dumps(fds),
        READY_ENV: str(ready_fd),
        PARENT_ENV: str(os.getpid()),
    }
    return env, (*fds.values(), ready_fd)


def worker_index() -> int:
    """This process's number among its service's processes: 0 in the main process."""
    return int(os.environ.get(WORKER_ENV, "0"))


def follow_parent() -> None:
    """In a worker: be sent SIGTERM when the main process ends, however it ends.

    A main process killed with SIGKILL (or by the OOM killer) cannot stop its workers,
    and one left behind would go on serving its share of the sockets with a
    configuration nothing reloads and a control socket nobody answers; a restarted
    heron would then share its ports with it. Linux's PR_SET_PDEATHSIG does it; the
    parent may already be gone by the time it is set, hence the check after it.
    """
    parent = os.environ.get(PARENT_ENV)
    if parent is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


def tell_ready() -> None:
    """In a worker: say that every listener is being read (nothing in the main process)."""
    fd = os.environ.pop(READY_ENV, None)
    if fd is not None:
        os.write(int(fd), b"r")
        os.close(int(fd))


async def wait_ready(fd: int, count: int, timeout: float) -> int:
    """Read ``count`` ready bytes from ``fd`` (or its end: every worker gone); how many came.

    Closes ``fd``. Bounded by ``timeout``: a worker that hangs must not stop the rest.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    heard = 0

    def readable() -> None:
        nonlocal heard
        try:
            chunk = os.read(fd, 64)
        except BlockingIOError:
            return
        heard += len(chunk)
        if (not chunk or heard >= count) and not done.done():
            done.set_result(None)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return heard
