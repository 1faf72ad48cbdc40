"""The proxy steers the media bridge as Kamailio steers rtpengine: which calls, which side,
which transport, and the offer/answer/delete calls in order, sans-IO.

The forwarder runs on the real transaction layer; the bridge is a recording double of
the :class:`heron.sip.media.MediaBridge` Protocol that returns a marked SDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.config import ListenAddress
from heron.sip import Request, Response, SipUri, parse_address, parse_datagram, parse_uri
from heron.sip.errors import SipError
from heron.sip.forwarding import Forwarder, InDialog, Target
from heron.sip.locality import Locality
from heron.sip.media import MediaLeg, MediaRefused, Side, Transport
from heron.sip.proxy import preprocess
from heron.sip.registrar import Binding, BindingSource
from heron.sip.seal import DialogSeal
from heron.sip.steering import (
    MediaPath,
    Relay,
    Steering,
    caller_transport,
    has_sdp,
    in_dialog,
    relayed,
    sdp_transport,
)
from heron.sip.transaction import (
    ResponseReceived,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
)
from tests.unit.sip.test_transaction import holds

PROXY = ListenAddress("198.51.100.19", 5060)
CALLER = ("192.0.2.7", 5062)
KEY = b"k" * 32
PLAIN_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
WEB_SDP = (
    b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    b"m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
    b"a=ice-pwd:0123456789abcdef012345\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n"
    b"a=mid:0\r\na=rtcp-mux\r\n"
)


def sip_request(
    method: str,
    callee: str,
    *,
    body: bytes = b"",
    to_tag: str | None = None,
    from_tag: str = "caller",
    cseq: int = 1,
    call_id: str = "call-1@192.0.2.7",
    extra: tuple[str, ...] = (),
) -> Request:
    """A request from roland's desk phone to ``callee`` of falcot.com, as parsed off the wire."""
    to = f"<sip:{callee}@falcot.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:{callee}@falcot.com SIP/2.0",
        f"Via: SIP/2.0/UDP {CALLER[0]}:{CALLER[1]};branch=z9hG4bK{method}{cseq}{from_tag}",
        "Max-Forwards: 70",
        f"From: <sip:roland@falcot.com>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:roland@192.0.2.7:5062>",
        *extra,
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    request = parse_datagram("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
    assert isinstance(request, Request)
    return request


@dataclass
class RecordingBridge:
    """The media bridge as the proxy sees it: records each call, answers a marked SDP."""

    calls: list[tuple[object, ...]] = field(default_factory=list)
    refusal: MediaRefused | None = None

    def offer(self, leg: MediaLeg, side: Side, sdp: bytes, toward: Transport) -> bytes:
        self.calls.append(("offer", leg.branch, side, toward))
        if self.refusal is not None:
            raise self.refusal
        return b"v=0\r\ns=offer from heron for " + side.value.encode() + b"\r\n"

    def answer(self, leg: MediaLeg, side: Side, sdp: bytes) -> bytes:
        self.calls.append(("answer", leg.branch, side))
        if self.refusal is not None:
            raise self.refusal
        return b"v=0\r\ns=answer from heron for " + side.value.encode() + b"\r\n"

    def echo(self, leg: MediaLeg, sdp: bytes) -> bytes:
        self.calls.append(("echo", leg.branch))
        if self.refusal is not None:
            raise self.refusal
        return b"v=0\r\ns=echo\r\n"

    def delete(self, leg: MediaLeg) -> None:
        self.calls.append(("delete", leg.branch))

    def names(self) -> list[str]:
        return [str(call[0]) for call in self.calls]


class OpenFlows:
    """Every WebSocket a test names is open."""

    def held(self, token: str) -> bool:
        return True

    def to(self, transport: str, host: str, port: int) -> object | None:
        return (transport, host, port)


class Proxy:
    """A forwarder with its transaction layer, seal and steering, driven by hand."""

    def __init__(self, policy: Relay = "webrtc") -> None:
        self.now = 1000.0
        self.layer = TransactionLayer()
        self.locality = Locality(["falcot.com"], [PROXY], "proxy.falcot.com")
        for transport in ("udp", "tcp", "wss"):
            self.locality.advertise(transport, PROXY)
        self.bridge = RecordingBridge()
        self.upstream: list[Response] = []
        self.forwarder = Forwarder(
            self.layer,
            self.locality,
            OpenFlows(),
            respond=self._respond,
            reply=lambda tx, request, status: self._respond(
                tx, request.response(status, to_tag="hr1")
            ),
            flush=lambda: None,
        )
        self.seal = DialogSeal(KEY)
        self.forwarder.seal = self.seal
        self.forwarder.steering = Steering(self.bridge, policy)

    def _respond(self, tx: int, response: Response) -> None:
        self.upstream.append(response)
        try:
            self._dispatch(self.layer.server_respond(tx, response, self.now))
        except SipError:
            pass  # as the server does: a response the layer cannot send is dropped

    def _dispatch(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, ResponseReceived):
                self.forwarder.response(event.tx, event.response, self.now)
            elif isinstance(event, TransactionTimeout):
                self.forwarder.branch_failed(event.tx, self.now)
            elif isinstance(event, TransactionTerminated):
                self.forwarder.terminated(event.tx)

    def request(
        self,
        method: str,
        targets: list[Target],
        *,
        body: bytes = b"",
        inbound: str = "udp",
        to_tag: str | None = None,
        from_tag: str = "caller",
        media: InDialog | None = None,
        cseq: int = 1,
    ) -> tuple[int, Request]:
        request = sip_request(method, "bob", body=body, to_tag=to_tag, from_tag=from_tag, cseq=cseq)
        events = self.layer.receive(request, inbound, False, CALLER, self.now)
        tx = events[0].tx  # type: ignore[attr-defined]
        self.forwarder.forward(tx, request, inbound, targets, self.now, media)
        return tx, request

    def sent(self) -> list[tuple[Request | Response, tuple[str, int]]]:
        """What went out since the last call, parsed again: each on the wire is whole."""
        sent = []
        for out in self.layer.messages_to_send():
            message = parse_datagram(out.data)
            assert isinstance(message, Request | Response)
            sent.append((message, out.destination))
        return sent

    def branches(self) -> list[tuple[Request, tuple[str, int]]]:
        return [(m, d) for m, d in self.sent() if isinstance(m, Request)]

    def answer(
        self, sent: Request, status: int, *, body: bytes = b"", to_tag: str = "callee"
    ) -> None:
        headers: tuple[tuple[str, str], ...] = ()
        if body:
            headers = (("Content-Type", "application/sdp"),)
        response = sent.response(status, to_tag=to_tag, headers=headers)
        response = Response(response.status, response.reason, response.headers, body)
        self._dispatch(self.layer.receive(response, "udp", False, ("192.0.2.99", 5060), self.now))

    def dialog_of(self, sent: Request, request: Request) -> InDialog | None:
        """What the server finds for an in-dialog ``request`` routed by ``sent``'s
        Record-Route: the seal opened, then the path and the side."""
        routed, ours = preprocess(request, self.locality.is_me)
        sealed = self.seal.dialog(routed, ours)
        assert sealed is not None
        return in_dialog(routed, *sealed)


def phone(name: str, transport: str = "udp") -> Target:
    uri = parse_uri(f"sip:{name}@192.0.2.{len(name)}:5060")
    assert isinstance(uri, SipUri)
    source = BindingSource(transport, uri.host, 5060, flow=f"flow-{name}")
    binding = Binding(
        aor="bob@falcot.com",
        contact=str(uri),
        expires_at=2e9,
        q=None,
        call_id="reg",
        cseq=1,
        received=source,
        updated_at=0.0,
    )
    return Target(uri, uri, binding)


def trunk() -> Target:
    uri = parse_uri("sip:bob@192.0.2.50:5060")
    return Target(uri, uri, None)


def record_route(request: Request) -> str:
    values = request.headers.get_all("Record-Route")
    assert values
    return values[0]


def in_dialog_request(
    invite: Request, method: str, *, from_callee: bool, body: bytes = b"", route: str = ""
) -> Request:
    """``method`` from either side of the dialog ``invite`` (as heron forwarded it) set up,
    routed by heron's Record-Route, or by ``route``."""
    headers = invite.headers.replace("Route", route or f"<{record_route(invite)[1:-1]}>")
    if body:
        headers = headers.replace("Content-Type", "application/sdp")
    uri = "sip:bob@192.0.2.7"
    if from_callee:
        headers = headers.replace("From", "<sip:bob@falcot.com>;tag=callee")
        headers = headers.replace("To", "<sip:roland@falcot.com>;tag=caller")
        uri = "sip:roland@192.0.2.7:5062"
    else:
        headers = headers.replace("To", "<sip:bob@falcot.com>;tag=callee")
    return Request(method, parse_uri(uri), headers, body)


def bridged_path(request: Request) -> MediaPath:
    """The media path heron's Record-Route names."""
    uri = parse_address(record_route(request)).uri
    assert isinstance(uri, SipUri)
    path = MediaPath.from_param(request.headers.call_id, uri.params.get("hm") or "")
    assert path is not None
    return path


# --- the decisions -------------------------------------------------------------------


def test_a_browser_sdp_is_webrtc_and_a_desk_phone_sdp_plain_rtp() -> None:
    assert sdp_transport(WEB_SDP) is Transport.WEBRTC
    assert sdp_transport(PLAIN_SDP) is Transport.RTP
    savpf_with_ice = PLAIN_SDP.replace(b"RTP/AVP", b"RTP/SAVPF") + b"a=ice-ufrag:x\r\n"
    assert sdp_transport(savpf_with_ice) is Transport.WEBRTC
    assert sdp_transport(PLAIN_SDP.replace(b"RTP/AVP", b"RTP/SAVPF")) is Transport.RTP
    assert sdp_transport(b"v=0\r\nm=audio\r\n") is Transport.RTP


def test_a_request_from_a_websocket_is_a_browser_whatever_its_sdp() -> None:
    request = Request("INVITE", parse_uri("sip:bob@falcot.com"))
    assert caller_transport(request, "wss") is Transport.WEBRTC
    assert caller_transport(request, "udp") is Transport.RTP


@pytest.mark.parametrize(
    ("policy", "caller", "callee", "expected"),
    [
        ("webrtc", Transport.WEBRTC, Transport.RTP, True),
        ("webrtc", Transport.RTP, Transport.WEBRTC, True),
        ("webrtc", Transport.RTP, Transport.RTP, False),
        ("always", Transport.RTP, Transport.RTP, True),
        ("always", Transport.WEBRTC, Transport.WEBRTC, False),
        ("webrtc", Transport.WEBRTC, Transport.WEBRTC, False),
        ("never", Transport.WEBRTC, Transport.RTP, False),
    ],
)
def test_media_relay_policy_and_two_browsers_never_bridged(
    policy: Relay, caller: Transport, callee: Transport, expected: bool
) -> None:
    assert relayed(policy, caller, callee) is expected


def test_the_record_route_param_names_the_leg_and_both_transports() -> None:
    path = MediaPath(MediaLeg("c", "17"), Transport.WEBRTC, Transport.RTP)
    assert path.param() == "wr.17"
    assert MediaPath.from_param("c", "wr.17") == path
    for bad in ("", "wr", "wr.", "xr.1", "w.1", "wrr.1"):
        assert MediaPath.from_param("c", bad) is None


@given(st.binary(max_size=2000))
def test_any_body_gives_a_transport_and_never_an_error(body: bytes) -> None:
    assert sdp_transport(body) in (Transport.RTP, Transport.WEBRTC)


@given(st.text(max_size=40))
def test_any_media_param_is_a_path_or_none(value: str) -> None:
    path = MediaPath.from_param("c", value)
    assert path is None or path.param() == value


@given(st.sampled_from(Transport), st.sampled_from(Transport), st.integers(1, 2**63))
def test_media_params_round_trip(caller: Transport, callee: Transport, leg: int) -> None:
    path = MediaPath(MediaLeg("c", str(leg)), caller, callee)
    assert MediaPath.from_param("c", path.param()) == path


# --- calls through the forwarder --------------------------------------------------------


def test_early_offer_from_a_browser_to_a_desk_phone_goes_through_the_bridge() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    [(invite, _)] = proxy.branches()
    leg = proxy.bridge.calls[0][1]
    assert proxy.bridge.calls == [("offer", leg, Side.CALLER, Transport.RTP)]
    assert invite.body == b"v=0\r\ns=offer from heron for caller\r\n"
    assert invite.headers.content_length == len(invite.body)
    assert f";hm=wr.{leg}" in record_route(invite)
    proxy.answer(invite, 180)
    proxy.answer(invite, 183, body=PLAIN_SDP)
    proxy.answer(invite, 200, body=PLAIN_SDP)
    assert proxy.bridge.calls[1:] == [("answer", leg, Side.CALLEE)]  # 183 and 200: once
    ok = proxy.upstream[-1]
    assert ok.status == 200
    assert ok.body == b"v=0\r\ns=answer from heron for callee\r\n"
    assert "delete" not in proxy.bridge.names()


def test_without_a_bridge_sdp_passes_untouched() -> None:
    proxy = Proxy()
    proxy.forwarder.steering = None
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    [(invite, _)] = proxy.branches()
    assert invite.body == WEB_SDP
    assert ";hm=" not in record_route(invite)


def test_two_desk_phones_stay_off_the_bridge_unless_always() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("deskphone")], body=PLAIN_SDP)
    [(invite, _)] = proxy.branches()
    assert invite.body == PLAIN_SDP and proxy.bridge.calls == []
    always = Proxy("always")
    always.request("INVITE", [trunk()], body=PLAIN_SDP)
    [(invite, _)] = always.branches()
    assert always.bridge.calls[0][2:] == (Side.CALLER, Transport.RTP)
    assert invite.body.startswith(b"v=0\r\ns=offer")


def test_late_offer_the_2xx_offers_and_the_ack_answers() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("browser", "wss")])
    [(invite, _)] = proxy.branches()
    assert proxy.bridge.calls == [] and not has_sdp(invite)
    proxy.answer(invite, 200, body=WEB_SDP)
    leg = bridged_path(invite)
    assert leg.callee is Transport.WEBRTC and leg.caller is Transport.RTP
    assert proxy.bridge.calls == [("offer", leg.leg.branch, Side.CALLEE, Transport.RTP)]
    assert proxy.upstream[-1].body == b"v=0\r\ns=offer from heron for callee\r\n"
    ack = in_dialog_request(invite, "ACK", from_callee=False, body=PLAIN_SDP)
    media = proxy.dialog_of(invite, ack)
    assert media == (leg, Side.CALLER)
    steering = proxy.forwarder.steering
    assert steering is not None
    forwarded = steering.ack(*media, ack)
    assert proxy.bridge.calls[-1] == ("answer", leg.leg.branch, Side.CALLER)
    assert forwarded.body == b"v=0\r\ns=answer from heron for caller\r\n"


def test_forking_one_branch_answers_the_others_legs_are_deleted() -> None:
    proxy = Proxy()
    targets = [phone("deskphone"), phone("softphone"), phone("browser", "wss")]
    proxy.request("INVITE", targets, body=WEB_SDP, inbound="wss")
    invites = [m for m, _ in proxy.branches()]
    offers = [c for c in proxy.bridge.calls if c[0] == "offer"]
    assert len(offers) == 2  # the browser branch: two WebRTC sides, not bridged
    assert ";hm=" not in record_route(invites[2])
    desk, soft = offers[0][1], offers[1][1]
    proxy.answer(invites[1], 200, body=PLAIN_SDP, to_tag="soft")
    assert ("answer", soft, Side.CALLEE) in proxy.bridge.calls
    assert ("delete", desk) in proxy.bridge.calls
    assert ("delete", soft) not in proxy.bridge.calls
    cancels = [m for m, _ in proxy.branches() if m.method == "CANCEL"]
    assert len(cancels) == 2


def test_cancel_deletes_the_pending_branch_legs() -> None:
    proxy = Proxy()
    tx, invite_in = proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    [(invite, _)] = proxy.branches()
    proxy.answer(invite, 183, body=PLAIN_SDP)
    cancel = Request("CANCEL", invite_in.uri, invite_in.headers.replace("CSeq", "1 CANCEL"))
    events = proxy.layer.receive(cancel, "wss", True, CALLER, proxy.now)
    proxy.forwarder.cancel(events[0].tx, cancel, proxy.now)  # type: ignore[attr-defined]
    assert proxy.bridge.names() == ["offer", "answer", "delete"]
    proxy.answer(invite, 487)
    assert proxy.bridge.names() == ["offer", "answer", "delete"]  # once
    assert proxy.upstream[-1].status == 487


def test_a_486_deletes_the_leg_and_goes_upstream() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    [(invite, _)] = proxy.branches()
    proxy.answer(invite, 486)
    assert proxy.bridge.names() == ["offer", "delete"]
    assert proxy.upstream[-1].status == 486


def test_a_refused_offer_answers_the_caller_with_the_bridge_status() -> None:
    proxy = Proxy()
    proxy.bridge.refusal = MediaRefused(503, "no ports left")
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    assert proxy.branches() == []
    assert [r.status for r in proxy.upstream] == [503]
    assert proxy.bridge.names() == ["offer", "delete"]


def test_a_branch_that_times_out_loses_its_leg_and_the_caller_gets_a_whole_408() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    proxy.branches()
    proxy.now += 64.0
    proxy._dispatch(proxy.layer.handle_timer(proxy.now))
    assert proxy.bridge.names() == ["offer", "delete"]
    timeout = proxy.upstream[-1]
    assert timeout.status == 408 and timeout.headers.call_id == "call-1@192.0.2.7"


def _established(proxy: Proxy) -> tuple[Request, MediaPath]:
    proxy.request("INVITE", [phone("deskphone")], body=WEB_SDP, inbound="wss")
    [(invite, _)] = proxy.branches()
    proxy.answer(invite, 200, body=PLAIN_SDP)
    proxy.sent()
    path = bridged_path(invite)
    proxy.bridge.calls.clear()
    return invite, path


def _from_callee(proxy: Proxy, invite: Request, method: str, body: bytes = b"") -> InDialog:
    """What the server finds for ``method`` sent by the callee in the dialog."""
    request = in_dialog_request(invite, method, from_callee=True, body=body)
    media = proxy.dialog_of(invite, request)
    assert media is not None
    return media


def test_reinvite_hold_from_the_callee_is_offered_toward_the_browser() -> None:
    proxy = Proxy()
    invite, path = _established(proxy)
    media = _from_callee(proxy, invite, "INVITE")
    assert media == (path, Side.CALLEE)
    hold = PLAIN_SDP + b"a=sendonly\r\n"
    proxy.request(
        "INVITE",
        [trunk()],
        body=hold,
        to_tag="caller",
        from_tag="callee",
        media=media,
        cseq=2,
    )
    [(reinvite, _)] = proxy.branches()
    assert proxy.bridge.calls == [("offer", path.leg.branch, Side.CALLEE, Transport.WEBRTC)]
    assert reinvite.body == b"v=0\r\ns=offer from heron for callee\r\n"
    assert "Record-Route" not in reinvite.headers
    proxy.answer(reinvite, 200, body=WEB_SDP, to_tag="caller")
    assert proxy.bridge.calls[-1] == ("answer", path.leg.branch, Side.CALLER)
    assert proxy.upstream[-1].body == b"v=0\r\ns=answer from heron for caller\r\n"


def test_a_reinvite_in_a_dialog_the_bridge_never_joined_stays_off_it() -> None:
    """Two web phones' call is not bridged; the hold re-INVITE from a browser toward a
    contact with no binding (the other browser's Contact) must not open a leg now."""
    proxy = Proxy()
    hold = WEB_SDP + b"a=sendonly\r\n"
    proxy.request("INVITE", [trunk()], body=hold, to_tag="callee", inbound="wss", cseq=2)
    [(reinvite, _)] = proxy.branches()
    assert reinvite.body == hold
    assert proxy.bridge.calls == []


def test_a_refused_reoffer_keeps_the_dialog_leg() -> None:
    proxy = Proxy()
    _, path = _established(proxy)
    proxy.bridge.refusal = MediaRefused(488, "no common codec")
    proxy.request(
        "UPDATE", [trunk()], body=PLAIN_SDP, to_tag="callee", media=(path, Side.CALLER), cseq=3
    )
    assert [r.status for r in proxy.upstream][-1] == 488
    assert proxy.bridge.names() == ["offer"]


def test_update_with_sdp_from_the_caller_and_its_answer() -> None:
    proxy = Proxy()
    _, path = _established(proxy)
    proxy.request(
        "UPDATE", [trunk()], body=WEB_SDP, to_tag="callee", media=(path, Side.CALLER), cseq=3
    )
    [(update, _)] = proxy.branches()
    proxy.answer(update, 200, body=PLAIN_SDP)
    assert proxy.bridge.calls == [
        ("offer", path.leg.branch, Side.CALLER, Transport.RTP),
        ("answer", path.leg.branch, Side.CALLEE),
    ]


def test_reinvite_answered_481_ends_the_dialog_leg_and_491_keeps_it() -> None:
    proxy = Proxy()
    _, path = _established(proxy)
    proxy.request(
        "INVITE", [trunk()], body=WEB_SDP, to_tag="callee", media=(path, Side.CALLER), cseq=4
    )
    [(reinvite, _)] = proxy.branches()
    proxy.answer(reinvite, 491)
    assert "delete" not in proxy.bridge.names()
    proxy.request(
        "INVITE", [trunk()], body=WEB_SDP, to_tag="callee", media=(path, Side.CALLER), cseq=5
    )
    [reinvite] = [m for m, _ in proxy.branches() if m.method == "INVITE"]
    proxy.answer(reinvite, 481)
    assert proxy.bridge.names()[-1] == "delete"


def test_a_bye_from_either_side_names_the_leg_to_delete() -> None:
    """The server deletes the leg a sealed BYE names before forwarding it (the sipp
    interop test sees the ports freed); the forwarder leaves the bridge alone."""
    proxy = Proxy()
    invite, path = _established(proxy)
    from_callee = _from_callee(proxy, invite, "BYE")
    from_caller = proxy.dialog_of(invite, in_dialog_request(invite, "BYE", from_callee=False))
    assert from_callee == (path, Side.CALLEE)
    assert from_caller == (path, Side.CALLER)
    proxy.request("BYE", [trunk()], to_tag="caller", from_tag="callee", media=from_callee, cseq=9)
    [(bye, _)] = proxy.branches()
    assert bye.method == "BYE" and proxy.bridge.calls == []


def test_the_answered_leg_outlives_the_invite_transaction_and_no_other_does() -> None:
    proxy = Proxy()
    proxy.request("INVITE", [phone("deskphone"), phone("softphone")], body=WEB_SDP, inbound="wss")
    invites = [m for m, _ in proxy.branches()]
    proxy.answer(invites[0], 200, body=PLAIN_SDP)
    proxy.now += 64.0
    proxy._dispatch(proxy.layer.handle_timer(proxy.now))
    deleted = {c[1] for c in proxy.bridge.calls if c[0] == "delete"}
    offered = [c[1] for c in proxy.bridge.calls if c[0] == "offer"]
    assert deleted == {offered[1]}


def test_a_forged_media_param_breaks_the_seal() -> None:
    proxy = Proxy()
    invite, path = _established(proxy)
    forged = record_route(invite)[1:-1].replace(f"hm={path.param()}", "hm=wr.999")
    request = in_dialog_request(invite, "BYE", from_callee=False, route=f"<{forged}>")
    routed, ours = preprocess(request, proxy.locality.is_me)
    assert proxy.seal.dialog(routed, ours) is None


def test_a_fork_drops_the_requests_once_its_final_response_went_up() -> None:
    """Issue 15: a fork lingers until its server transaction's Timer L; it must not hold
    the received request that long, yet a 2xx retransmission still goes upstream."""
    proxy = Proxy()
    proxy.forwarder.steering = None
    _, invite_in = proxy.request("INVITE", [trunk(), phone("deskphone")])
    first, second = [m for m, _ in proxy.branches()]
    assert holds(proxy.forwarder, invite_in)
    proxy.answer(first, 200)
    assert not holds(proxy.forwarder, invite_in)
    assert [m.method for m, _ in proxy.branches()] == ["CANCEL"]  # built from its request
    proxy.answer(first, 200)  # the UAS retransmits its 2xx
    proxy.answer(second, 487)
    assert [r.status for r in proxy.upstream] == [200, 200]
