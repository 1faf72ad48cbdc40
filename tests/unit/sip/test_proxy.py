"""What the stateful proxy does to requests and responses (RFC 3261 §16), sans-IO.

Requests and responses come from text through the real parser, as they would
from the wire. The proxy is ``proxy.falcot.com`` on ports 5060 (UDP, TCP) and
5061 (TLS); ``is_me`` recognises it by host and port, as the server does.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from heron.sip import (
    MAGIC_COOKIE,
    HeaderName,
    NameAddr,
    Request,
    Response,
    SipLocalError,
    SipUri,
    Uri,
    Via,
    parse_address,
    parse_datagram,
    parse_uri,
    parse_via,
    reason_phrase,
)
from heron.sip.grammar import is_token
from heron.sip.proxy import (
    BranchState,
    ResponseContext,
    branch_id,
    forward_request,
    is_loop,
    loop_key,
    our_record_route,
    preprocess_routes,
)

PROXY = "proxy.falcot.com"
OURS = {(PROXY, 5060), (PROXY, 5061)}
OUR_SENT_BY = (f"{PROXY}:5060", f"{PROXY}:5061")
CLIENT_VIA = "SIP/2.0/UDP 192.0.2.4:5060;rport;branch=z9hG4bKnashds7"
OTHER_PROXY_VIA = "SIP/2.0/UDP p2.example.org:5060;branch=z9hG4bKp2x7"
CALL_ID = "a84b4c76e66710@pc33.falcot.com"
SDP = b"v=0\r\no=roland 2890844526 2890844526 IN IP4 192.0.2.4\r\ns=-\r\nc=IN IP4 192.0.2.4\r\n"


def is_me(uri: Uri) -> bool:
    """Host and port of one of our listeners, the user part ignored (the server's rule)."""
    return isinstance(uri, SipUri) and (uri.host.lower(), uri.port or 5060) in OURS


def request(
    method: str = "INVITE",
    *,
    uri: str = "sip:bob@falcot.com",
    vias: Iterable[str] = (CLIENT_VIA,),
    routes: Iterable[str] = (),
    record_routes: Iterable[str] = (),
    max_forwards: int | None = 70,
    to_tag: str | None = None,
    from_tag: str = "456248",
    call_id: str = CALL_ID,
    cseq: int = 1,
    extra: Iterable[str] = (),
    body: bytes = b"",
) -> Request:
    """A request as the previous hop sent it."""
    lines = [
        f"{method} {uri} SIP/2.0",
        *(f"Via: {via}" for via in vias),
        *([] if max_forwards is None else [f"Max-Forwards: {max_forwards}"]),
        *(f"Route: {route}" for route in routes),
        *(f"Record-Route: {rr}" for rr in record_routes),
        "To: Bob <sip:bob@falcot.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"From: Roland <sip:roland@falcot.com>;tag={from_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        *extra,
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    message = parse_datagram("\r\n".join(lines).encode() + body)
    assert isinstance(message, Request)
    return message


def response(status: int, *extra: str, to_tag: str = "b0b", method: str = "INVITE") -> Response:
    """A response from a branch, our Via already popped (§16.7 step 3)."""
    tag = "" if status == 100 else f";tag={to_tag}"
    lines = [
        f"SIP/2.0 {status} {reason_phrase(status)}",
        f"Via: {CLIENT_VIA}",
        f"To: Bob <sip:bob@falcot.com>{tag}",
        "From: Roland <sip:roland@falcot.com>;tag=456248",
        f"Call-ID: {CALL_ID}",
        f"CSeq: 1 {method}",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_datagram("\r\n".join(lines).encode())
    assert isinstance(message, Response)
    return message


def our_via(branch: str, port: int = 5060) -> Via:
    return parse_via(f"SIP/2.0/UDP {PROXY}:{port};branch={branch}")


def forwarded(received: Request, fork: int = 0, target: str | None = None) -> Request:
    """``received`` as the proxy sends it on branch ``fork``."""
    uri = received.uri if target is None else parse_uri(target)
    return forward_request(received, target=uri, via=our_via(branch_id(received, fork)))


def uris(addresses: Iterable[NameAddr]) -> list[str]:
    return [str(a.uri) for a in addresses]


def untouched(message: Request, *names: str) -> list[tuple[str, str]]:
    """Every field line but ``names``, as spelled and in order."""
    skip = {n.lower() for n in names}
    return [(h.name, h.value) for h in message.headers if h.key not in skip]


def fork(method: str = "INVITE", branches: int = 3) -> ResponseContext:
    context = ResponseContext(method)
    for n in range(1, branches + 1):
        context.add_branch(f"b{n}")
    return context


# RFC 3261 §16.4: route information pre-processing -----------------------------------


def test_rfc3261_16_4_our_topmost_route_is_removed() -> None:
    received = request(routes=(f"<sip:{PROXY};lr>", "<sip:p2.example.org;lr>"))

    routed = preprocess_routes(received, is_me)

    assert uris(routed.headers.routes) == ["sip:p2.example.org;lr"]
    assert str(routed.uri) == "sip:bob@falcot.com"


def test_rfc3261_16_4_our_route_sharing_a_line_with_the_next_is_removed_alone() -> None:
    received = request(routes=(f"<sip:{PROXY}:5060;lr>, <sip:p2.example.org;lr>",))

    routed = preprocess_routes(received, is_me)

    assert uris(routed.headers.routes) == ["sip:p2.example.org;lr"]


def test_rfc5658_double_record_route_both_of_our_values_are_removed() -> None:
    received = request(
        routes=(
            f"<sips:{PROXY}:5061;transport=tls;lr>",
            f"<sip:{PROXY}:5060;lr>",
            "<sip:p2.example.org;lr>",
        )
    )

    routed = preprocess_routes(received, is_me)

    assert uris(routed.headers.routes) == ["sip:p2.example.org;lr"]


def test_rfc3261_16_4_a_route_to_someone_else_is_kept() -> None:
    received = request(routes=("<sip:p2.example.org;lr>", f"<sip:{PROXY};lr>"))

    routed = preprocess_routes(received, is_me)

    assert uris(routed.headers.routes) == ["sip:p2.example.org;lr", f"sip:{PROXY};lr"]
    assert routed.uri == received.uri


def test_rfc3261_16_4_a_request_without_route_is_unchanged() -> None:
    received = request()

    assert preprocess_routes(received, is_me) == received


def test_rfc3261_16_4_strict_router_last_route_becomes_the_request_uri() -> None:
    # The strict router put our Record-Route URI in the Request-URI and the
    # Request-URI it was given at the end of the Route set.
    received = request(
        method="BYE",
        uri=f"sip:{PROXY};lr",
        routes=("<sip:p2.example.org;lr>", "<sip:bob@192.0.2.9:5062>"),
        to_tag="b0b",
    )

    routed = preprocess_routes(received, is_me)

    assert str(routed.uri) == "sip:bob@192.0.2.9:5062"
    assert uris(routed.headers.routes) == ["sip:p2.example.org;lr"]
    assert untouched(routed, "route") == untouched(received, "route")


def test_rfc3261_16_4_strict_router_with_a_single_route_leaves_no_route() -> None:
    received = request(method="BYE", uri=f"sip:{PROXY};lr", routes=("<sip:bob@192.0.2.9:5062>",))

    routed = preprocess_routes(received, is_me)

    assert str(routed.uri) == "sip:bob@192.0.2.9:5062"
    assert routed.headers.routes == ()


def test_rfc3261_16_4_a_request_for_us_without_route_keeps_its_request_uri() -> None:
    received = request(method="OPTIONS", uri=f"sip:{PROXY}")

    assert preprocess_routes(received, is_me).uri == received.uri


def test_rfc3261_16_4_a_user_at_our_address_is_not_a_strict_router_rewrite() -> None:
    # A UA whose domain is the proxy's own host name, with the proxy as its
    # outbound proxy: the preloaded Route is ours and is removed, but
    # sip:bob@proxy.falcot.com was never a Record-Route value of ours, so the
    # Request-URI must stay (RFC 3261 §16.4: only "a value this proxy
    # previously placed into a Record-Route header field" is replaced).
    received = request(uri=f"sip:bob@{PROXY}", routes=(f"<sip:{PROXY};lr>",))

    routed = preprocess_routes(received, is_me)

    assert str(routed.uri) == f"sip:bob@{PROXY}"
    assert routed.headers.routes == ()


# RFC 3261 §16.3 step 4 and §16.6 step 8: branches and loops ----------------------


def test_rfc3261_16_6_step8_branch_has_the_magic_cookie_and_is_a_token() -> None:
    branch = branch_id(request(), 0)

    assert branch.startswith(MAGIC_COOKIE)
    assert len(branch) > len(MAGIC_COOKIE)
    assert is_token(branch)
    assert our_via(branch).has_rfc3261_branch


def test_rfc3261_16_6_step8_each_fork_has_its_own_branch() -> None:
    received = request()

    branches = {branch_id(received, fork) for fork in range(5)}

    assert len(branches) == 5


def test_rfc3261_16_6_step8_a_retransmission_gets_the_same_branch() -> None:
    assert branch_id(request(), 3) == branch_id(request(), 3)


def test_rfc3261_16_6_step8_cancel_shares_the_branch_of_its_invite() -> None:
    # "the request method MUST NOT be included in the calculation": a CANCEL
    # carries the INVITE's Request-URI, top Via, Call-ID, tags and CSeq number.
    invite = request("INVITE")

    assert branch_id(request("CANCEL"), 2) == branch_id(invite, 2)
    assert loop_key(request("ACK")) == loop_key(invite)


@pytest.mark.parametrize(
    "change",
    [
        {"uri": "sip:bob-mobile@falcot.com"},
        {"call_id": "other@pc33.falcot.com"},
        {"from_tag": "99"},
        {"to_tag": "b0b"},
        {"cseq": 2},
        {"extra": ("Proxy-Require: foo",)},
    ],
    ids=["request-uri", "call-id", "from-tag", "to-tag", "cseq", "proxy-require"],
)
def test_rfc3261_16_6_step8_loop_key_depends_on_what_routing_depends_on(
    change: dict[str, object],
) -> None:
    assert loop_key(request(**change)) != loop_key(request())  # type: ignore[arg-type]


def test_rfc3261_16_6_step8_loop_key_ignores_max_forwards() -> None:
    # Every hop lowers it, so a loop would never match if it counted.
    assert loop_key(request(max_forwards=40)) == loop_key(request(max_forwards=70))


def test_rfc3261_16_3_step4_a_request_without_our_via_is_not_a_loop() -> None:
    assert not is_loop(request(vias=(OTHER_PROXY_VIA, CLIENT_VIA)), OUR_SENT_BY)


def test_rfc3261_16_3_step4_our_sent_by_with_a_foreign_branch_is_not_a_loop() -> None:
    via = f"SIP/2.0/UDP {PROXY}:5060;branch=z9hG4bKsomeoneelse"

    assert not is_loop(request(vias=(OTHER_PROXY_VIA, via, CLIENT_VIA)), OUR_SENT_BY)


def test_rfc3261_16_3_step4_a_request_sent_straight_back_to_us_is_a_loop() -> None:
    received = request()
    sent = forwarded(received)  # the target resolved to ourselves

    assert is_loop(sent, OUR_SENT_BY)


def test_rfc3261_16_3_step4_a_request_back_through_another_proxy_is_a_loop() -> None:
    received = request()
    sent = forwarded(received)
    # p2 routes it back to us unchanged but for its own Via and Max-Forwards.
    back = sent.push_via(parse_via(OTHER_PROXY_VIA)).decrement_max_forwards()

    assert is_loop(back, OUR_SENT_BY)


def test_rfc3261_16_3_step4_a_spiral_with_a_new_request_uri_is_not_a_loop() -> None:
    received = request()
    sent = forwarded(received)
    # p2 retargets bob to his mobile, which is ours again: a spiral.
    back = forward_request(
        sent, target=parse_uri("sip:bob-mobile@falcot.com"), via=parse_via(OTHER_PROXY_VIA)
    )

    assert not is_loop(back, OUR_SENT_BY)


# RFC 3261 §16.6: the request forwarded on a branch ------------------------------


def test_rfc3261_16_6_step2_request_uri_is_the_target() -> None:
    sent = forwarded(request(), target="sip:bob@192.0.2.9:5062;transport=tcp")

    assert str(sent.uri) == "sip:bob@192.0.2.9:5062;transport=tcp"
    assert sent.encode().startswith(b"INVITE sip:bob@192.0.2.9:5062;transport=tcp SIP/2.0\r\n")


def test_rfc3261_16_6_step3_max_forwards_is_decremented() -> None:
    assert forwarded(request(max_forwards=70)).headers.max_forwards == 69
    assert forwarded(request(max_forwards=1)).headers.max_forwards == 0


def test_rfc3261_16_6_step3_max_forwards_is_70_when_absent() -> None:
    sent = forwarded(request(max_forwards=None))

    assert sent.headers.get_all(HeaderName.MAX_FORWARDS) == ("70",)


def test_rfc3261_16_3_step3_max_forwards_zero_is_never_forwarded() -> None:
    with pytest.raises(SipLocalError):
        forwarded(request(max_forwards=0))


def test_rfc3261_16_6_step4_record_route_is_inserted_topmost_in_order() -> None:
    received = request(record_routes=("<sip:p0.example.org;lr>",))
    outbound = our_record_route(PROXY, 5061, "tls")
    inbound = our_record_route(PROXY, 5060, "udp")

    sent = forward_request(
        received,
        target=received.uri,
        via=our_via("z9hG4bKhrx.0"),
        record_route=[outbound, inbound],
    )

    assert uris(sent.headers.record_routes) == [
        f"sips:{PROXY}:5061;transport=tls;lr",
        f"sip:{PROXY}:5060;lr",
        "sip:p0.example.org;lr",
    ]


def test_rfc3261_16_6_step4_no_record_route_is_added_unless_asked() -> None:
    assert HeaderName.RECORD_ROUTE not in forwarded(request()).headers


def test_rfc3327_5_3_path_values_become_routes_ahead_of_existing_ones() -> None:
    received = request(routes=("<sip:p9.example.org;lr>",))

    sent = forward_request(
        received,
        target=parse_uri("sip:roland@192.0.2.4:5060"),
        via=our_via("z9hG4bKhrx.0"),
        path=("<sip:edge1.falcot.com;lr>", "<sip:edge2.falcot.com;lr>"),
    )

    assert uris(sent.headers.routes) == [
        "sip:edge1.falcot.com;lr",
        "sip:edge2.falcot.com;lr",
        "sip:p9.example.org;lr",
    ]


def test_rfc3327_5_3_path_without_existing_route() -> None:
    sent = forward_request(
        request(),
        target=parse_uri("sip:roland@192.0.2.4:5060"),
        via=our_via("z9hG4bKhrx.0"),
        path=("<sip:edge1.falcot.com;lr>",),
    )

    assert uris(sent.headers.routes) == ["sip:edge1.falcot.com;lr"]


def test_rfc3261_16_6_step8_our_via_goes_on_top() -> None:
    received = request(vias=(OTHER_PROXY_VIA, CLIENT_VIA))
    via = our_via(branch_id(received, 1))

    sent = forward_request(received, target=received.uri, via=via)

    assert [str(v) for v in sent.headers.vias] == [
        str(via),
        *(str(v) for v in received.headers.vias),
    ]
    assert sent.headers.top_via.branch == branch_id(received, 1)


def test_rfc3261_16_6_body_and_other_fields_are_untouched() -> None:
    received = request(
        routes=("<sip:p9.example.org;lr>",),
        extra=("X-Falcot:  keep   me ", "Supported: 100rel, timer", "i-Unknown: x"),
        body=SDP,
    )

    sent = forward_request(
        received,
        target=parse_uri("sip:bob@192.0.2.9"),
        via=our_via("z9hG4bKhrx.0"),
        record_route=[our_record_route(PROXY, 5060, "udp")],
    )
    wire = parse_datagram(sent.encode())

    assert isinstance(wire, Request)
    assert wire.body == SDP
    changed = ("via", "max-forwards", "record-route")
    assert untouched(wire, *changed) == untouched(received, *changed)
    assert received.headers.max_forwards == 70  # the received request is not altered
    assert len(received.headers.vias) == 1


# RFC 3261 §16.6 step 4: our Record-Route values ------------------------------------


def test_rfc3261_16_6_step4_record_route_over_udp_is_loose_without_transport() -> None:
    address = our_record_route(PROXY, 5060, "udp")

    assert isinstance(address.uri, SipUri)
    assert address.uri.scheme == "sip"
    assert (address.uri.host, address.uri.port) == (PROXY, 5060)
    assert address.uri.lr
    assert address.uri.transport is None


@pytest.mark.parametrize("transport", ["tcp", "ws", "wss"])
def test_rfc3261_16_6_step4_record_route_names_its_transport(transport: str) -> None:
    address = our_record_route(PROXY, 8443, transport)

    assert isinstance(address.uri, SipUri)
    assert address.uri.scheme == "sip"
    assert address.uri.transport == transport
    assert address.uri.lr
    assert address.uri.port == 8443


def test_rfc3261_16_6_step4_record_route_for_tls_is_sips() -> None:
    address = our_record_route(PROXY, 5061, "tls")

    assert isinstance(address.uri, SipUri)
    assert address.uri.scheme == "sips"
    assert address.uri.lr
    assert (address.uri.host, address.uri.port) == (PROXY, 5061)


def test_rfc3261_16_6_step4_record_route_round_trips_and_is_recognised_as_ours() -> None:
    for transport, port in (("udp", 5060), ("tcp", 5060), ("tls", 5061)):
        address = our_record_route(PROXY, port, transport)
        assert parse_address(str(address)) == address
        assert is_me(address.uri)


def test_rfc3261_16_6_step4_record_route_with_an_ipv6_host() -> None:
    address = our_record_route("[2001:db8::1]", 5060, "tcp")

    assert isinstance(address.uri, SipUri)
    assert (address.uri.host, address.uri.port) == ("[2001:db8::1]", 5060)
    assert str(address) == "<sip:[2001:db8::1]:5060;transport=tcp;lr>"


# RFC 3261 §16.7: responses across the branches of a fork --------------------------


def test_rfc3261_16_7_step3_100_trying_is_absorbed() -> None:
    context = fork()

    assert context.received("b1", response(100)) == ([], [])
    assert context.branches["b1"] is BranchState.PROCEEDING


def test_rfc3261_16_7_step5_other_provisionals_are_forwarded() -> None:
    context = fork()
    ringing = response(180)

    assert context.received("b1", ringing) == ([ringing], [])
    assert context.received("b2", response(183)) == ([response(183)], [])


def test_rfc3261_16_7_step5_the_first_2xx_is_forwarded_and_pending_branches_cancelled() -> None:
    context = fork(branches=3)
    context.received("b3", response(180))
    ok = response(200)

    upstream, cancel = context.received("b1", ok)

    assert upstream == [ok]
    assert sorted(cancel) == ["b2", "b3"]
    assert context.final_sent


def test_rfc3261_16_7_step5_a_done_branch_is_not_cancelled() -> None:
    context = fork(branches=3)
    assert context.received("b2", response(486)) == ([], [])

    _, cancel = context.received("b1", response(200))

    assert cancel == ["b3"]


def test_rfc3261_16_7_step5_a_later_2xx_to_invite_is_still_forwarded() -> None:
    context = fork(branches=2)
    context.received("b1", response(200, to_tag="first"))
    second = response(200, to_tag="second")

    upstream, _ = context.received("b2", second)

    assert upstream == [second]


def test_rfc3261_16_7_step5_a_retransmitted_2xx_to_invite_is_forwarded() -> None:
    context = fork(branches=1)
    ok = response(200)
    context.received("b1", ok)

    assert context.received("b1", ok) == ([ok], [])


def test_rfc3261_16_10_each_branch_is_cancelled_once_after_a_second_2xx() -> None:
    # b3 was cancelled by b1's 200; b2's 200 crossed that CANCEL. A second
    # CANCEL for b3 would reuse the branch of the first, still in use.
    context = fork(branches=3)
    _, first = context.received("b1", response(200, to_tag="first"))

    _, again = context.received("b2", response(200, to_tag="second"))

    assert sorted(first) == ["b2", "b3"]
    assert again == []


def test_rfc3261_16_10_each_branch_is_cancelled_once_after_a_second_6xx() -> None:
    context = fork(branches=3)
    _, first = context.received("b1", response(603))

    _, again = context.received("b2", response(600))

    assert sorted(first) == ["b2", "b3"]
    assert again == []


def test_rfc3261_16_7_step5_non_invite_2xx_cancels_nothing() -> None:
    context = fork("MESSAGE", branches=2)
    ok = response(200, method="MESSAGE")

    assert context.received("b1", ok) == ([ok], [])


def test_rfc3261_16_7_step5_a_second_2xx_to_non_invite_is_not_forwarded() -> None:
    # "After a final response has been sent on the server transaction, the
    # following responses MUST be forwarded immediately: Any 2xx response to
    # an INVITE request. A stateful proxy MUST NOT immediately forward any
    # other responses."
    context = fork("MESSAGE", branches=2)
    context.received("b1", response(200, to_tag="laptop", method="MESSAGE"))

    upstream, _ = context.received("b2", response(202, to_tag="phone", method="MESSAGE"))

    assert upstream == []


def test_rfc3261_16_7_step5_no_provisional_after_the_final_response() -> None:
    context = fork(branches=2)
    context.received("b1", response(200))

    assert context.received("b2", response(180)) == ([], [])


def test_rfc3261_16_7_step6_final_response_waits_for_every_branch() -> None:
    context = fork(branches=3)
    moved = response(302, "Contact: <sip:bob@voicemail.falcot.com>")

    assert context.received("b1", response(503)) == ([], [])
    assert context.received("b2", moved) == ([], [])
    upstream, cancel = context.received("b3", response(486))

    assert upstream == [moved]  # the lowest class
    assert cancel == []
    assert all(state is BranchState.DONE for state in context.branches.values())


@pytest.mark.parametrize(
    ("statuses", "best"),
    [
        ((486, 404, 500), 4),
        ((500, 404, 302), 3),
        ((302, 603, 404), 6),
        ((404, 500, 600), 6),
        ((408, 504, 503), 4),
    ],
)
def test_rfc3261_16_7_step6_best_response_class(statuses: tuple[int, ...], best: int) -> None:
    context = fork(branches=len(statuses))
    upstream: list[Response] = []

    for n, status in enumerate(statuses, 1):
        upstream += context.received(f"b{n}", response(status))[0]

    assert len(upstream) == 1
    assert upstream[0].status // 100 == best


def test_rfc3261_16_7_step5_6xx_cancels_pending_branches_and_waits_for_them() -> None:
    context = fork(branches=3)
    decline = response(603)

    upstream, cancel = context.received("b1", decline)
    assert upstream == []
    assert sorted(cancel) == ["b2", "b3"]

    assert context.received("b2", response(487)) == ([], [])
    upstream, _ = context.received("b3", response(487))
    assert upstream == [decline]


def test_rfc3261_16_7_step5_a_2xx_after_a_6xx_still_wins() -> None:
    context = fork(branches=2)
    context.received("b1", response(603))
    ok = response(200)

    upstream, _ = context.received("b2", ok)

    assert upstream == [ok]
    assert context.timed_out("b2") == []


def test_rfc3261_16_7_step6_503_goes_up_as_500() -> None:
    context = fork(branches=2)
    context.received("b1", response(503, "Retry-After: 30"))

    upstream, _ = context.received("b2", response(504))

    (answer,) = upstream
    assert answer.status == 500
    assert answer.reason == "Server Internal Error"
    assert answer.encode().startswith(b"SIP/2.0 500 Server Internal Error\r\n")


def test_rfc3261_16_7_step6_a_503_that_is_not_chosen_is_left_alone() -> None:
    context = fork(branches=2)
    context.received("b1", response(503))

    upstream, _ = context.received("b2", response(486))

    assert [r.status for r in upstream] == [486]


def test_rfc3261_16_7_step7_challenges_of_every_branch_are_aggregated() -> None:
    context = fork(branches=3)
    context.received("b1", response(401, 'WWW-Authenticate: Digest realm="falcot.com", nonce="a"'))
    context.received("b2", response(407, 'Proxy-Authenticate: Digest realm="p2", nonce="b"'))

    upstream, _ = context.received(
        "b3", response(401, 'WWW-Authenticate: Digest realm="example.org", nonce="c"')
    )

    (answer,) = upstream
    assert answer.status == 401
    realms = sorted(c.param("realm") or "" for c in answer.headers.www_authenticates)
    assert realms == ["example.org", "falcot.com"]
    assert [c.param("realm") for c in answer.headers.proxy_authenticates] == ["p2"]


def test_rfc3261_16_7_step7_challenge_values_are_copied_without_modification() -> None:
    challenge = 'Digest realm="falcot.com", nonce="a1b2", algorithm=SHA-256, qop="auth"'
    other = 'Digest  realm="p2",nonce="x"'
    context = fork(branches=2)
    context.received("b1", response(407, f"Proxy-Authenticate: {challenge}"))

    upstream, _ = context.received("b2", response(407, f"Proxy-Authenticate: {other}"))

    (answer,) = upstream
    values = answer.headers.get_all(HeaderName.PROXY_AUTHENTICATE)
    assert sorted(values) == sorted((challenge, other))


def test_rfc3261_16_8_a_timed_out_branch_counts_as_408() -> None:
    context = fork(branches=2)

    assert context.timed_out("b1") == []
    upstream, _ = context.received("b2", response(500))

    assert [r.status for r in upstream] == [408]


def test_rfc3261_16_8_a_lone_timed_out_branch_answers_408() -> None:
    context = fork(branches=1)
    context.received("b1", response(180))

    (answer,) = context.timed_out("b1")

    assert answer.status == 408
    assert context.final_sent


def test_rfc3261_16_7_nothing_is_forwarded_twice() -> None:
    context = fork(branches=2)
    context.received("b1", response(486))
    upstream, _ = context.received("b2", response(404))
    assert len(upstream) == 1

    assert context.received("b2", response(404)) == ([], [])  # retransmission
    assert context.received("b1", response(486)) == ([], [])
    assert context.received("b1", response(180)) == ([], [])
    assert context.timed_out("b1") == []
    assert context.timed_out("b2") == []


def test_rfc3261_16_7_a_final_response_after_the_2xx_is_not_forwarded() -> None:
    context = fork(branches=2)
    context.received("b1", response(200))

    assert context.received("b2", response(487)) == ([], [])
    assert context.timed_out("b2") == []


def test_rfc3261_16_7_a_response_on_an_unknown_branch_is_dropped() -> None:
    context = fork(branches=1)

    assert context.received("elsewhere", response(486)) == ([], [])
    assert context.received("elsewhere", response(180)) == ([], [])
    assert not context.final_sent
