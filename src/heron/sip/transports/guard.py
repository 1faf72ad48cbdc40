"""What a SIP connection is held to: connections per source, a first-message deadline
and an idle timeout (``[limits]``), for TCP, TLS and WebSocket alike.

A connection costs a file descriptor, so each one a peer opens counts in the
connections its source network may hold over every listener
(``limits.connections_per_source``); one over the limit is closed at once. A
connection must carry a whole SIP message within ``limits.handshake_timeout``
and is closed after ``limits.idle_timeout`` without a byte (a CRLF keep-alive,
RFC 5626 §4.4.1, is a byte), unless it is the flow of a live registration: a
phone behind NAT that registered over it is reached over it (RFC 5626 §5.3).
The checks run on a timer per connection, never per packet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from heron.connections import ConnectionLimiter

__all__ = ["StreamGuard"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StreamGuard:
    """The limits of one SIP component's connections, and how many it closed."""

    connections: ConnectionLimiter
    handshake_timeout: float
    idle_timeout: float
    carries: Callable[[str], bool]
    """Whether the flow with this token holds a live registration."""
    closed: int = field(default=0)

    def report(self, transport: str, host: str, why: str) -> None:
        """One log line when the guard closes a connection (then every thousandth)."""
        self.closed += 1
        if self.closed == 1 or self.closed % 1000 == 0:
            log.warning(
                "sip: %s connection from %s closed: %s; %d closed so far",
                transport,
                host,
                why,
                self.closed,
            )
