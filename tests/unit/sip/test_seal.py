"""The dialog seal in heron's Record-Route, the destination policy and where registered
phones are: what lets an in-dialog request or an ACK through, sans-IO."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.destinations import Destinations
from heron.sip import Request, SipUri, Uri, parse_datagram, parse_uri
from heron.sip.bindings import BindingCache
from heron.sip.proxy import our_record_route, preprocess
from heron.sip.registrar import Binding, BindingSource
from heron.sip.seal import CONTACT_PARAM, SEAL_PARAM, DialogSeal, identity
from heron.store.memory import MemoryLocationStore

KEY = b"k" * 32
PROXY = "proxy.falcot.com"


def is_me(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.host == PROXY


def message(
    method: str,
    *,
    from_: str = "sip:roland@falcot.com",
    from_tag: str = "caller",
    to: str = "sip:bob@example.com",
    to_tag: str | None = None,
    call_id: str = "call-1",
    routes: tuple[str, ...] = (),
    contact: str | None = "<sip:roland@192.168.1.20:5062>",
) -> Request:
    lines = [
        f"{method} sip:bob@192.0.2.9 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKx",
        f"From: <{from_}>;tag={from_tag}",
        f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        *(f"Route: {route}" for route in routes),
        *([f"Contact: {contact}"] if contact else []),
        "Content-Length: 0",
    ]
    parsed = parse_datagram(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(parsed, Request)
    return parsed


def sealed_route(seal: DialogSeal, invite: Request) -> str:
    return str(our_record_route(PROXY, 5060, "udp", seal.params(invite)))


def ours(request: Request) -> tuple[Request, tuple[Uri, ...]]:
    return preprocess(request, is_me)


def test_both_sides_of_a_sealed_dialog_pass() -> None:
    seal = DialogSeal(KEY)
    route = sealed_route(seal, message("INVITE"))
    assert f";{SEAL_PARAM}=" in route and f";{CONTACT_PARAM}=" in route
    from_caller = message("BYE", to_tag="callee", routes=(route,))
    from_callee = message(
        "BYE",
        from_="sip:bob@example.com",
        from_tag="callee",
        to="sip:roland@falcot.com",
        to_tag="caller",
        routes=(route,),
    )
    for request in (from_caller, from_callee):
        routed, mine = ours(request)
        assert routed.headers.routes == ()
        assert seal.caller_tag(routed, mine) == "caller"


@pytest.mark.parametrize(
    "change",
    [
        {"call_id": "call-2"},
        {"from_tag": "other"},
        {"from_": "sip:admin@falcot.com"},
        {"to": "sip:carol@example.com"},
    ],
)
def test_a_seal_fits_only_its_dialog_and_identities(change: dict[str, str]) -> None:
    seal = DialogSeal(KEY)
    route = sealed_route(seal, message("INVITE"))
    routed, mine = ours(message("BYE", to_tag="callee", routes=(route,), **change))
    assert seal.caller_tag(routed, mine) is None


def test_another_key_or_no_seal_proves_nothing() -> None:
    route = sealed_route(DialogSeal(b"x" * 32), message("INVITE"))
    routed, mine = ours(message("BYE", to_tag="t", routes=(route,)))
    assert DialogSeal(KEY).caller_tag(routed, mine) is None
    routed, mine = ours(message("BYE", to_tag="t", routes=(f"<sip:{PROXY};lr>",)))
    assert DialogSeal(KEY).caller_tag(routed, mine) is None


def test_a_seal_survives_case_folding_of_the_route() -> None:
    seal = DialogSeal(KEY)
    route = sealed_route(seal, message("INVITE")).upper().replace("SIP:", "sip:")
    routed, mine = ours(
        message("BYE", to_tag="callee", routes=(route.replace("PROXY.FALCOT.COM", PROXY),))
    )
    assert seal.caller_tag(routed, mine) == "caller"


def test_the_callers_contact_is_sealed_too() -> None:
    seal = DialogSeal(KEY)
    route = sealed_route(seal, message("INVITE"))
    routed, mine = ours(message("BYE", to_tag="callee", routes=(route,)))
    assert seal.reaches_caller(routed, mine, "caller", "192.168.1.20", 5062)
    assert not seal.reaches_caller(routed, mine, "caller", "192.168.1.20", 6379)
    assert not seal.reaches_caller(routed, mine, "caller", "127.0.0.1", 5062)


def test_no_contact_no_contact_seal() -> None:
    params = dict(DialogSeal(KEY).params(message("MESSAGE", contact=None)))
    assert set(params) == {SEAL_PARAM}


TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=40,
)


@given(TOKEN, TOKEN)
def test_any_call_id_and_tag_seal_and_verify(call_id: str, tag: str) -> None:
    seal = DialogSeal(KEY)
    route = sealed_route(seal, message("INVITE", call_id=call_id, from_tag=tag))
    routed, mine = ours(message("ACK", call_id=call_id, from_tag=tag, to_tag="b", routes=(route,)))
    assert seal.caller_tag(routed, mine) == tag


def test_identity_ignores_parameters_and_case() -> None:
    assert identity(parse_uri("sip:Roland@Falcot.com;transport=tcp")) == "roland@falcot.com"


# --- destinations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "203.0.113.5",  # heron's own, below
        "localhost",  # a name: heron sends only to what DNS gave it
    ],
)
def test_internal_destinations(host: str) -> None:
    assert Destinations(own=["203.0.113.5"]).internal(host)


def test_public_destinations() -> None:
    destinations = Destinations()
    assert not destinations.internal("198.51.200.1")
    assert not destinations.internal("2a00:1450:4007::1")
    assert not destinations.internal("8.8.8.8")


def test_configured_networks_and_targets_are_allowed() -> None:
    destinations = Destinations(
        [ipaddress.ip_network("192.168.1.0/24")], hosts=["10.0.0.5"], own=["127.0.0.1"]
    )
    assert not destinations.internal("192.168.1.10")
    assert not destinations.internal("10.0.0.5")
    assert destinations.internal("10.0.0.6")
    allowed_loopback = Destinations([ipaddress.ip_network("127.0.0.0/8")], own=["127.0.0.1"])
    assert not allowed_loopback.internal("127.0.0.1")  # the administrator said so


# --- where registered phones are -----------------------------------------------------------


def binding(contact: str, host: str, port: int, aor: str = "roland@falcot.com") -> Binding:
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=100.0,
        q=None,
        call_id="c",
        cseq=1,
        received=BindingSource("udp", host, port),
        updated_at=0.0,
    )


def test_a_registered_phone_is_reachable_where_it_registered_from() -> None:
    cache = BindingCache(MemoryLocationStore())
    cache.put("roland@falcot.com", [binding("sip:r@192.168.1.20:5062", "192.168.1.20", 5062)])
    assert cache.reaches("192.168.1.20", 5062)
    assert not cache.reaches("192.168.1.20", 6379)
    cache.put("roland@falcot.com", [])
    assert not cache.reaches("192.168.1.20", 5062)


def test_a_contact_naming_another_host_is_not_reachable_by_its_binding() -> None:
    cache = BindingCache(MemoryLocationStore())
    cache.put("mallory@falcot.com", [binding("sip:m@127.0.0.1:6379", "198.51.200.9", 40000)])
    assert cache.reaches("198.51.200.9", 40000)
    assert not cache.reaches("127.0.0.1", 6379)


def test_a_contact_on_the_same_host_behind_nat_is_reachable() -> None:
    cache = BindingCache(MemoryLocationStore())
    cache.put("roland@falcot.com", [binding("sip:r@192.168.1.20:5062", "192.168.1.20", 40000)])
    assert cache.reaches("192.168.1.20", 5062) and cache.reaches("192.168.1.20", 40000)
    cache.drop("roland@falcot.com")
    assert not cache.reaches("192.168.1.20", 40000)


def test_expired_bindings_leave_the_index_when_swept() -> None:
    cache = BindingCache(MemoryLocationStore())
    cache.put("roland@falcot.com", [binding("sip:r@192.168.1.20:5062", "192.168.1.20", 5062)])
    asyncio.run(cache.sweep(1000.0))
    assert not cache.reaches("192.168.1.20", 5062)


def test_a_removal_says_so_and_is_written_through() -> None:
    store = MemoryLocationStore()
    cache = BindingCache(store)
    first = binding("sip:r@192.168.1.20:5062", "192.168.1.20", 5062)
    assert cache.put("roland@falcot.com", [first]) is False  # added: written behind
    asyncio.run(cache.flush())
    assert cache.put("roland@falcot.com", [first]) is False  # refreshed
    assert cache.put("roland@falcot.com", []) is True  # removed
    asyncio.run(cache.write("roland@falcot.com"))
    assert asyncio.run(store.get("roland@falcot.com")) == []
