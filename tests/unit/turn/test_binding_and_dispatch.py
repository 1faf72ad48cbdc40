"""STUN Binding (RFC 8489 §6.3), attribute checks, and which messages the core answers at all."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from heron.stun import (
    Attribute,
    ChangeRequest,
    Data,
    ErrorCode,
    Fingerprint,
    Message,
    MessageClass,
    MessageIntegrity,
    Method,
    OtherAddress,
    ResponseOrigin,
    ResponsePort,
    Software,
    UnknownAttribute,
    UnknownAttributes,
    XorMappedAddress,
)
from heron.turn.discovery import AlternateAddresses
from heron.turn.replies import Reply
from tests.unit.turn.harness import (
    PEER,
    FakeClient,
    Turn,
    TurnClient,
    error_code,
    peer_attribute,
)

# --- Binding ----------------------------------------------------------------------------------


def binding(client: TurnClient, *attributes: Attribute) -> Message:
    return client.request(Method.BINDING, *attributes, sign=False)


def test_rfc8489_binding_answers_anonymously_with_xor_mapped_address(
    turn: Turn, alice: TurnClient
) -> None:
    reply = binding(alice)

    assert reply.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.find(XorMappedAddress) == XorMappedAddress(
        ip_address(alice.address[0]), alice.address[1]
    )
    assert reply.find(Software) == Software("heron")
    assert reply.find(MessageIntegrity) is None
    assert turn.core.counters.auth_failures == 0


def test_rfc8489_binding_reflects_an_ipv6_client_address(turn: Turn) -> None:
    client = turn.client(address=("2001:db8:2::5", 51000))

    reply = binding(client)

    assert reply.find(XorMappedAddress) == XorMappedAddress(ip_address("2001:db8:2::5"), 51000)


def test_rfc8489_7_3_fingerprint_mirrored_when_the_request_had_one(turn: Turn) -> None:
    with_fp = turn.client(fingerprint=True)
    without_fp = turn.client()

    assert binding(with_fp).find(Fingerprint) is not None
    assert binding(without_fp).find(Fingerprint) is None


def test_rfc8489_binding_response_keeps_the_transaction_id(alice: TurnClient) -> None:
    tid = b"binding-tid1"

    reply = alice.request(Method.BINDING, transaction_id=tid, sign=False)

    assert reply.transaction_id == tid


def test_rfc8489_6_3_1_unknown_required_attribute_gets_420_listing_it(alice: TurnClient) -> None:
    reply = binding(alice, UnknownAttribute(0x7F01, b"x"), UnknownAttribute(0x7F02, b""))

    assert error_code(reply) == ErrorCode.UNKNOWN_ATTRIBUTE
    assert reply.find(UnknownAttributes) == UnknownAttributes((0x7F01, 0x7F02))


def test_rfc8489_6_3_1_unknown_optional_attribute_is_ignored(alice: TurnClient) -> None:
    reply = binding(alice, UnknownAttribute(0xC001, b"optional"))

    assert reply.message_class is MessageClass.SUCCESS_RESPONSE


def test_rfc5780_6_1_change_request_without_second_address_gets_420(alice: TurnClient) -> None:
    reply = binding(alice, ChangeRequest(change_ip=True, change_port=True))

    assert error_code(reply) == ErrorCode.UNKNOWN_ATTRIBUTE
    assert reply.find(UnknownAttributes) == UnknownAttributes((0x0003,))


@pytest.mark.parametrize("flags", [(True, False), (False, True)])
def test_rfc5780_6_1_either_change_flag_alone_gets_420(
    alice: TurnClient, flags: tuple[bool, bool]
) -> None:
    assert error_code(binding(alice, ChangeRequest(*flags))) == ErrorCode.UNKNOWN_ATTRIBUTE


def test_rfc5780_6_1_change_request_without_second_address_is_420_even_without_flags(
    alice: TurnClient,
) -> None:
    # "If the Request contains the CHANGE-REQUEST attribute and the server does not
    # have an alternate address and port ..., the server MUST generate ... 420."
    reply = binding(alice, ChangeRequest(change_ip=False, change_port=False))

    assert error_code(reply) == ErrorCode.UNKNOWN_ATTRIBUTE
    assert reply.find(UnknownAttributes) == UnknownAttributes((0x0003,))


def test_rfc5780_6_1_response_port_without_second_address_is_420(alice: TurnClient) -> None:
    reply = binding(alice, ResponsePort(40001), ChangeRequest(True, False))

    unknown = reply.find(UnknownAttributes)
    assert error_code(reply) == ErrorCode.UNKNOWN_ATTRIBUTE
    assert unknown is not None and set(unknown.types) == {0x0003, 0x0027}


# --- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [0x0FF, Method.SEND, Method.DATA],
    ids=["unassigned", "send-as-request", "data-as-request"],
)
def test_rfc8489_6_3_1_unknown_or_unserved_method_gets_400(
    turn: Turn, alice: TurnClient, method: int
) -> None:
    reply = alice.request(method, sign=False)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert reply.method == method
    assert turn.core.counters.bad_requests == 1


@pytest.mark.parametrize(
    "message_class", [MessageClass.SUCCESS_RESPONSE, MessageClass.ERROR_RESPONSE]
)
@pytest.mark.parametrize("method", [Method.BINDING, Method.ALLOCATE, Method.REFRESH])
def test_rfc8489_6_3_responses_from_clients_are_ignored(
    turn: Turn, alice: TurnClient, message_class: MessageClass, method: Method
) -> None:
    wire = alice.build(method, sign=False, message_class=message_class)

    assert alice.send_raw(wire) is None
    assert turn.core.counters.requests == 0
    assert turn.core.allocations == {}


@pytest.mark.parametrize("method", [Method.BINDING, Method.DATA, Method.ALLOCATE])
def test_rfc8489_6_3_2_indications_other_than_send_are_ignored(
    turn: Turn, alice: TurnClient, method: Method
) -> None:
    alice.allocate()
    alice.permit(PEER)
    attributes = (peer_attribute(PEER), Data(b"payload"))
    wire = alice.build(method, attributes, sign=False, message_class=MessageClass.INDICATION)

    assert alice.send_raw(wire) is None
    assert turn.relays.opened[0].sent == []
    assert len(turn.core.allocations) == 1


def test_requests_counter_counts_every_request_answered(turn: Turn, alice: TurnClient) -> None:
    binding(alice)
    binding(alice, UnknownAttribute(0x7F01, b""))
    alice.request(0x0FF, sign=False)

    assert turn.core.counters.requests == 3


# --- NAT behaviour discovery with a second address (RFC 5780) ----------------------------------

ALTERNATE = AlternateAddresses(ips=("192.0.2.1", "192.0.2.2"), ports=(3478, 3479))


def binding_at(turn: Turn, local: tuple[str, int], *attributes: Attribute) -> tuple[Message, Reply]:
    """A UDP Binding request that reached the listener ``local``."""
    request = Message(Method.BINDING, MessageClass.REQUEST, b"rfc5780-tid1", attributes)
    decoded = Message.decode(request.encode())
    key = ("udp", ("198.51.100.20", 40000), local)
    reply = turn.core.handle(decoded, key, FakeClient(), None, turn.now)
    assert reply is not None
    return Message.decode(reply.data), reply


def test_rfc5780_7_binding_names_response_origin_and_other_address() -> None:
    turn = Turn(alternate=ALTERNATE)

    message, reply = binding_at(turn, ("192.0.2.1", 3478))

    assert message.find(ResponseOrigin) == ResponseOrigin(ip_address("192.0.2.1"), 3478)
    assert message.find(OtherAddress) == OtherAddress(ip_address("192.0.2.2"), 3479)
    assert reply.source is None  # answered from where it arrived


@pytest.mark.parametrize(
    ("flags", "source"),
    [
        ((True, False), ("192.0.2.2", 3478)),
        ((False, True), ("192.0.2.1", 3479)),
        ((True, True), ("192.0.2.2", 3479)),
    ],
    ids=["change-ip", "change-port", "change-both"],
)
def test_rfc5780_6_1_change_request_answers_from_the_other_address(
    flags: tuple[bool, bool], source: tuple[str, int]
) -> None:
    turn = Turn(alternate=ALTERNATE)

    message, reply = binding_at(turn, ("192.0.2.1", 3478), ChangeRequest(*flags))

    assert message.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.source == source
    assert message.find(ResponseOrigin) == ResponseOrigin(ip_address(source[0]), source[1])


def test_rfc5780_6_1_change_request_from_the_alternate_listener_swaps_back() -> None:
    turn = Turn(alternate=ALTERNATE)

    message, reply = binding_at(turn, ("192.0.2.2", 3479), ChangeRequest(True, True))

    assert reply.source == ("192.0.2.1", 3478)
    assert message.find(OtherAddress) == OtherAddress(ip_address("192.0.2.1"), 3478)


def test_rfc5780_6_1_listener_outside_the_alternate_pair_has_no_second_address() -> None:
    turn = Turn(alternate=ALTERNATE)

    plain, _ = binding_at(turn, ("192.0.2.9", 3478))
    changed, _ = binding_at(turn, ("192.0.2.9", 3478), ChangeRequest(True, False))

    assert plain.find(OtherAddress) is None and plain.find(ResponseOrigin) is None
    assert error_code(changed) == ErrorCode.UNKNOWN_ATTRIBUTE


def test_rfc5780_7_5_response_port_redirects_the_answer_to_that_port() -> None:
    turn = Turn(alternate=ALTERNATE)

    message, reply = binding_at(turn, ("192.0.2.1", 3478), ResponsePort(41000))

    assert message.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.destination == ("198.51.100.20", 41000)
    assert reply.source is None


def test_rfc5780_binding_without_response_port_goes_back_to_the_client() -> None:
    turn = Turn(alternate=ALTERNATE)

    _, reply = binding_at(turn, ("192.0.2.1", 3478), ChangeRequest(True, True))

    assert reply.destination is None
