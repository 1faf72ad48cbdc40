"""The four SIP transaction state machines as data (RFC 3261 §17, RFC 6026 §7).

Each machine is a set of edges ``(kind, state, trigger) -> state``: RFC 3261
Figures 5 to 8 as RFC 6026 Figures 5 and 7 amend them (a 2xx leads to
Accepted, not Terminated, so that a proxy forwards every 2xx retransmission
and the 2xx of every fork). A few self-loops the figures leave out but the
text of §17 spells out are edges too, marked "text". Whatever is not an edge
is dropped when the network sends it and refused when the TU asks for it.
:mod:`heron.sip.transaction` performs the action of each edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["TRANSITIONS", "Input", "Kind", "State", "Timer", "Trigger", "initial_state"]


class Kind(Enum):
    """Which machine a transaction runs."""

    INVITE_CLIENT = "INVITE client"  # RFC 3261 §17.1.1, Figure 5; RFC 6026 §7.2
    NON_INVITE_CLIENT = "non-INVITE client"  # RFC 3261 §17.1.2, Figure 6
    INVITE_SERVER = "INVITE server"  # RFC 3261 §17.2.1, Figure 7; RFC 6026 §7.1
    NON_INVITE_SERVER = "non-INVITE server"  # RFC 3261 §17.2.2, Figure 8

    @property
    def is_client(self) -> bool:
        return self in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)

    @property
    def is_invite(self) -> bool:
        return self in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER)


class State(Enum):
    """Transaction states; each machine uses some of them (RFC 3261 §17)."""

    CALLING = "Calling"  # INVITE client, before any response
    TRYING = "Trying"  # non-INVITE client and server, before any response
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"  # a final response (non-2xx for INVITE) went by
    CONFIRMED = "Confirmed"  # INVITE server: the ACK for a non-2xx came
    ACCEPTED = "Accepted"  # RFC 6026 §7.1, §7.2: a 2xx to an INVITE went by
    TERMINATED = "Terminated"  # destroyed at once (RFC 3261 §17.1.1.2, §17.2.1)


class Timer(StrEnum):
    """The transaction timers (RFC 3261 §17 and Table 4; RFC 6026 §8.4, §8.7)."""

    A = "A"  # INVITE retransmission, T1 doubling, unreliable only (§17.1.1.2)
    B = "B"  # INVITE transaction timeout, 64*T1 (§17.1.1.2)
    D = "D"  # response retransmissions, >= 32 s unreliable, 0 reliable (§17.1.1.2)
    E = "E"  # non-INVITE retransmission, T1 doubling up to T2, unreliable only (§17.1.2.2)
    F = "F"  # non-INVITE transaction timeout, 64*T1 (§17.1.2.2)
    G = "G"  # final response retransmission, T1 doubling up to T2, unreliable only (§17.2.1)
    H = "H"  # waiting for the ACK, 64*T1 (§17.2.1)
    I = "I"  # noqa: E741 -- the RFC's name; ACK retransmissions, T4 unreliable, 0 reliable
    J = "J"  # request retransmissions, 64*T1 unreliable, 0 reliable (§17.2.2)
    K = "K"  # response retransmissions, T4 unreliable, 0 reliable (§17.1.2.2)
    L = "L"  # Accepted server, 64*T1 (RFC 6026 §8.7)
    M = "M"  # Accepted client, 64*T1 (RFC 6026 §8.4)
    TRYING = "100"  # send 100 Trying if the TU has not answered within 200 ms (§17.2.1)


class Input(Enum):
    """What happens to a transaction besides a timer firing.

    Responses come from the transport to a client transaction and from the TU
    to a server transaction, so one input serves both sides.
    """

    REQUEST = "request"  # the request again: a retransmission (server)
    ACK = "ACK"  # an ACK matching an INVITE server transaction (§17.2.3)
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    TRANSPORT_ERROR = "transport error"  # sending failed (§17.1.4, §17.2.4)

    @classmethod
    def of_status(cls, status: int) -> Input:
        if status < 200:
            return cls.PROVISIONAL
        return cls.SUCCESS if status < 300 else cls.FAILURE


Trigger = Input | Timer

_IC, _NIC = Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT
_IS, _NIS = Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER
_CALLING, _TRYING, _PROCEEDING = State.CALLING, State.TRYING, State.PROCEEDING
_COMPLETED, _CONFIRMED, _ACCEPTED = State.COMPLETED, State.CONFIRMED, State.ACCEPTED
_TERMINATED = State.TERMINATED
_REQUEST, _ACK, _ERROR = Input.REQUEST, Input.ACK, Input.TRANSPORT_ERROR
_1XX, _2XX, _FAIL = Input.PROVISIONAL, Input.SUCCESS, Input.FAILURE

TRANSITIONS: Final[Mapping[tuple[Kind, State, Trigger], State]] = MappingProxyType(
    {
        # RFC 3261 Figure 5, RFC 6026 Figure 5: INVITE client transaction.
        (_IC, _CALLING, Timer.A): _CALLING,  # resend INVITE, double A
        (_IC, _CALLING, Timer.B): _TERMINATED,  # inform TU
        (_IC, _CALLING, _ERROR): _TERMINATED,  # inform TU
        (_IC, _CALLING, _1XX): _PROCEEDING,  # 1xx to TU
        (_IC, _CALLING, _2XX): _ACCEPTED,  # 2xx to TU (RFC 6026)
        (_IC, _CALLING, _FAIL): _COMPLETED,  # send ACK, response to TU
        (_IC, _PROCEEDING, _1XX): _PROCEEDING,  # 1xx to TU
        (_IC, _PROCEEDING, _2XX): _ACCEPTED,  # 2xx to TU (RFC 6026)
        (_IC, _PROCEEDING, _FAIL): _COMPLETED,  # send ACK, response to TU
        (_IC, _COMPLETED, _FAIL): _COMPLETED,  # send ACK again
        (_IC, _COMPLETED, _ERROR): _TERMINATED,  # inform TU
        (_IC, _COMPLETED, Timer.D): _TERMINATED,
        (_IC, _ACCEPTED, _2XX): _ACCEPTED,  # 2xx to TU (RFC 6026)
        (_IC, _ACCEPTED, Timer.M): _TERMINATED,  # (RFC 6026)
        # RFC 3261 Figure 6: non-INVITE client transaction.
        (_NIC, _TRYING, Timer.E): _TRYING,  # resend request, E = min(2E, T2)
        (_NIC, _TRYING, Timer.F): _TERMINATED,  # inform TU
        (_NIC, _TRYING, _ERROR): _TERMINATED,  # inform TU
        (_NIC, _TRYING, _1XX): _PROCEEDING,  # 1xx to TU
        (_NIC, _TRYING, _2XX): _COMPLETED,  # response to TU
        (_NIC, _TRYING, _FAIL): _COMPLETED,  # response to TU
        (_NIC, _PROCEEDING, Timer.E): _PROCEEDING,  # resend request, E = T2
        (_NIC, _PROCEEDING, _1XX): _PROCEEDING,  # 1xx to TU
        (_NIC, _PROCEEDING, Timer.F): _TERMINATED,  # inform TU
        (_NIC, _PROCEEDING, _ERROR): _TERMINATED,  # inform TU
        (_NIC, _PROCEEDING, _2XX): _COMPLETED,  # response to TU
        (_NIC, _PROCEEDING, _FAIL): _COMPLETED,  # response to TU
        (_NIC, _COMPLETED, _2XX): _COMPLETED,  # absorb (text, §17.1.2.2)
        (_NIC, _COMPLETED, _FAIL): _COMPLETED,  # absorb (text, §17.1.2.2)
        (_NIC, _COMPLETED, Timer.K): _TERMINATED,
        # RFC 3261 Figure 7, RFC 6026 Figure 7: INVITE server transaction.
        (_IS, _PROCEEDING, _REQUEST): _PROCEEDING,  # resend last provisional
        (_IS, _PROCEEDING, Timer.TRYING): _PROCEEDING,  # send 100 Trying
        (_IS, _PROCEEDING, _1XX): _PROCEEDING,  # send response
        (_IS, _PROCEEDING, _ERROR): _TERMINATED,  # inform TU
        (_IS, _PROCEEDING, _2XX): _ACCEPTED,  # send response (RFC 6026)
        (_IS, _PROCEEDING, _FAIL): _COMPLETED,  # send response
        (_IS, _COMPLETED, _REQUEST): _COMPLETED,  # resend response
        (_IS, _COMPLETED, Timer.G): _COMPLETED,  # resend response, G = min(2G, T2)
        (_IS, _COMPLETED, Timer.H): _TERMINATED,  # inform TU
        (_IS, _COMPLETED, _ERROR): _TERMINATED,  # inform TU
        (_IS, _COMPLETED, _ACK): _CONFIRMED,
        (_IS, _CONFIRMED, _ACK): _CONFIRMED,  # absorb (text, §17.2.1)
        (_IS, _CONFIRMED, Timer.I): _TERMINATED,
        (_IS, _ACCEPTED, _REQUEST): _ACCEPTED,  # absorb (RFC 6026)
        (_IS, _ACCEPTED, _ACK): _ACCEPTED,  # ACK to TU (RFC 6026)
        (_IS, _ACCEPTED, _2XX): _ACCEPTED,  # send response (RFC 6026)
        (_IS, _ACCEPTED, _ERROR): _ACCEPTED,  # inform TU (RFC 6026)
        (_IS, _ACCEPTED, Timer.L): _TERMINATED,  # (RFC 6026)
        # RFC 3261 Figure 8: non-INVITE server transaction.
        (_NIS, _TRYING, _REQUEST): _TRYING,  # discard (text, §17.2.2)
        (_NIS, _TRYING, _1XX): _PROCEEDING,  # send response
        (_NIS, _TRYING, _2XX): _COMPLETED,  # send response
        (_NIS, _TRYING, _FAIL): _COMPLETED,  # send response
        (_NIS, _PROCEEDING, _REQUEST): _PROCEEDING,  # resend last provisional
        (_NIS, _PROCEEDING, _1XX): _PROCEEDING,  # send response
        (_NIS, _PROCEEDING, _ERROR): _TERMINATED,  # inform TU
        (_NIS, _PROCEEDING, _2XX): _COMPLETED,  # send response
        (_NIS, _PROCEEDING, _FAIL): _COMPLETED,  # send response
        (_NIS, _COMPLETED, _REQUEST): _COMPLETED,  # resend response
        (_NIS, _COMPLETED, _ERROR): _TERMINATED,  # inform TU
        (_NIS, _COMPLETED, Timer.J): _TERMINATED,
    }
)
"""Every edge of the four machines: ``(kind, state, trigger) -> next state``."""

_INITIAL = {_IC: _CALLING, _NIC: _TRYING, _IS: _PROCEEDING, _NIS: _TRYING}


def initial_state(kind: Kind) -> State:
    """Where a new transaction starts (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2)."""
    return _INITIAL[kind]
