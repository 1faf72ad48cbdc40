"""STUN error codes and the one exception tree of the STUN codec.

Every failure carries the ERROR-CODE to answer with, so a server never has to
guess (RFC 8489 §14.8)::

    StunError                 .code (ErrorCode or int), .reason
    ├── StunRemoteError       the peer sent something unacceptable; .code is the
    │                         answer (400 unless more specific) and .request the
    │                         request to answer, or None when the bytes must be
    │                         silently dropped (not a request, or not STUN at all)
    └── StunLocalError        we asked the codec to build something the protocol
                              forbids: a bug on our side, 500 if it must be answered

A parser never raises anything else, whatever the bytes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heron.stun.message import Message


class ErrorCode(IntEnum):
    """STUN/TURN error codes and the IANA reason phrases that go with them."""

    TRY_ALTERNATE = 300  # RFC 8489 §14.8
    BAD_REQUEST = 400  # RFC 8489 §14.8
    UNAUTHORIZED = 401  # RFC 8489 §14.8
    FORBIDDEN = 403  # RFC 8656 §19
    UNKNOWN_ATTRIBUTE = 420  # RFC 8489 §14.8
    ALLOCATION_MISMATCH = 437  # RFC 8656 §19
    STALE_NONCE = 438  # RFC 8489 §14.8
    ADDRESS_FAMILY_NOT_SUPPORTED = 440  # RFC 8656 §19
    WRONG_CREDENTIALS = 441  # RFC 8656 §19
    UNSUPPORTED_TRANSPORT_PROTOCOL = 442  # RFC 8656 §19
    PEER_ADDRESS_FAMILY_MISMATCH = 443  # RFC 8656 §19
    CONNECTION_ALREADY_EXISTS = 446  # RFC 6062 §6.3
    CONNECTION_TIMEOUT_OR_FAILURE = 447  # RFC 6062 §6.3
    ALLOCATION_QUOTA_REACHED = 486  # RFC 8656 §19
    ROLE_CONFLICT = 487  # RFC 8445 §7.3.1.1
    SERVER_ERROR = 500  # RFC 8489 §14.8
    INSUFFICIENT_CAPACITY = 508  # RFC 8656 §19

    @property
    def phrase(self) -> str:
        """The recommended reason phrase (IANA "STUN Error Codes" registry)."""
        return _PHRASES[self]


_PHRASES = {
    ErrorCode.TRY_ALTERNATE: "Try Alternate",
    ErrorCode.BAD_REQUEST: "Bad Request",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNKNOWN_ATTRIBUTE: "Unknown Attribute",
    ErrorCode.ALLOCATION_MISMATCH: "Allocation Mismatch",
    ErrorCode.STALE_NONCE: "Stale Nonce",
    ErrorCode.ADDRESS_FAMILY_NOT_SUPPORTED: "Address Family not Supported",
    ErrorCode.WRONG_CREDENTIALS: "Wrong Credentials",
    ErrorCode.UNSUPPORTED_TRANSPORT_PROTOCOL: "Unsupported Transport Protocol",
    ErrorCode.PEER_ADDRESS_FAMILY_MISMATCH: "Peer Address Family Mismatch",
    ErrorCode.CONNECTION_ALREADY_EXISTS: "Connection Already Exists",
    ErrorCode.CONNECTION_TIMEOUT_OR_FAILURE: "Connection Timeout or Failure",
    ErrorCode.ALLOCATION_QUOTA_REACHED: "Allocation Quota Reached",
    ErrorCode.ROLE_CONFLICT: "Role Conflict",
    ErrorCode.SERVER_ERROR: "Server Error",
    ErrorCode.INSUFFICIENT_CAPACITY: "Insufficient Capacity",
}


class StunError(Exception):
    """Root of the STUN codec's exceptions; ``code`` is the error code to answer with."""

    default_code = ErrorCode.BAD_REQUEST

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code: int = self.default_code if code is None else code


class StunRemoteError(StunError):
    """The peer's bytes are not an acceptable STUN message or ChannelData frame.

    ``request`` is the header-only request to build the error response from
    (``exc.request.error_response(exc.code, exc.reason)``). It is None when
    nothing may be sent back (RFC 8489 §6.3): indications and responses are
    never answered, and bytes failing the header, framing or FINGERPRINT
    checks may not be STUN at all.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason, code)
        self.request: Message | None = None


class StunLocalError(StunError):
    """We asked the codec to build or encode a value the protocol forbids."""

    default_code = ErrorCode.SERVER_ERROR
