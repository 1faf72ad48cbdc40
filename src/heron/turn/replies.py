"""What the TURN core answers with: the :class:`Reply` the server sends, the
:class:`Refusal` a check raises, and the signing every answer shares.

Kept apart so that authentication, NAT discovery and TCP relaying answer
the same way as the core without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.stun import Attribute, Fingerprint, Message
from heron.turn.allocation import Address, Relay

__all__ = ["ConnectOrder", "Refusal", "Reply", "encode_answer"]


@dataclass(frozen=True, slots=True)
class ConnectOrder:
    """Connect to ``peer`` from the TCP relay, then send ``Reply.data`` or ``failure``."""

    connection_id: int
    relay: Relay
    peer: Address
    failure: bytes
    """The 447 to send if the TCP connection cannot be made (RFC 6062 §5.2)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The bytes to answer with and, for the few answers that need it, what else to do.

    Only a Binding answered for RFC 5780 sets ``source`` or ``destination``, only
    a Connect ``connect`` and only a ConnectionBind ``bind`` (RFC 6062); any other
    answer is just ``data``, sent back the way the request came.
    """

    data: bytes
    source: Address | None = None
    """Listener to send from when not the one the request came to (RFC 5780 CHANGE-REQUEST)."""
    destination: Address | None = None
    """Where to send when not back to the client's address (RFC 5780 RESPONSE-PORT)."""
    connect: ConnectOrder | None = None
    """Set for a Connect: the TCP connection the server must open first (RFC 6062)."""
    bind: int | None = None
    """Set for a ConnectionBind: after the reply this stream carries that connection's data."""


class Refusal(Exception):
    """A request answered with an error code (raised inside the core's checks only)."""

    def __init__(
        self,
        code: int,
        attributes: tuple[Attribute, ...] = (),
        reason: str | None = None,
        data: bytes | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.attributes = attributes
        self.reason = reason
        self.data = data
        """The answer already encoded, sent as is (the unsigned challenges of ``challenge``)."""


def encode_answer(response: Message, request: Message, key: bytes | None) -> Reply:
    """Sign as the request was signed; fingerprint if it was (RFC 8489 §9.2.4, §7.3)."""
    fingerprint = request.find(Fingerprint) is not None
    if key is None:
        return Reply(response.encode(fingerprint=fingerprint))
    return Reply(response.encode(key, integrity=request.integrity, fingerprint=fingerprint))
