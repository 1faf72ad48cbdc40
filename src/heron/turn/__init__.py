"""TURN (RFC 8656, RFC 6156, RFC 6062) and NAT discovery (RFC 5780): what coturn does.

The sans-IO core is :mod:`heron.turn.core` with :mod:`~heron.turn.allocation`,
:mod:`~heron.turn.nonce` and :mod:`~heron.turn.peers`; :mod:`heron.turn.server`
and :mod:`heron.turn.transports` are the asyncio adapter around it.
"""

from heron.turn.core import Credentials, Reply, TurnCore, TurnPolicy
from heron.turn.peers import PeerPolicy

__all__ = ["Credentials", "PeerPolicy", "Reply", "TurnCore", "TurnPolicy"]
