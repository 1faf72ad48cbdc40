"""``heron dns``: the records of Debian Handbook §11.8.1 for the configured names."""

from __future__ import annotations

from heron.config import Config
from heron.zone import zone_records


def falcot(**extra: object) -> Config:
    return Config.model_validate(
        {
            "domain": "falcot.com",
            "hostname": "heron.falcot.com",
            "public_addresses": ["198.51.100.19", "2001:DB8:1000:2000::19"],
            "sip": {"domain": "sip.falcot.com"},
            **extra,
        }
    )


def records(config: Config) -> list[tuple[str, ...]]:
    return [tuple(line.split()) for line in zone_records(config) if not line.startswith(";")]


def test_handbook_records_for_falcot() -> None:
    found = records(falcot())
    assert ("heron.falcot.com.", "IN", "A", "198.51.100.19") in found
    assert ("heron.falcot.com.", "IN", "AAAA", "2001:db8:1000:2000::19") in found
    expected_srv = {
        "_stun._udp.falcot.com.": "3478",
        "_turn._udp.falcot.com.": "3478",
        "_turns._tcp.falcot.com.": "5349",
        "_sips._tcp.sip.falcot.com.": "5061",
        "_xmpp-client._tcp.falcot.com.": "5222",
        "_xmpps-client._tcp.falcot.com.": "5223",
        "_xmpp-server._tcp.falcot.com.": "5269",
        "_xmpps-server._tcp.falcot.com.": "5270",
        "_xmpp-server._tcp.conference.falcot.com.": "5269",
    }
    srv = {r[0]: r[5] for r in found if r[2] == "SRV"}
    for owner, port in expected_srv.items():
        assert srv[owner] == port, owner
    assert all(r[-1] == "heron.falcot.com." for r in found if r[2] == "SRV")
    naptr = [r for r in found if r[2] == "NAPTR"]
    assert (
        "falcot.com.",
        "IN",
        "NAPTR",
        "10",
        "0",
        '"s"',
        '"RELAY:turn.udp"',
        '""',
        "_turn._udp.falcot.com.",
    ) in naptr
    assert (
        "sip.falcot.com.",
        "IN",
        "NAPTR",
        "10",
        "0",
        '"s"',
        '"SIPS+D2T"',
        '""',
        "_sips._tcp.sip.falcot.com.",
    ) in naptr


def test_ports_follow_the_config() -> None:
    found = records(falcot(turn={"listen": ["0.0.0.0:3467"]}, xmpp={"listen": ["0.0.0.0:443"]}))
    srv = {r[0]: r[5] for r in found if r[2] == "SRV"}
    assert srv["_turn._udp.falcot.com."] == "3467"
    assert srv["_xmpp-client._tcp.falcot.com."] == "443"


def test_disabled_services_get_no_records() -> None:
    found = records(falcot(sip={"enabled": False}, xmpp={"enabled": False}))
    owners = " ".join(r[0] for r in found)
    assert "_sips" not in owners and "_xmpp" not in owners
    assert "_turn._udp.falcot.com." in owners


def test_without_public_addresses_the_gap_is_said() -> None:
    lines = zone_records(Config.model_validate({"domain": "falcot.com"}))
    assert any("set public_addresses" in line for line in lines)
    assert not any(" A " in line or "AAAA" in line for line in lines if not line.startswith(";"))


def test_xmpp_server_records_follow_the_s2s_listener() -> None:
    srv = {
        r[0]: r[5] for r in records(falcot(xmpp={"s2s_listen": ["0.0.0.0:5269"]})) if r[2] == "SRV"
    }
    assert srv["_xmpp-server._tcp.falcot.com."] == "5269"
    assert srv["_xmpp-server._tcp.conference.falcot.com."] == "5269"


def test_xmpp_direct_tls_server_records_follow_the_s2s_tls_listener() -> None:
    """XEP-0368 §3: _xmpps-server beside _xmpp-server, for the hosts and the MUC service."""
    settings = {"s2s_listen": ["0.0.0.0:5269"], "s2s_tls_listen": ["0.0.0.0:5270"]}
    srv = {r[0]: r[5] for r in records(falcot(xmpp=settings)) if r[2] == "SRV"}
    assert srv["_xmpps-server._tcp.falcot.com."] == "5270"
    assert srv["_xmpps-server._tcp.conference.falcot.com."] == "5270"


def test_no_server_records_without_federation() -> None:
    srv = records(falcot(xmpp={"s2s_listen": [], "s2s_tls_listen": []}))
    assert not [r for r in srv if "server._tcp" in r[0]]
