"""The location service's bindings, held in memory and written behind to the store.

Like Kamailio's usrloc in write-back mode (db_mode 2, what WITH_USRLOCDB
sets): a REGISTER is answered from memory, and a crash loses at most what was
not yet flushed, which phones repeat anyway. The server's tasks call
:meth:`BindingCache.flush` and :meth:`BindingCache.sweep` on their schedule;
nothing here waits on a clock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from heron.sip.errors import SipError
from heron.sip.registrar import Binding, LocationStore, lookup_targets
from heron.sip.seal import hostport

__all__ = ["BindingCache"]

log = logging.getLogger(__name__)


class BindingCache:
    """Every binding by address-of-record, and which AORs the store has not seen yet.

    Callers read, change and :meth:`put` an AOR's set with no await in between,
    so REGISTERs for one AOR cannot interleave.
    """

    def __init__(self, store: LocationStore) -> None:
        self._store = store
        self._bindings: dict[str, list[Binding]] = {}
        self._dirty: set[str] = set()
        self._reach: Counter[str] = Counter()
        """``host:port`` of every binding: where a registered phone is (see :meth:`reaches`)."""
        self._flows: Counter[str] = Counter()
        """Flow tokens of every binding: connections that carry a registration."""

    def __len__(self) -> int:
        return sum(len(bindings) for bindings in self._bindings.values())

    async def load(self, now: float) -> list[Binding]:
        """Fill the cache from the store, at start; what it loaded."""
        loaded = await self._store.all(now)
        self.fill(loaded)
        return loaded

    def fill(self, bindings: Iterable[Binding]) -> None:
        """Add ``bindings``, as they are stored already."""
        for binding in bindings:
            self._bindings.setdefault(binding.aor, []).append(binding)
            self._index((binding,), 1)

    def get(self, aor: str) -> list[Binding]:
        """The AOR's bindings, expired ones included until swept."""
        return self._bindings.get(aor, [])

    def put(self, aor: str, bindings: Sequence[Binding]) -> bool:
        """Make ``bindings`` the AOR's whole set; the store gets it at the next flush.
        True when a contact went: the caller should :meth:`write` it through."""
        old = self._bindings.get(aor, ())
        self._index(old, -1)
        self._bindings[aor] = list(bindings)
        self._index(bindings, 1)
        self._dirty.add(aor)
        kept = {b.contact for b in bindings}
        return any(b.contact not in kept for b in old)

    def apply(self, aor: str, bindings: Sequence[Binding]) -> None:
        """Make ``bindings`` the AOR's set as another process wrote it: that process
        writes it to the store, not this one."""
        self._index(self._bindings.get(aor, ()), -1)
        if bindings:
            self._bindings[aor] = list(bindings)
            self._index(bindings, 1)
        else:
            self._bindings.pop(aor, None)

    async def write(self, aor: str) -> None:
        """Store the AOR's set now: a removal must not come back after a crash within the
        write-behind second (a phone unregistered because it was lost or stolen)."""
        self._dirty.discard(aor)
        try:
            await self._store.replace(aor, self._bindings.get(aor, []))
        except Exception as exc:  # noqa: BLE001 - the next flush tries again
            log.warning("sip: cannot store the bindings of %s: %s", aor, exc)
            self._dirty.add(aor)

    def drop(self, aor: str) -> None:
        """Forget the AOR's bindings (its account is gone)."""
        if (dropped := self._bindings.pop(aor, None)) is not None:
            self._index(dropped, -1)
            self._dirty.add(aor)

    def reaches(self, host: str, port: int) -> bool:
        """Whether a binding's phone is at ``host:port``: the address its REGISTER came
        from, or its Contact when that names the same host (a phone on the LAN or on
        loopback, not a Contact pointing somewhere else)."""
        return f"{host.strip('[]').lower()}:{port}" in self._reach

    def carries(self, flow: str) -> bool:
        """Whether a binding was registered over the connection ``flow`` (its token): the
        connection must stay open while the binding lives (RFC 5626 §5.3)."""
        return flow in self._flows

    def _index(self, bindings: Iterable[Binding], change: int) -> None:
        for binding in bindings:
            if flow := binding.received.flow:
                self._flows[flow] += change
                if self._flows[flow] <= 0:
                    del self._flows[flow]
            for point in _points(binding):
                self._reach[point] += change
                if self._reach[point] <= 0:
                    del self._reach[point]

    def live(self, now: float) -> Iterator[Binding]:
        """Every binding a request could reach now, by AOR."""
        for bindings in self._bindings.values():
            yield from lookup_targets(bindings, now)

    async def flush(self) -> None:
        """Write the changed AORs, all in one go; if the store refuses, they are tried
        again next time."""
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        try:
            await self._store.replace_all({aor: self._bindings.get(aor, []) for aor in dirty})
        except Exception as exc:  # noqa: BLE001 - the writer must outlive a bad moment
            log.warning("sip: cannot store the bindings of %d AOR(s): %s", len(dirty), exc)
            self._dirty |= dirty

    async def sweep(self, now: float) -> int:
        """Delete the bindings expired at ``now``, stored and cached; how many were stored."""
        removed = await self._store.sweep(now)
        for aor in list(self._bindings):
            live = [b for b in self._bindings[aor] if not b.is_expired(now)]
            self._index((b for b in self._bindings[aor] if b.is_expired(now)), -1)
            if live:
                self._bindings[aor] = live
            else:
                del self._bindings[aor]
        return removed


def _points(binding: Binding) -> list[str]:
    received = binding.received
    source = f"{received.host.strip('[]').lower()}:{received.port}"
    points = [source]
    try:
        contact = hostport(binding.uri)
    except SipError:
        return points
    if contact is not None and contact != source:
        if contact.rpartition(":")[0] == source.rpartition(":")[0]:
            points.append(contact)
    return points
