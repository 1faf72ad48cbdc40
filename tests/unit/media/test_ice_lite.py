"""ICE-lite (RFC 8445 §2.5) and consent (RFC 7675): checks answered with short-term
credentials, media only toward checked addresses; RFC 5769's sample request."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from heron.media.ice import CONSENT_TIMEOUT, MAX_CHECKED, IceLite
from heron.stun import (
    ErrorCodeAttribute,
    IceControlling,
    Message,
    MessageClass,
    Method,
    Priority,
    UseCandidate,
    Username,
    XorMappedAddress,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "rfc5769"
PWD = "VOkJxbRl1RmTxUk/WvJxBt"
BROWSER = ("198.51.100.9", 50000)


def check(
    username: str = "evtj:h6vY", key: str = PWD, nominate: bool = False, tid: int = 1
) -> bytes:
    attributes = [Username(username), Priority(1853824767), IceControlling(0x1234)]
    if nominate:
        attributes.append(UseCandidate())
    request = Message(
        Method.BINDING, MessageClass.REQUEST, tid.to_bytes(12, "big"), tuple(attributes)
    )
    return request.encode(key.encode(), fingerprint=True)


def test_rfc5769_2_1_sample_request_passes_and_is_told_to_take_control() -> None:
    """The sample request says ICE-CONTROLLED; a lite agent is controlled too (§6.1.1),
    so it answers 487 Role Conflict, with integrity, and checks nothing."""
    ice = IceLite("evtj", PWD, "h6vY")
    answer = ice.receive((VECTORS / "sample_request.bin").read_bytes(), BROWSER, 0.0)
    assert answer is not None
    response = Message.decode(answer)
    assert response.message_class is MessageClass.ERROR_RESPONSE
    error = response.find(ErrorCodeAttribute)
    assert error is not None and error.code == 487
    assert response.verify_integrity(PWD.encode())
    assert ice.selected is None and not ice.checked


def test_rfc8445_7_3_check_is_answered_with_mapped_address_integrity_and_fingerprint() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    answer = ice.receive(check(), BROWSER, 5.0)
    assert answer is not None
    response = Message.decode(answer)  # decode checks FINGERPRINT when present
    assert response.message_class is MessageClass.SUCCESS_RESPONSE
    assert response.verify_integrity(PWD.encode())
    assert response.find(XorMappedAddress) == XorMappedAddress(ip_address(BROWSER[0]), BROWSER[1])
    assert ice.selected == BROWSER and ice.checked == {BROWSER: 5.0}


def test_use_candidate_moves_the_selected_address() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    ice.receive(check(), BROWSER, 0.0)
    other = ("198.51.100.9", 50002)
    ice.receive(check(tid=2), other, 1.0)
    assert ice.selected == BROWSER
    ice.receive(check(nominate=True, tid=3), other, 2.0)
    assert ice.selected == other


def test_wrong_credentials_are_dropped_and_check_nothing() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    assert ice.receive(check(key="wrong password!!!!!!!!"), BROWSER, 0.0) is None
    assert ice.receive(check(username="other:h6vY"), BROWSER, 0.0) is None
    assert ice.receive(check(username="evtj:nope"), BROWSER, 0.0) is None
    assert ice.receive(check(username="evtj"), BROWSER, 0.0) is None
    assert ice.receive(b"\x00\x01\x00\x00garbage", BROWSER, 0.0) is None
    assert ice.selected is None and not ice.checked


def test_a_check_before_the_answer_names_the_peer_ufrag_is_taken() -> None:
    ice = IceLite("evtj", PWD)
    assert ice.receive(check(username="evtj:anything"), BROWSER, 0.0) is not None


def test_rfc7675_consent_expires_30_seconds_after_the_last_check() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    ice.receive(check(), BROWSER, 0.0)
    ice.handle_timer(CONSENT_TIMEOUT - 1)
    assert ice.selected == BROWSER
    ice.receive(check(tid=2), BROWSER, 20.0)
    ice.handle_timer(20.0 + CONSENT_TIMEOUT - 1)
    assert ice.selected == BROWSER
    ice.handle_timer(20.0 + CONSENT_TIMEOUT)
    assert ice.selected is None and not ice.checked


def test_when_the_selected_address_expires_a_fresher_checked_one_takes_over() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    ice.receive(check(nominate=True), BROWSER, 0.0)
    other = ("198.51.100.9", 50002)
    ice.receive(check(tid=2), other, 10.0)
    ice.handle_timer(CONSENT_TIMEOUT)
    assert ice.selected == other


def test_remembered_addresses_are_bounded() -> None:
    ice = IceLite("evtj", PWD, "h6vY")
    for port in range(MAX_CHECKED + 5):
        ice.receive(check(tid=port + 1), ("198.51.100.9", 40000 + port), float(port))
    assert len(ice.checked) == MAX_CHECKED
