"""Challenges kept encoded: each is byte for byte the answer encoded in full."""

from __future__ import annotations

import os

import pytest

from heron.stun import (
    Attribute,
    ErrorCode,
    ErrorCodeAttribute,
    Fingerprint,
    Message,
    MessageClass,
    Method,
    Nonce,
    Realm,
    RequestedTransport,
    Software,
)
from heron.turn.challenge import Challenges


def _attributes(nonce: str) -> tuple[Attribute, ...]:
    return (Realm("example.org"), Nonce(nonce), Software("heron test"))


def _request(method: Method, fingerprint: bool) -> Message:
    """A request as the server sees it: decoded, so FINGERPRINT is found if sent."""
    attributes = (RequestedTransport(17),) if method == Method.ALLOCATE else ()
    message = Message(method, MessageClass.REQUEST, os.urandom(12), attributes)
    return Message.decode(message.encode(fingerprint=fingerprint))


def _in_full(request: Message, code: int, nonce: str) -> bytes:
    response = request.error_response(code, attributes=_attributes(nonce))
    return response.encode(fingerprint=request.find(Fingerprint) is not None)


@pytest.mark.parametrize("fingerprint", [False, True])
@pytest.mark.parametrize("code", [ErrorCode.UNAUTHORIZED, ErrorCode.STALE_NONCE])
@pytest.mark.parametrize("method", [Method.ALLOCATE, Method.REFRESH, Method.CREATE_PERMISSION])
def test_each_challenge_is_the_full_encoding(method: Method, code: int, fingerprint: bool) -> None:
    challenges = Challenges(_attributes)
    for nonce in ["first-nonce-0001", "other-nonce-0002", "third-nonce-0003"]:
        request = _request(method, fingerprint)
        data = challenges.encode(request, code, nonce)
        assert data == _in_full(request, code, nonce)
        answer = Message.decode(data)
        assert answer.transaction_id == request.transaction_id
        found = answer.find(Nonce)
        assert found is not None and found.value == nonce


def test_shapes_do_not_mix() -> None:
    """A kept 401 is not reused for a 438, another method, another length or FINGERPRINT."""
    challenges = Challenges(_attributes)
    asked = [
        (Method.ALLOCATE, ErrorCode.UNAUTHORIZED, False, "nonce-a"),
        (Method.ALLOCATE, ErrorCode.STALE_NONCE, False, "nonce-b"),
        (Method.REFRESH, ErrorCode.UNAUTHORIZED, False, "nonce-c"),
        (Method.ALLOCATE, ErrorCode.UNAUTHORIZED, True, "nonce-d"),
        (Method.ALLOCATE, ErrorCode.UNAUTHORIZED, False, "a-longer-nonce-e"),
        (Method.ALLOCATE, ErrorCode.UNAUTHORIZED, False, "nonce-f"),
    ]
    for method, code, fingerprint, nonce in asked:
        request = _request(method, fingerprint)
        answer = Message.decode(challenges.encode(request, code, nonce))
        assert (answer.method, answer.message_class) == (method, MessageClass.ERROR_RESPONSE)
        error = answer.find(ErrorCodeAttribute)
        assert error is not None and error.code == code
        assert (answer.find(Fingerprint) is not None) == fingerprint
        assert answer.find(Nonce) == Nonce(nonce)
