"""What the SIP transaction layer hands back: events for the TU, messages to
send, and its one exception (RFC 3261 §17). :mod:`heron.sip.transaction`
re-exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.sip.errors import SipLocalError
from heron.sip.message import Request, Response
from heron.sip.transaction_states import Timer

__all__ = [
    "AckReceived",
    "Address",
    "Outgoing",
    "RequestReceived",
    "RequestRefused",
    "ResponseReceived",
    "StrayResponse",
    "TransactionError",
    "TransactionEvent",
    "TransactionTerminated",
    "TransactionTimeout",
    "TransportFailed",
]

Address = tuple[str, int]
"""A peer: host and port, which with the transport names a connection."""


class TransactionError(SipLocalError):
    """The TU asked the transaction layer for something RFC 3261 §17 forbids."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: ``data`` over ``transport`` to ``destination``.

    ``tx`` names the transaction that sent it, for :meth:`TransactionLayer.transport_error`;
    None for a stateless message. ``message`` is None on a retransmission by a transaction
    that has finished (Completed, Confirmed, Accepted): it keeps only the bytes, so the
    parsed message is not held (and traced by the collector) for Timers J, L and M.
    """

    message: Request | Response | None
    data: bytes
    transport: str
    destination: Address
    tx: int | None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request created server transaction ``tx`` (CANCEL included:
    :meth:`TransactionLayer.cancel_target` finds the INVITE it cancels).
    """

    tx: int
    request: Request
    transport: str
    source: Address


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK no transaction absorbs: the ACK for a 2xx, which the proxy
    forwards (RFC 3261 §16.10, §17.2.3). ``tx`` is the Accepted INVITE server
    transaction it matched, if any (RFC 6026 §8.7).
    """

    request: Request
    transport: str
    source: Address
    tx: int | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU from client transaction ``tx`` (RFC 3261 §17.1)."""

    tx: int
    response: Response


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response no client transaction takes; a proxy forwards a 2xx to an
    INVITE statelessly (RFC 3261 §16.7 step 5, §18.1.2; RFC 6026 §7.2).
    """

    response: Response
    transport: str
    source: Address


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B or F (the proxy answers 408 for the branch, RFC 3261 §16.8) or
    Timer H (the ACK never came, §17.2.1) fired.
    """

    tx: int
    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport could not send for ``tx`` (RFC 3261 §17.1.4, §17.2.4); for a
    client transaction the proxy acts as if it received a 503 (§16.9).
    """

    tx: int


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """Transaction ``tx`` is gone; its id will not come back."""

    tx: int


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """Too many live transactions: ``request`` was answered with ``response`` (503)."""

    request: Request
    response: Response


TransactionEvent = (
    RequestReceived
    | AckReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | TransportFailed
    | TransactionTerminated
    | RequestRefused
)
