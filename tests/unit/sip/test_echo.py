"""The echo number answers its calls itself with the bridge's echo of their media, sans-IO."""

from __future__ import annotations

import pytest

from heron.sip import Request, parse_datagram, parse_uri
from heron.sip.echo import LEG, EchoNumber
from heron.sip.media import MediaRefused
from tests.unit.sip.test_steering import PLAIN_SDP, RecordingBridge, sip_request

CONTACT = "<sip:600@198.51.100.19:5060>"


def request(
    method: str,
    *,
    to_tag: str | None = None,
    body: bytes = PLAIN_SDP,
    from_tag: str = "caller",
    extra: tuple[str, ...] = (),
) -> Request:
    return sip_request(
        method,
        "600",
        body=body,
        to_tag=to_tag,
        from_tag=from_tag,
        call_id="echo-call@192.0.2.7",
        extra=extra,
    )


def echo() -> tuple[EchoNumber, RecordingBridge]:
    bridge = RecordingBridge()
    return EchoNumber("600", bridge, b"k" * 32, "hr"), bridge


def test_only_the_configured_number_is_called() -> None:
    number, _ = echo()
    assert number.called(parse_uri("sip:600@falcot.com"))
    assert not number.called(parse_uri("sip:6000@falcot.com"))
    assert not number.called(parse_uri("sip:falcot.com"))


def test_invite_is_answered_200_with_the_bridge_echo_a_tag_contact_and_route_set() -> None:
    number, bridge = echo()
    invite = request("INVITE", extra=("Record-Route: <sip:edge.example.com;lr>",))
    ok = number.answer(invite, CONTACT)
    assert ok.status == 200
    assert ok.body == b"v=0\r\ns=echo\r\n"
    assert ok.headers.content_type == "application/sdp"
    assert ok.headers.get("Contact") == CONTACT
    assert ok.headers.get_all("Record-Route") == ("<sip:edge.example.com;lr>",)
    tag = ok.headers.to.tag
    assert tag is not None and tag.startswith("hr")
    assert bridge.calls == [("echo", LEG)]
    assert parse_datagram(ok.encode()).body == ok.body  # type: ignore[union-attr]


def test_the_to_tag_proves_the_dialog_and_nothing_else_does() -> None:
    number, _ = echo()
    tag = number.answer(request("INVITE"), CONTACT).headers.to.tag
    assert number.ours(request("BYE", to_tag=tag, body=b""))
    assert not number.ours(request("BYE", to_tag="hr0123", body=b""))
    assert not number.ours(request("BYE", to_tag=tag, body=b"", from_tag="other"))
    assert not number.ours(request("INVITE"))


def test_reinvite_is_echoed_again_and_bye_deletes_the_leg() -> None:
    number, bridge = echo()
    tag = number.answer(request("INVITE"), CONTACT).headers.to.tag
    hold = number.answer(request("INVITE", to_tag=tag, body=PLAIN_SDP + b"a=sendonly\r\n"), CONTACT)
    assert hold.status == 200 and hold.headers.to.tag == tag
    options = number.answer(request("OPTIONS", to_tag=tag, body=b""), CONTACT)
    assert options.status == 200
    bye = number.answer(request("BYE", to_tag=tag, body=b""), CONTACT)
    assert bye.status == 200
    assert bridge.calls == [("echo", LEG), ("echo", LEG), ("delete", LEG)]


def test_an_invite_without_an_offer_is_refused_488() -> None:
    number, bridge = echo()
    assert number.answer(request("INVITE", body=b""), CONTACT).status == 488
    assert bridge.calls == []


def test_other_methods_in_the_dialog_get_405() -> None:
    number, _ = echo()
    refused = number.answer(request("MESSAGE", to_tag="x", body=b""), CONTACT)
    assert refused.status == 405 and "BYE" in (refused.headers.get("Allow") or "")


def test_a_bridge_refusal_goes_up_to_be_answered() -> None:
    number, bridge = echo()
    bridge.refusal = MediaRefused(503, "full")
    with pytest.raises(MediaRefused) as raised:
        number.answer(request("INVITE"), CONTACT)
    assert raised.value.status == 503
