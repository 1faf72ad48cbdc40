"""Listeners a reload rebinds (issue 16): new addresses first, then the removed ones shut.

A component names the listeners a configuration wants by config key and address;
:meth:`Rebinding.apply` opens the new ones before touching anything, so that a port
that cannot be bound refuses the whole reload with nothing changed, then stops the
removed ones accepting. What they accepted goes on until it ends: only the listening
sockets close.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any, Generic, Protocol, TypeVar

from heron.config import ListenAddress
from heron.errors import ListenError, listen_error
from heron.handoff import Handoff, accept_forever, listening_sockets

__all__ = ["Accepting", "Rebinding", "Where"]

log = logging.getLogger(__name__)

Where = tuple[str, ListenAddress]
"""A listener's config key (``xmpp.listen``) and address."""


class Bindable(Protocol):
    def bind(self) -> None:
        """Open the listening sockets now (OSError if they cannot be)."""

    async def start(self) -> None:
        """Accept on them."""

    def close_listener(self) -> None:
        """Accept no more; connections accepted go on."""


L = TypeVar("L", bound=Bindable)


class Rebinding(Generic[L]):
    """One component's open listeners by :data:`Where`."""

    def __init__(self, service: str) -> None:
        self._service = service
        self.open: dict[Where, L] = {}
        self._starting: set[asyncio.Task[None]] = set()

    async def start(self, wanted: Mapping[Where, Callable[[], L]]) -> None:
        """Open what ``wanted`` names (ListenError for the first that cannot be)."""
        for where, make in wanted.items():
            listener = self.open[where] = _bound(where, make)
            await listener.start()

    def apply(
        self, wanted: Mapping[Where, Callable[[], L]], *, keys: Collection[str] | None = None
    ) -> None:
        """Open the listeners new in ``wanted``, all or none (ListenError), then close the
        ones it no longer names; only those of ``keys`` when given, the others stay."""
        opened: dict[Where, L] = {}
        try:
            for where, make in wanted.items():
                if where not in self.open:
                    opened[where] = _bound(where, make)
        except ListenError:
            for listener in opened.values():
                listener.close_listener()
            raise
        removed = [w for w in self.open if w not in wanted and (keys is None or w[0] in keys)]
        for where in removed:
            self.open.pop(where).close_listener()
            log.info("%s: no longer listening on %s (%s)", self._service, where[1], where[0])
        for where, listener in opened.items():
            self.open[where] = listener
            task = asyncio.get_running_loop().create_task(listener.start())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
            log.info("%s listening on %s (%s)", self._service, where[1], where[0])

    def close(self) -> None:
        """Stop every listener accepting (the component stops)."""
        for listener in self.open.values():
            listener.close_listener()
        self.open.clear()


def _bound(where: Where, make: Callable[[], L]) -> L:
    listener = make()
    try:
        listener.bind()
    except OSError as exc:
        raise listen_error(where[0], where[1], exc) from None
    return listener


class Accepting:
    """TCP listening sockets for one address whose connections are served as the port-443
    mux's are, by ``take`` (``tls``: the service opens with TLS)."""

    __slots__ = ("_address", "_backlog", "_service", "_sockets", "_take", "_tasks", "_tls")

    def __init__(
        self,
        service: str,
        address: ListenAddress,
        take: Handoff,
        *,
        tls: bool,
        backlog: int = 1024,
    ) -> None:
        self._service = service
        self._address = address
        self._take = take
        self._tls = tls
        self._backlog = backlog
        self._sockets: list[socket.socket] = []
        self._tasks: list[asyncio.Task[None]] = []

    def bind(self) -> None:
        if not self._sockets:
            address = self._address
            self._sockets = listening_sockets(address.host, address.port, self._backlog)

    async def start(self) -> None:
        """Accept on the sockets :meth:`bind` opened (none if closed meanwhile)."""
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            accepting: Coroutine[Any, Any, None] = accept_forever(
                sock, self._service, lambda accepted, _peer: self._take(accepted, self._tls)
            )
            self._tasks.append(loop.create_task(accepting))

    def close_listener(self) -> None:
        for task in self._tasks:
            task.cancel()
        for sock in self._sockets:
            sock.close()
        self._tasks, self._sockets = [], []
