"""CPU per allocation of heron's TURN path in one process, without clients or a second core.

``bench.turn``'s burst measures the whole server while aioice clients share its
two cores, so its figure moves by tens of percent from run to run on a loaded
machine. This driver takes the clients out: it encodes, up front, the three
requests of an allocation's life exactly as aioice sends them (an Allocate
without credentials, the Allocate signed with the long-term key after the 401,
a Refresh with LIFETIME 0), for as many 5-tuples as it needs, then times only
what the server does with them. That is the server's own path for a datagram
(``TurnComponent._stun``: decode, USERNAME to keys from the cache, the core)
with real relay sockets bound on 127.0.0.1 in the bench's port range on a
uvloop loop, and each reply handed to a client link that only counts it. The
loop turns once a round, not between requests, so what libuv does on its next
turn (the relays' ``epoll_ctl`` calls), the loop's dispatch and the sockets'
``recvfrom``/``sendto`` are left out: this is the cost of the Python path.

Run from the repository root, alternating old and new code in one session::

    .venv/bin/python -m bench.turn.alloc_cpu            # 5 rounds of 3,000 allocations
    .venv/bin/python -m bench.turn.alloc_cpu --profile  # cProfile of one round, by own time
    git archive OLD src | tar -x -C /tmp/old      # older code, run by the same driver:
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.turn.alloc_cpu

Each round prints the CPU time (user + system of this process) per allocation.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import uvloop

from heron.stun import (
    Attribute,
    Lifetime,
    Message,
    MessageClass,
    Method,
    Nonce,
    Realm,
    RequestedTransport,
    Username,
)
from heron.turn.adapters.keys import turn_account
from heron.turn.allocation import ClientKey
from heron.turn.auth import Credentials
from heron.turn.core import TurnCore, TurnPolicy
from heron.turn.nonce import NonceIssuer
from heron.turn.peers import PeerPolicy
from heron.turn.transports.relays import RelaySockets

REALM = "bench.heron"
USER, PASSWORD, DOMAIN = "bench", "bench-password", "bench.heron"
SERVER = ("127.0.0.1", 3478)
CLIENT_HOST = "127.0.0.1"


class _Counting:
    """A client link that counts the bytes it was asked to send (UDP: nothing to do)."""

    stream = False

    def __init__(self) -> None:
        self.sent = 0

    def send(self, data: bytes) -> None:
        self.sent += len(data)


def _aioice_request(method: Method, lifetime: int, key: bytes | None, nonce: str | None) -> bytes:
    """One request as aioice builds it: LIFETIME first, REQUESTED-TRANSPORT for an
    Allocate, then USERNAME, NONCE, REALM, MESSAGE-INTEGRITY and FINGERPRINT if signed."""
    attributes: list[Attribute] = [Lifetime(lifetime)]
    if method is Method.ALLOCATE:
        attributes.append(RequestedTransport())
    if key is not None and nonce is not None:
        attributes += [Username(USER), Nonce(nonce), Realm(REALM)]
    message = Message(method, MessageClass.REQUEST, os.urandom(12), tuple(attributes))
    return message.encode(key, fingerprint=key is not None)


def _lives(count: int, nonce: str, key: bytes) -> list[tuple[ClientKey, list[bytes]]]:
    """``count`` allocation lives, each on its own client port."""
    lives = []
    for index in range(count):
        client: ClientKey = ("udp", (CLIENT_HOST, 10_000 + index), SERVER)
        lives.append(
            (
                client,
                [
                    _aioice_request(Method.ALLOCATE, 600, None, None),
                    _aioice_request(Method.ALLOCATE, 600, key, nonce),
                    _aioice_request(Method.REFRESH, 0, key, nonce),
                ],
            )
        )
    return lives


def _server_path(
    core: TurnCore, credentials: Credentials, clock: Callable[[], float]
) -> Callable[[bytes, ClientKey, _Counting], None]:
    """``TurnComponent._stun`` for a worker-less server whose key cache holds the user."""
    cache = {credentials.username: credentials}

    def receive(data: bytes, key: ClientKey, client: _Counting) -> None:
        message = Message.decode(data)
        username = message.find(Username)
        account = None if username is None else turn_account(username.value, DOMAIN)
        keys = None if username is None else cache.get(username.value)
        reply = core.handle(message, key, client, keys, clock(), account)
        if reply is not None:
            client.send(reply.data)

    return receive


async def _rounds(rounds: int, count: int, profile: bool, sort: str) -> None:
    loop = asyncio.get_running_loop()
    relays = RelaySockets(loop, {4: IPv4Address("127.0.0.1")}, (24000, 31999), clock=time.monotonic)
    policy = TurnPolicy(realm=REALM, user_quota=0, total_quota=0)
    nonces = NonceIssuer(os.urandom(32))
    peers = PeerPolicy(allowed=[], denied=[], own_addresses=[], own_ports=set())
    core = TurnCore(policy, relays, nonces, peers)
    key = hashlib.md5(f"{USER}:{REALM}:{PASSWORD}".encode()).digest()
    credentials = Credentials(USER, key, hashlib.sha256(b"unused").digest())
    receive = _server_path(core, credentials, time.monotonic)
    nonce = nonces.issue(CLIENT_HOST, time.monotonic())
    for number in range(rounds):
        lives = _lives(count, nonce, key)
        client = _Counting()
        profiler = cProfile.Profile() if profile else None
        start = os.times()
        if profiler is not None:
            profiler.enable()
        for address, requests in lives:
            for data in requests:
                receive(data, address, client)
        if profiler is not None:
            profiler.disable()
        end = os.times()
        if core.allocations:
            raise SystemExit(f"{len(core.allocations)} allocations left: a request failed")
        cpu = (end.user + end.system) - (start.user + start.system)
        print(f"round {number + 1}: {cpu / count * 1e6:.1f} µs CPU per allocation")  # noqa: T201
        if profiler is not None:
            pstats.Stats(profiler).sort_stats(sort).print_stats(45)
            return
        await asyncio.sleep(0)  # let the loop run its removed readers' bookkeeping


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.turn.alloc_cpu", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--allocations", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="cProfile one round")
    parser.add_argument("--sort", default="tottime", help="profile order (default tottime)")
    options = parser.parse_args()
    uvloop.run(_rounds(options.rounds, options.allocations, options.profile, options.sort))


if __name__ == "__main__":
    main()
