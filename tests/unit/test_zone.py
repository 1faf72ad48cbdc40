"""``heron dns``: the records of Debian Handbook §11.8.1 for the configured names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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


def srv_records(config: Config) -> dict[str, list[tuple[int, int, str]]]:
    """Owner -> [(priority, port, target)] in the order printed."""
    found: dict[str, list[tuple[int, int, str]]] = {}
    for record in records(config):
        if record[2] == "SRV":
            found.setdefault(record[0], []).append((int(record[3]), int(record[5]), record[6]))
    return found


def naptr_records(config: Config) -> list[tuple[str, int, str, str]]:
    """(owner, order, service, replacement) of every NAPTR record."""
    return [(r[0], int(r[3]), r[6].strip('"'), r[8]) for r in records(config) if r[2] == "NAPTR"]


MUX = {"listen": ["198.51.100.19:443", "[2001:db8:1000:2000::19]:443"]}
HOST = "heron.falcot.com."


def test_rfc2782_mux_port_is_every_service_s_fallback_beside_its_own_port() -> None:
    """XEP-0368 §5: records that need no multiplexing first, 443 after them."""
    srv = srv_records(falcot(mux=MUX))
    expected = {
        "_stun._udp.falcot.com.": [(0, 3478, HOST), (10, 443, HOST)],
        "_turn._udp.falcot.com.": [(0, 3478, HOST), (10, 443, HOST)],
        "_turn._tcp.falcot.com.": [(0, 3478, HOST), (10, 443, HOST)],
        "_turns._tcp.falcot.com.": [(0, 5349, HOST), (10, 443, HOST)],
        "_sips._tcp.sip.falcot.com.": [(0, 5061, HOST), (10, 443, HOST)],
        "_sip._tcp.sip.falcot.com.": [(0, 5060, HOST), (10, 443, HOST)],
        "_sip._udp.sip.falcot.com.": [(0, 5060, HOST)],  # the mux takes UDP for TURN only
        "_xmpp-client._tcp.falcot.com.": [(5, 5222, HOST), (15, 443, HOST)],
        "_xmpps-client._tcp.falcot.com.": [(5, 5223, HOST), (15, 443, HOST)],
        "_xmpps-server._tcp.falcot.com.": [(5, 5270, HOST), (15, 443, HOST)],
        "_xmpps-server._tcp.conference.falcot.com.": [(5, 5270, HOST), (15, 443, HOST)],
        # Plain s2s through the mux would meet c2s: only ALPN xmpp-server reaches federation.
        "_xmpp-server._tcp.falcot.com.": [(5, 5269, HOST)],
    }
    for owner, wanted in expected.items():
        assert srv[owner] == wanted, owner


def test_rfc2782_mux_port_alone_is_the_first_choice() -> None:
    """Every service on 443 of one address and nowhere else: 443 is each SRV's only target."""
    only_443 = falcot(
        mux=MUX,
        turn={"listen": [], "tls_listen": []},
        sip={"domain": "sip.falcot.com", "listen": [], "tls_listen": []},
        xmpp={"listen": [], "tls_listen": [], "s2s_listen": [], "s2s_tls_listen": ["0.0.0.0:5270"]},
    )
    srv = srv_records(only_443)
    for owner in [
        "_stun._udp.falcot.com.",
        "_turn._udp.falcot.com.",
        "_turn._tcp.falcot.com.",
        "_turns._tcp.falcot.com.",
        "_sips._tcp.sip.falcot.com.",
        "_sip._tcp.sip.falcot.com.",
        "_xmpp-client._tcp.falcot.com.",
        "_xmpps-client._tcp.falcot.com.",
    ]:
        assert srv[owner] == [(0 if "xmpp" not in owner else 5, 443, HOST)], owner
    assert "_sip._udp.sip.falcot.com." not in srv
    assert [n[2] for n in naptr_records(only_443) if n[0] == "sip.falcot.com."] == [
        "SIPS+D2T",
        "SIP+D2T",
    ]
    assert ("falcot.com.", 10, "RELAY:turn.udp", "_turn._udp.falcot.com.") in naptr_records(
        only_443
    )


def test_rfc3263_4_1_naptr_for_every_sip_transport_sips_preferred() -> None:
    """ "There MUST be at least three records": SIPS+D2T, SIP+D2T, SIP+D2U, SIPS with the
    lowest order."""
    sip = [n for n in naptr_records(falcot()) if n[0] == "sip.falcot.com."]
    assert sip == [
        ("sip.falcot.com.", 10, "SIPS+D2T", "_sips._tcp.sip.falcot.com."),
        ("sip.falcot.com.", 20, "SIP+D2T", "_sip._tcp.sip.falcot.com."),
        ("sip.falcot.com.", 30, "SIP+D2U", "_sip._udp.sip.falcot.com."),
    ]
    srv = srv_records(falcot())
    assert srv["_sip._udp.sip.falcot.com."] == srv["_sip._tcp.sip.falcot.com."] == [(0, 5060, HOST)]


def test_sip_over_tls_stays_off_the_mux_when_the_sip_domain_is_the_host_name() -> None:
    """The mux tells SIP over TLS from HTTPS by the server name; with one name for both,
    a SIPS client on 443 would reach the web, so no record sends it there."""
    config = falcot(mux=MUX, sip={"domain": "heron.falcot.com"})
    srv = srv_records(config)
    assert srv["_sips._tcp.heron.falcot.com."] == [(0, 5061, HOST)]
    assert srv["_sip._tcp.heron.falcot.com."] == [(0, 5060, HOST), (10, 443, HOST)]
    assert any("SIP over TLS is not on port 443" in line for line in zone_records(config))


def test_sip_over_tls_on_the_mux_follows_mux_sni() -> None:
    """``mux.sni`` decides a name over the SIP domain rule, either way."""
    named = falcot(
        mux={**MUX, "sni": {"heron.falcot.com": "sip"}}, sip={"domain": "heron.falcot.com"}
    )
    assert srv_records(named)["_sips._tcp.heron.falcot.com."][-1] == (10, 443, HOST)
    to_web = falcot(mux={**MUX, "sni": {"sip.falcot.com": "web"}})
    assert srv_records(to_web)["_sips._tcp.sip.falcot.com."] == [(0, 5061, HOST)]


def test_no_federation_records_on_the_mux_without_federation() -> None:
    srv = srv_records(falcot(mux=MUX, xmpp={"s2s_listen": [], "s2s_tls_listen": []}))
    assert not [owner for owner in srv if "server._tcp" in owner]
    assert srv["_xmpps-client._tcp.falcot.com."][-1] == (15, 443, HOST)


def test_turn_off_means_no_turn_records_on_the_mux() -> None:
    srv = srv_records(falcot(mux=MUX, turn={"enabled": False}))
    assert not [owner for owner in srv if "_turn" in owner or "_stun" in owner]


def test_handbook_11_8_5_each_service_on_443_of_its_own_address() -> None:
    """Each service's SRV target resolves to that service's address only, so a client
    after TURN on 443 never meets the web server on the same port of another address."""
    config = falcot(
        public_addresses=["198.51.100.19"],
        turn={"listen": ["198.51.100.21:3478"], "tls_listen": ["198.51.100.21:443"]},
        sip={"domain": "sip.falcot.com", "tls_listen": ["198.51.100.22:443"]},
        xmpp={"tls_listen": ["198.51.100.23:443"], "s2s_tls_listen": ["198.51.100.23:5270"]},
        web={"listen": ["198.51.100.19:443"]},
    )
    found = records(config)
    addresses = {r[0]: r[3] for r in found if r[2] == "A"}
    assert addresses == {
        "heron.falcot.com.": "198.51.100.19",
        "turn.heron.falcot.com.": "198.51.100.21",
        "sip.heron.falcot.com.": "198.51.100.22",
        "xmpp.heron.falcot.com.": "198.51.100.23",
    }
    srv = srv_records(config)
    assert srv["_turns._tcp.falcot.com."] == [(0, 443, "turn.heron.falcot.com.")]
    assert srv["_turn._udp.falcot.com."] == [(0, 3478, "turn.heron.falcot.com.")]
    assert srv["_sips._tcp.sip.falcot.com."] == [(0, 443, "sip.heron.falcot.com.")]
    assert srv["_sip._udp.sip.falcot.com."] == [(0, 5060, HOST)]  # the default 0.0.0.0:5060
    assert srv["_xmpps-client._tcp.falcot.com."] == [(5, 443, "xmpp.heron.falcot.com.")]
    assert srv["_xmpp-client._tcp.falcot.com."] == [(5, 5222, HOST)]


def test_addresses_behind_nat_or_listed_as_public_use_the_host_name() -> None:
    """A private listen address is the inside of a NAT whose outside public_addresses name;
    two services on two addresses of their own never share a target name."""
    config = falcot(
        turn={"listen": ["10.0.0.5:3478"], "tls_listen": ["198.51.100.19:5349"]},
        sip={
            "domain": "sip.falcot.com",
            "tls_listen": ["203.0.113.7:5061"],
            "listen": ["203.0.113.9:5060"],
        },
        xmpp={"tls_listen": ["203.0.113.8:5223"]},
    )
    srv = srv_records(config)
    assert srv["_turn._udp.falcot.com."] == [(0, 3478, HOST)]
    assert srv["_turns._tcp.falcot.com."] == [(0, 5349, HOST)]
    assert srv["_sips._tcp.sip.falcot.com."] == [(0, 5061, "sip.heron.falcot.com.")]
    assert srv["_sip._udp.sip.falcot.com."] == [(0, 5060, "sip2.heron.falcot.com.")]
    assert srv["_xmpps-client._tcp.falcot.com."] == [(5, 5223, "xmpp.heron.falcot.com.")]


def test_readme_port_443_records_are_what_heron_dns_prints() -> None:
    """The README's one-address and handbook configurations, each followed by its records."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Every service on one address (port 443)\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```(toml|zone)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["toml", "zone", "toml", "zone"]
    for (_, settings), (_, printed) in zip(blocks[::2], blocks[1::2], strict=True):
        config = Config.model_validate(tomllib.loads(settings))
        assert zone_records(config) == printed.splitlines()
