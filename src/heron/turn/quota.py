"""Allocation quotas (RFC 8656 §7.2: 486 Allocation Quota Reached), sans-IO.

Quotas count by quota key: the account behind a USERNAME (a REST name's user
too), or ``visitor <network>`` for anonymous credentials. A port reserved by
EVEN-PORT with R counts like an allocation until it is claimed or expires.
"""

from __future__ import annotations

from heron.stun import ErrorCode
from heron.turn.replies import Refusal

__all__ = ["Quotas"]


class Quotas:
    """Allocations and reserved ports held per quota key; 0 means no limit."""

    def __init__(self, per_account: int, total: int) -> None:
        self._per_account = per_account
        self._total = total
        self._held: dict[str, int] = {}
        self._reservations: dict[bytes, tuple[str, float]] = {}
        """RESERVATION-TOKEN -> (quota key, until)."""

    def check(self, account: str, allocations: int) -> None:
        """Raise 486 if ``account``, or the server with ``allocations`` live, is full."""
        if self._total and allocations >= self._total:
            raise Refusal(ErrorCode.ALLOCATION_QUOTA_REACHED)
        if self._per_account and self._held.get(account, 0) >= self._per_account:
            raise Refusal(ErrorCode.ALLOCATION_QUOTA_REACHED)

    def count(self, account: str, change: int) -> None:
        """``account`` opened (+1) or closed (-1) an allocation or a reservation."""
        held = self._held.get(account, 0) + change
        if held > 0:
            self._held[account] = held
        else:
            self._held.pop(account, None)

    def reserve(self, token: bytes, account: str, until: float) -> None:
        self._reservations[token] = (account, until)
        self.count(account, 1)

    def claim(self, token: bytes) -> None:
        """The reserved port becomes an allocation, which counts for itself."""
        held = self._reservations.pop(token, None)
        if held is not None:
            self.count(held[0], -1)

    def expire(self, now: float) -> None:
        for token in [t for t, (_, until) in self._reservations.items() if until < now]:
            self.count(self._reservations.pop(token)[0], -1)
