"""Which URIs name heron: its domains, its host name, and the addresses it answers on."""

from __future__ import annotations

from heron.config import ListenAddress
from heron.sip import parse_uri
from heron.sip.locality import Locality


def locality(host: str = "0.0.0.0") -> Locality:
    here = Locality(["falcot.com"], [ListenAddress(host, 5060)], "sip.falcot.com")
    here.advertise("udp", ListenAddress(host, 5060))
    return here


def test_the_server_itself_has_no_user_part() -> None:
    here = locality()
    for uri in ("sip:falcot.com", "sip:sip.falcot.com", "sip:sip.falcot.com:5060"):
        assert here.is_server(parse_uri(uri)), uri
    assert not here.is_server(parse_uri("sip:roland@falcot.com"))
    assert not here.is_server(parse_uri("sip:example.com"))
    assert not here.is_server(parse_uri("tel:+15551234"))


def test_a_wildcard_listener_answers_on_the_interfaces_it_learns() -> None:
    here = locality()
    assert not here.is_me(parse_uri("sip:192.0.2.2:5060"))
    here.add_hosts(["192.0.2.2", "2001:DB8::2"])
    assert here.is_me(parse_uri("sip:192.0.2.2:5060;lr"))
    assert here.is_me(parse_uri("sip:192.0.2.2"))
    assert here.is_me(parse_uri("sip:[2001:db8::2]:5060"))
    assert here.is_server(parse_uri("sip:192.0.2.2:5060"))
    assert not here.is_me(parse_uri("sip:192.0.2.2:6379"))  # another port is someone else


def test_a_reload_moves_via_and_record_route_yet_the_old_address_stays_ours() -> None:
    here = locality("192.0.2.1")
    here.advertise("tls", ListenAddress("192.0.2.1", 5061))
    here.rebind("tls", [ListenAddress("192.0.2.1", 5063)])
    assert here.sent_by("tls") == ("192.0.2.1", 5063)
    assert here.is_me(parse_uri("sip:192.0.2.1:5063;transport=tls"))
    assert here.is_me(parse_uri("sip:192.0.2.1:5061;transport=tls"))  # an old Record-Route
    assert not here.is_me(parse_uri("sip:192.0.2.1:5062"))
    here.rebind("tls", [])
    assert here.sent_by("tls") == ("192.0.2.1", 5060)  # no TLS listener: the UDP one's
