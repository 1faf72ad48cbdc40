"""The port-443 listener: every service on one port, each connection handed over whole.

For each accepted connection the mux peeks at the first bytes (``MSG_PEEK``: nothing
is consumed), lets :class:`heron.mux.Classifier` name the service, and gives the
socket to that service's :data:`heron.handoff.Handoff`. The service then reads the
same bytes again from the kernel and terminates TLS itself, so there is one TLS
termination, no proxy hop and no per-packet cost after the hand-off (what sslh,
in front of separate daemons, cannot offer). Plain HTTP gets a redirect to HTTPS.

A ClientHello split over several segments needs several peeks. Between them the
socket's ``SO_RCVLOWAT`` is set one byte past what was seen, so that epoll wakes the
loop only when more has arrived (or the peer closed) instead of at once, again and
again, for bytes already peeked. A peer that does not name its service within
``mux.first_bytes_timeout`` is closed, and one source network may hold only
``mux.pending_per_source`` connections still unnamed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine, Mapping, Sequence
from functools import partial
from typing import Any

from heron.component import Listener, Services
from heron.config import Config
from heron.connections import ConnectionLimiter
from heron.control import View
from heron.errors import listen_error
from heron.handoff import accept_forever, listening_sockets
from heron.mux.classify import Classifier, Decision, NeedMore, Refuse, Service, Verdict
from heron.mux.redirect import redirect

__all__ = ["MuxComponent", "build_mux", "server_names"]

log = logging.getLogger(__name__)

_BACKLOG = 4096
_DRAIN_LIMIT = 64 * 1024
"""Bytes of a redirected request read and dropped after the answer, so that closing with
unread data does not reset the connection before the client reads the answer."""


def build_mux(services: Services) -> MuxComponent | None:
    return MuxComponent(services) if services.config.mux.listen else None


def server_names(config: Config) -> dict[str, Service]:
    """TLS server names that choose a service when no known ALPN protocol does: the SIP
    domain when it is not the host name (browsers ask for that one), then ``mux.sni``."""
    names: dict[str, Service] = {}
    if config.sip.enabled and config.sip_domain.lower() != config.host_name.lower():
        names[config.sip_domain.lower()] = Service.SIP
    names.update({name.lower(): Service(value) for name, value in config.mux.sni.items()})
    return names


def _counter_name(verdict: Verdict) -> str:
    return f"{verdict.service.value.replace('-', '_')}_{'tls' if verdict.tls else 'tcp'}"


class MuxComponent:
    """The ``mux.listen`` TCP sockets; their UDP twins are TURN's (:mod:`heron.turn.server`)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._settings = services.config.mux
        self._pending = ConnectionLimiter(self._settings.pending_per_source)
        self.names = server_names(services.config)
        self.first_bytes_timeout = self._settings.first_bytes_timeout
        self._sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[_Pending] = set()
        self._counters: dict[str, int] = dict.fromkeys(
            ("connections", "pending", "timeouts", "refused", "closed_early", "unserved"), 0
        )
        for service in Service:
            for tls in (False, True):
                self._counters[_counter_name(Verdict(service, tls))] = 0
        self._counters["http_redirected"] = self._counters.pop("web_tcp")

    async def start(self) -> Sequence[Listener]:
        listeners = []
        for address in self._settings.listen:
            try:
                sockets = listening_sockets(address.host, address.port, _BACKLOG)
            except OSError as exc:
                raise listen_error("mux.listen", address, exc) from None
            self._sockets += sockets
            for sock in sockets:
                take = partial(self._take, port=address.port)
                self._spawn(accept_forever(sock, "mux", take))
            listeners.append(Listener("mux", f"tcp://{address}"))
        missing = (
            {s.value for s in Service} - set(self._services.handoffs) - {"xmpp-server", "acme-tls"}
        )
        if missing:
            log.info("mux: no service for %s (off): such connections are closed", sorted(missing))
        return listeners

    def apply(self, config: Config) -> frozenset[str]:
        """Nothing: the port-443 listeners and their classification stay until a restart."""
        return frozenset()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pending in list(self._waiting):
            pending.close()
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def views(self) -> Mapping[str, View]:
        return {"mux.counters": lambda: [dict(self._counters)]}

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, sock: socket.socket, peer: Any, port: int) -> None:
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._counters["connections"] += 1
        if not self._pending.open(ip, "mux"):  # it logs the refusal
            sock.close()
            return
        self._counters["pending"] += 1
        pending = _Pending(self, asyncio.get_running_loop(), sock, ip, port)
        if not pending.decided:
            self._waiting.add(pending)

    def classified(self, pending: _Pending, decision: Decision | None, seen: int) -> None:
        """``pending`` is no longer waiting: hand it over, redirect it or close it."""
        self._forget(pending)
        sock = pending.sock
        if isinstance(decision, Verdict) and decision.service is Service.WEB and not decision.tls:
            self._spawn(self._redirect(sock, seen, pending.port))
        elif not self._hand_off(sock, decision, pending.ip):
            sock.close()

    def expired(self, pending: _Pending) -> None:
        self._forget(pending)
        self._counters["timeouts"] += 1
        timeout = self._settings.first_bytes_timeout
        log.debug("mux: %s named no service within %g s", pending.ip, timeout)
        pending.sock.close()

    def _forget(self, pending: _Pending) -> None:
        self._waiting.discard(pending)
        self._counters["pending"] -= 1
        self._pending.close(pending.ip)

    def _hand_off(self, sock: socket.socket, decision: Decision | None, ip: str) -> bool:
        if decision is None:
            self._counters["closed_early"] += 1
            return False
        if isinstance(decision, Refuse):
            self._counters["refused"] += 1
            log.debug("mux: connection from %s refused: %s", ip, decision.reason)
            return False
        assert isinstance(decision, Verdict)
        handoff = self._services.handoffs.get(decision.service.value)
        if handoff is None:
            self._counters["unserved"] += 1
            return False
        self._counters[_counter_name(decision)] += 1
        handoff(sock, decision.tls)
        return True

    async def _redirect(self, sock: socket.socket, seen: int, port: int) -> None:
        """Plain HTTP: the answer, then what the client still sends is read and dropped,
        all within the deadline once more."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._settings.first_bytes_timeout):
                head = sock.recv(seen)
                answer = redirect(head, self._services.config.host_name, port)
                await loop.sock_sendall(sock, answer)
                self._counters["http_redirected"] += 1
                sock.shutdown(socket.SHUT_WR)
                drained = 0
                while drained < _DRAIN_LIMIT:
                    chunk = await loop.sock_recv(sock, 4096)
                    if not chunk:
                        break
                    drained += len(chunk)
        except (TimeoutError, OSError):
            pass
        finally:
            sock.close()


class _Pending:
    """One connection not yet classified: a reader callback and a deadline, no task.

    Each wake-up peeks at everything the peer sent so far and feeds the classifier what
    is new. While it needs more, ``SO_RCVLOWAT`` is set one byte past what was seen, so
    the level-triggered reader does not fire again for bytes already peeked.
    """

    __slots__ = (
        "_classifier",
        "_fd",
        "_loop",
        "_lowat",
        "_mux",
        "_seen",
        "_timer",
        "_waiting",
        "ip",
        "port",
        "sock",
    )

    def __init__(
        self,
        mux: MuxComponent,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ip: str,
        port: int,
    ) -> None:
        self._mux = mux
        self._loop = loop
        self.sock = sock
        self.ip = ip
        self.port = port
        self._fd = sock.fileno()
        self._classifier = Classifier(mux.names)
        self._seen = 0
        self._lowat = False
        self._timer = loop.call_later(mux.first_bytes_timeout, self._expire)
        self._waiting = False
        # The ClientHello often came with the accept already: no reader to add and remove.
        self._readable()
        if not self.decided:
            loop.add_reader(self._fd, self._readable)
            self._waiting = True

    def close(self) -> None:
        self._stop_waiting()
        self.sock.close()

    def _readable(self) -> None:
        decision = self._classifier.decision
        assert isinstance(decision, NeedMore)
        try:
            data = self.sock.recv(self._seen + decision.at_most, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if len(data) <= self._seen:  # the peer closed before saying what it is
            self._decide(None)
            return
        decision = self._classifier.feed(data[self._seen :])
        self._seen = len(data)
        if isinstance(decision, NeedMore):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, self._seen + 1)
            self._lowat = True
            return
        self._decide(decision)

    def _decide(self, decision: Decision | None) -> None:
        self._stop_waiting()
        if self._lowat and decision is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        self._mux.classified(self, decision, self._seen)

    def _expire(self) -> None:
        self._stop_waiting()
        self._mux.expired(self)

    @property
    def decided(self) -> bool:
        """Handed over, closed or timed out: no longer the mux's."""
        return self._timer.cancelled()

    def _stop_waiting(self) -> None:
        self._timer.cancel()
        if self._waiting:
            self._loop.remove_reader(self._fd)
