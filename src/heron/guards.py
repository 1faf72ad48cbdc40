"""The abuse limits every service shares, built once from ``[limits]``.

One :class:`Guards` lives in :class:`heron.component.Services`, so that a
guess over TURN slows the next one over SIP, XMPP or the web, and one source's
connections count over every listener together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heron.accounts.verifier import PasswordVerifier
from heron.config import LimitsSettings
from heron.connections import ConnectionLimiter, ConnectionPolicy
from heron.guesses import GuessThrottle

__all__ = ["SOURCE_CEILING_FACTOR", "Guards"]

SOURCE_CEILING_FACTOR = 5.0
"""A network waits this many times longer than an account at most: it guesses for many."""
_QUEUE_PER_CHECK = 16


@dataclass(frozen=True, slots=True)
class Guards:
    guesses: GuessThrottle = field(default_factory=GuessThrottle)
    verifier: PasswordVerifier = field(default_factory=PasswordVerifier)
    connections: ConnectionLimiter = field(default_factory=lambda: ConnectionLimiter(0))
    policy: ConnectionPolicy = field(default_factory=ConnectionPolicy)

    @classmethod
    def from_settings(cls, limits: LimitsSettings) -> Guards:
        return cls(
            GuessThrottle(**_thresholds(limits)),
            PasswordVerifier(limits.password_checks, limits.password_checks * _QUEUE_PER_CHECK),
            ConnectionLimiter(limits.connections_per_source, exempt=limits.connections_exempt),
            ConnectionPolicy(limits.handshake_timeout, limits.idle_timeout),
        )

    def apply(self, limits: LimitsSettings) -> frozenset[str]:
        """Take new guess thresholds and connection limits (a reload); the keys taken.

        The deadlines and the verifier's pool were copied into every listener and
        thread when they started, so they wait for a restart."""
        self.guesses.retune(**_thresholds(limits))
        self.connections.retune(limits.connections_per_source, limits.connections_exempt)
        return LIVE_LIMITS

    def close(self) -> None:
        self.verifier.close()


LIVE_LIMITS = frozenset(
    f"limits.{key}"
    for key in (
        "account_guesses",
        "source_guesses",
        "guess_wait_max",
        "connections_per_source",
        "connections_exempt",
    )
)


def _thresholds(limits: LimitsSettings) -> dict[str, Any]:
    return {
        "account_free": limits.account_guesses,
        "source_free": limits.source_guesses,
        "account_ceiling": limits.guess_wait_max,
        "source_ceiling": limits.guess_wait_max * SOURCE_CEILING_FACTOR,
    }
