"""``heron check`` tells whether DNS leads other XMPP servers to this host's s2s listeners
(RFC 6120 §3.2.1, XEP-0368), as ``prosodyctl check dns`` does, against a real DNS server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Run
from tests.support.config import free_port
from tests.support.dns_stub import dns_stub_thread


def test_check_follows_the_srv_records_of_every_federated_domain(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    port, tls_port = free_port(), free_port()
    zone = {
        ("_xmpp-server._tcp.falcot.example", "SRV"): [f"5 0 {port} heron.falcot.example."],
        ("_xmpps-server._tcp.conference.falcot.example", "SRV"): [
            f"5 0 {tls_port} heron.falcot.example."
        ],
        ("heron.falcot.example", "A"): ["127.0.0.1"],
        ("_xmpp-server._tcp.rooms.falcot.example", "SRV"): [f"5 0 {port} elsewhere.example."],
        ("elsewhere.example", "A"): ["192.0.2.7"],
    }
    with dns_stub_thread(zone) as stub:
        settings = {
            "domain": "falcot.example",
            "hostname": "heron.falcot.example",
            "public_addresses": ["127.0.0.1"],
            "dns": {"servers": [stub.address]},
        }
        xmpp = {
            "hosts": ["falcot.example", "rooms.falcot.example"],
            "s2s_listen": [f"127.0.0.1:{port}"],
            "s2s_tls_listen": [f"127.0.0.1:{tls_port}"],
        }
        config = str(write_config(**settings, xmpp=xmpp))
        heron("-c", config, "cert")
        status, out, _ = heron("-c", config, "check")
    # The zone holds the s2s records alone: each other record `heron dns` prints fails.
    assert status == 1, out
    assert "FAIL  dns: _sip._udp.falcot.example SRV is missing" in out
    assert f"ok    falcot.example: other servers reach 127.0.0.1:{port}" in out
    assert f"ok    conference.falcot.example: other servers reach 127.0.0.1:{tls_port}" in out
    assert f"warn  rooms.falcot.example: DNS sends other servers to 192.0.2.7:{port}" in out
    assert ("_xmpp-server._tcp.falcot.example", "SRV") in stub.questions


def test_check_says_nothing_of_dns_without_federation(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    config = str(write_config())
    heron("-c", config, "cert")
    status, out, _ = heron("-c", config, "check")
    assert status == 0, out
    assert "other servers" not in out and "DNS" not in out


def test_check_counts_the_mux_port_as_a_direct_tls_s2s_listener(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    """XEP-0368 through the mux: ALPN xmpp-server on the mux port reaches federation, so DNS
    that sends other servers there (``_xmpps-server`` on 443) leads them here."""
    port, mux_port = free_port(), free_port()
    zone = {
        ("_xmpps-server._tcp.falcot.example", "SRV"): [f"15 0 {mux_port} heron.falcot.example."],
        ("heron.falcot.example", "A"): ["127.0.0.1"],
    }
    with dns_stub_thread(zone) as stub:
        settings = {
            "domain": "falcot.example",
            "hostname": "heron.falcot.example",
            "public_addresses": ["127.0.0.1"],
            "dns": {"servers": [stub.address]},
            "mux": {"listen": [f"127.0.0.1:{mux_port}"]},
        }
        xmpp = {"s2s_listen": [f"127.0.0.1:{port}"], "muc": "conference.falcot.example"}
        config = str(write_config(**settings, xmpp=xmpp))
        heron("-c", config, "cert")
        status, out, _ = heron("-c", config, "check")
    assert status == 1, out  # the zone holds the s2s records alone
    assert f"ok    falcot.example: other servers reach 127.0.0.1:{mux_port}" in out
