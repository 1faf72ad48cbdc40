"""Password guessing, slowed down per account and per source across every protocol, sans-IO.

One account's password opens SIP, XMPP, TURN and the web, so a guess counts
against the account whichever protocol carries it, and against the network it
comes from (an IPv4 address, an IPv6 /64). Past a few free failures each key
gets a growing wait, doubling up to a ceiling, during which its attempts are
refused unchecked; nothing is locked for good. A stranger guessing a name can
thus delay that user's logins from new places, but not from the places that
user already logged in from: a network that proved an account's password
recently (a known device) is exempt from that account's wait, though never
from its own. Sessions, registrations and allocations already made are never
touched.

Keys are the account address as the account store spells it, so ``Roland``
over SIP, ``roland@DOM.`` on the web and ``1700000000:roland`` over TURN all
count as ``roland@dom``: see :func:`account_key`. Every caller passes ``now`` as
Unix time (``time.time()``, which TURN workers share with the main process), so
that one clock orders every protocol's guesses.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["BASE_WAIT", "FORGET", "REMEMBER", "GuessThrottle", "account_key", "network_key"]

BASE_WAIT = 1.0
"""Seconds of the first wait past the free failures; each failure more doubles it."""
FORGET = 900.0
"""Seconds without a failure after which a key's count starts again."""
REMEMBER = 30 * 86_400.0
"""Seconds a network that proved an account's password stays a known device of it."""


def account_key(local: str, domain: str) -> str:
    """The one spelling of an account for counting: lower case, no trailing dot."""
    return f"{local.lower()}@{domain.lower().rstrip('.')}"


def network_key(ip: str, ipv6_prefix: int = 64) -> str:
    """The network a source address counts in: itself for IPv4 (and IPv4-mapped
    IPv6), its /``ipv6_prefix`` for IPv6, since one host often holds a whole /64."""
    try:
        address = ipaddress.ip_address(ip.strip("[]").partition("%")[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


@dataclass(slots=True)
class _Count:
    failures: int
    last: float
    wait_until: float


class _Table:
    """Failures per key, least recently failed first, forgotten after ``forget`` quiet seconds."""

    __slots__ = ("_base", "_capacity", "_ceiling", "_entries", "_forget", "_free")

    def __init__(
        self, free: int, base: float, ceiling: float, forget: float, capacity: int
    ) -> None:
        self._free, self._base, self._ceiling = free, base, ceiling
        self._forget, self._capacity = forget, capacity
        self._entries: OrderedDict[str, _Count] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def wait(self, key: str, now: float) -> float:
        entry = self._entries.get(key)
        return 0.0 if entry is None else max(0.0, entry.wait_until - now)

    def fail(self, key: str, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.last < self._forget or oldest.wait_until > now:
                break
            self._entries.popitem(last=False)
        entry = self._entries.pop(key, None)
        if entry is None or (now - entry.last >= self._forget and entry.wait_until <= now):
            entry = _Count(0, now, now)
        if entry.wait_until <= now:  # guesses refused during a wait do not count
            entry.failures += 1
            over = entry.failures - self._free
            if over > 0:
                entry.wait_until = now + min(self._ceiling, self._base * 2 ** min(over - 1, 32))
        entry.last = now
        self._entries[key] = entry
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self._entries.pop(key, None)

    def retune(self, free: int, ceiling: float) -> None:
        """New thresholds for the next failures; counts already kept stay."""
        self._free, self._ceiling = free, ceiling


class GuessThrottle:
    """Growing waits after failed logins, per account and per source network.

    ``account_free`` failures per account (``source_free`` per network) cost
    nothing; each one after that sets a wait of ``base`` seconds, doubled per
    failure, up to ``account_ceiling`` (``source_ceiling``). Counts are
    forgotten after ``forget`` seconds without a failure. A network that logged
    in to an account is remembered for ``remember`` seconds as a known device
    of it. Every table keeps at most ``capacity`` keys, least recent first out.
    """

    __slots__ = ("_accounts", "_known", "_known_capacity", "_prefix", "_remember", "_sources")

    def __init__(
        self,
        *,
        account_free: int = 5,
        source_free: int = 20,
        base: float = BASE_WAIT,
        account_ceiling: float = 60.0,
        source_ceiling: float = 300.0,
        forget: float = FORGET,
        remember: float = REMEMBER,
        capacity: int = 100_000,
        ipv6_prefix: int = 64,
    ) -> None:
        self._accounts = _Table(account_free, base, account_ceiling, forget, capacity)
        self._sources = _Table(source_free, base, source_ceiling, forget, capacity)
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._known_capacity = capacity
        self._remember = remember
        self._prefix = ipv6_prefix

    def retune(
        self, *, account_free: int, source_free: int, account_ceiling: float, source_ceiling: float
    ) -> None:
        """New thresholds (a reload): the failures counted so far still count."""
        self._accounts.retune(account_free, account_ceiling)
        self._sources.retune(source_free, source_ceiling)

    def __len__(self) -> int:
        return len(self._accounts) + len(self._sources) + len(self._known)

    def wait(self, account: str | None, source: str | None, now: float) -> float:
        """Seconds before a guess for ``account`` from ``source`` may be checked; 0 for now.

        A caller that gets more than 0 refuses the attempt as if the password
        were wrong, without checking it (and without calling :meth:`failure`).
        """
        network = None if source is None else network_key(source, self._prefix)
        waits = [0.0]
        if network is not None:
            waits.append(self._sources.wait(network, now))
        if account is not None and not self._is_known(account, network, now):
            waits.append(self._accounts.wait(account, now))
        return max(waits)

    def failure(self, account: str | None, source: str | None, now: float) -> None:
        """A wrong password (or an unknown account) was tried."""
        if account is not None:
            self._accounts.fail(account, now)
        if source is not None:
            self._sources.fail(network_key(source, self._prefix), now)

    def success(self, account: str, source: str | None, now: float) -> None:
        """The password was right: the account's count ends, and the source network
        becomes a known device of it. The network keeps its own count, or an attacker
        could clear it by logging in to an account of their own."""
        self._accounts.clear(account)
        if source is None:
            return
        key = (account, network_key(source, self._prefix))
        self._known.pop(key, None)
        self._known[key] = now + self._remember
        while len(self._known) > self._known_capacity:
            self._known.popitem(last=False)

    def forget_account(self, account: str) -> None:
        """The password changed or the account went: its known devices proved the old one."""
        for key in [k for k in self._known if k[0] == account]:
            del self._known[key]
        self._accounts.clear(account)

    def _is_known(self, account: str, network: str | None, now: float) -> bool:
        if network is None:
            return False
        until = self._known.get((account, network))
        return until is not None and until > now
