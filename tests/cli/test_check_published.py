"""``heron check`` compares the records ``heron dns`` prints with what a real DNS server
answers, and judges TURN's relay addresses, as ``prosodyctl check dns`` and coturn's
start-up warnings do: each wrong record or address is one FAIL line with its fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.conftest import Run
from tests.support.dns_stub import Zone, dns_stub_thread

HOST = "heron.falcot.example"
PUBLIC = "198.51.100.19"


def _check(
    heron: Run,
    write_config: Callable[..., Path],
    zone: Zone,
    public: tuple[str, ...] = (PUBLIC,),
    **settings: Any,
) -> tuple[int, str]:
    """``heron check`` against a DNS server holding ``zone`` and, for every other name and
    type, what ``heron dns`` prints."""
    with dns_stub_thread(zone) as stub:
        config = str(
            write_config(
                domain="falcot.example",
                hostname=HOST,
                public_addresses=list(public),
                dns={"servers": [stub.address]},
                **settings,
            )
        )
        heron("-c", config, "cert")
        stub.publish(heron("-c", config, "dns")[1])
        status, out, _ = heron("-c", config, "check")
    return status, out


def test_check_passes_the_records_heron_dns_prints_once_published(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    """With TURN's relays as behind 1:1 NAT (coturn's external-ip): write_config's
    listeners are on loopback, which clients on the Internet could not reach."""
    turn = {"relay_addresses": ["127.0.0.1"], "external_address": PUBLIC}
    status, out = _check(heron, write_config, {}, turn=turn)
    assert status == 0, out
    assert f"ok    dns: {HOST} A" in out
    assert "ok    dns: _sip._udp.falcot.example SRV" in out
    assert "ok    dns: falcot.example NAPTR" in out
    assert "FAIL" not in out


def test_check_names_each_missing_or_different_record_with_the_line_to_publish(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    zone = {
        ("_turn._udp.falcot.example", "SRV"): [],
        ("_sip._tcp.falcot.example", "SRV"): ["0 1 5070 old-pbx.falcot.example."],
        (HOST, "A"): [PUBLIC, "192.0.2.99"],
    }
    turn = {"relay_addresses": ["127.0.0.1"], "external_address": PUBLIC}
    status, out = _check(heron, write_config, zone, turn=turn)
    assert status == 1, out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 3, out
    assert (
        "FAIL  dns: _turn._udp.falcot.example SRV is missing; fix: publish "
        "_turn._udp.falcot.example. IN SRV 0 1 " in out
    )
    assert "FAIL  dns: _sip._tcp.falcot.example SRV is 0 1 5070 old-pbx.falcot.example.; " in out
    assert "in its place" in out
    assert f"FAIL  dns: {HOST} A is 192.0.2.99, {PUBLIC}; fix: publish {HOST}. IN A {PUBLIC}" in out


def test_check_fails_a_lookup_the_name_server_never_answers(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    with dns_stub_thread({}, silent=frozenset({HOST})) as stub:
        config = str(
            write_config(
                domain="falcot.example",
                hostname=HOST,
                public_addresses=[PUBLIC],
                dns={"servers": [stub.address]},
            )
        )
        heron("-c", config, "cert")
        status, out, _ = heron("-c", config, "check")
    assert status == 1, out
    assert f"FAIL  dns: {HOST} A: the lookup failed; fix: check dns.servers" in out


def test_check_fails_relays_on_an_address_this_host_does_not_have(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    status, out = _check(heron, write_config, {}, turn={"relay_addresses": [PUBLIC]})
    assert status == 1, out
    assert (
        f"FAIL  turn: relays bind {PUBLIC}, which is not an address of this host; fix: "
        "turn.relay_addresses = [an address `ip -brief address` lists], and "
        f"turn.external_address = {PUBLIC} if a 1:1 NAT forwards it here"
    ) in out


def test_check_fails_a_private_external_address_on_a_public_facing_config(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    turn = {"relay_addresses": ["127.0.0.1"], "external_address": "10.1.2.3"}
    status, out = _check(heron, write_config, {}, turn=turn)
    assert status == 1, out
    assert "FAIL  turn: relays are advertised at 10.1.2.3, which clients on the Internet" in out
    assert (
        f"FAIL  turn.external_address: 10.1.2.3 is neither an address of this host nor "
        f"{HOST}'s A record ({PUBLIC}); fix: the NAT's public address" in out
    )


def test_check_takes_an_external_address_the_host_name_resolves_to(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    """Behind 1:1 NAT, coturn's way: relays on an address of this host (loopback here stands
    for the private side) and the external address the host name's A record gives."""
    turn = {"relay_addresses": ["127.0.0.1"], "external_address": "203.0.113.5"}
    zone = {(HOST, "A"): ["203.0.113.5"]}
    status, out = _check(heron, write_config, zone, public=(), turn=turn)
    assert "turn" not in "".join(line for line in out.splitlines() if line.startswith("FAIL"))
    assert status == 0, out
