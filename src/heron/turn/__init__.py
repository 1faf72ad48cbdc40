"""TURN (RFC 8656, RFC 6156, RFC 6062) and NAT discovery (RFC 5780): what coturn does.

The sans-IO core is :mod:`heron.turn.core` (allocations, permissions, channels)
with :mod:`~heron.turn.allocation`, :mod:`~heron.turn.auth` (long-term
credentials, with :mod:`~heron.turn.nonce`), :mod:`~heron.turn.discovery`
(Binding, RFC 5780), :mod:`~heron.turn.tcp_connections` (RFC 6062),
:mod:`~heron.turn.quota`, :mod:`~heron.turn.peers` and :mod:`~heron.turn.replies`;
:mod:`heron.turn.server` and :mod:`heron.turn.transports` are the asyncio
adapter around it.
"""

from heron.turn.auth import Credentials
from heron.turn.core import TurnCore, TurnPolicy
from heron.turn.peers import PeerPolicy
from heron.turn.replies import Reply

__all__ = ["Credentials", "PeerPolicy", "Reply", "TurnCore", "TurnPolicy"]
