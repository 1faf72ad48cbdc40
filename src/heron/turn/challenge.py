"""The 401 and 438 challenges of the long-term credential mechanism, kept encoded.

Every allocation starts with an unsigned Allocate answered by a 401 (RFC 8489
§9.2.4), so encoding that answer is a fixed share of each allocation's cost.
Between clients it differs only by transaction id and nonce (and the
FINGERPRINT computed over them): the rest (ERROR-CODE, REALM, the nonce's
length, PASSWORD-ALGORITHMS, SOFTWARE) is the same for a given method, code
and FINGERPRINT choice. So the first such answer is encoded in full and kept,
and later ones are that copy with the transaction id and nonce written in
and, if the request had one, the FINGERPRINT computed again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from heron.stun import Attribute, AttributeType, Fingerprint, Message
from heron.stun.integrity import fingerprint_crc

__all__ = ["Challenges"]

_TLV = struct.Struct("!HH")
_FINGERPRINT_HEADER = _TLV.pack(AttributeType.FINGERPRINT, 4)
_HEADER = 20


class Challenges:
    """Encodes challenges to requests, each after the first of its shape from a copy."""

    def __init__(self, attributes: Callable[[str], tuple[Attribute, ...]]) -> None:
        self._attributes = attributes
        """The attributes a challenge carries after ERROR-CODE, given its nonce."""
        self._kept: dict[tuple[int, int, bool, int], tuple[bytes, int]] = {}
        """(method, code, FINGERPRINT, nonce length) -> the answer and its nonce's offset.
        Only authenticated methods are challenged, so this stays a handful of entries."""

    def encode(self, request: Message, code: int, nonce: str) -> bytes:
        """The error response ``code`` to ``request``, carrying ``nonce``, on the wire."""
        fingerprint = request.find(Fingerprint) is not None
        value = nonce.encode()
        shape = (int(request.method), code, fingerprint, len(value))
        kept = self._kept.get(shape)
        if kept is None:
            response = request.error_response(code, attributes=self._attributes(nonce))
            data = response.encode(fingerprint=fingerprint)
            self._kept[shape] = (data, _nonce_offset(data))
            return data
        data, offset = kept
        end = len(data) - 8 if fingerprint else len(data)
        filled = (
            data[:8]
            + request.transaction_id
            + data[_HEADER:offset]
            + value
            + data[offset + len(value) : end]
        )
        if not fingerprint:
            return filled
        return filled + _FINGERPRINT_HEADER + fingerprint_crc(filled).to_bytes(4, "big")


def _nonce_offset(data: bytes) -> int:
    """Where the NONCE's value starts in an encoded message that has one."""
    position = _HEADER
    while position < len(data):
        attribute_type, length = _TLV.unpack_from(data, position)
        if attribute_type == AttributeType.NONCE:
            return position + 4
        position += 4 + (length + 3) // 4 * 4
    raise ValueError("a challenge without a NONCE")
