"""Calls to another domain, whose SIP servers heron finds in DNS (RFC 3263).

heron asks a stub name server (``dns.servers``) that publishes, per test, the NAPTR,
SRV and A records of a made-up domain pointing at sipp UASes on loopback. An authenticated
local caller reaches them; a caller from nowhere may not use heron as a relay to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sip.support import (
    DOMAIN,
    LOCALHOST,
    USERS,
    SippRun,
    SipServer,
    answering,
    call,
    run_sipp,
    sip_settings,
)
from tests.support.config import free_port
from tests.support.dns_stub import DnsStub, dns_stub_thread
from tests.support.heron import running_heron

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsStub]:
    with dns_stub_thread({}) as stub:
        yield stub


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory, dns: DnsStub) -> Iterator[SipServer]:
    """heron with alice@localhost, asking the stub for other domains' servers."""
    directory = tmp_path_factory.mktemp("heron-rfc3263")
    port, tls_port = free_port(), free_port()
    settings = sip_settings(port, tls_port)
    settings["dns"] = {"servers": [dns.address]}
    # The other domains' servers are sipp on loopback: an internal address heron forwards
    # to only when the configuration allows it (heron.destinations).
    settings["sip"]["allowed_destinations"] = ["127.0.0.0/8"]
    users = {f"alice@{DOMAIN}": USERS["alice"]}
    with running_heron(directory, settings, users=users) as running:
        web = re.findall(r"web listening on https://[^:]+:(\d+)/", "".join(running.log))
        certificate = directory / "var" / "tls" / "heron.crt"
        yield SipServer(running, directory, port, tls_port, int(web[0]), certificate)


def publish(dns: DnsStub, domain: str, service: str, *servers: tuple[int, int]) -> None:
    """NAPTR ``service`` -> SRV -> one host per (priority, port), each at 127.0.0.1."""
    prefix = {"SIP+D2U": "_sip._udp", "SIP+D2T": "_sip._tcp"}[service]
    dns.add(domain, "NAPTR", f'10 50 "s" "{service}" "" {prefix}.{domain}.')
    dns.add(
        f"{prefix}.{domain}",
        "SRV",
        *(f"{priority} 10 {port} s{priority}.{domain}." for priority, port in servers),
    )
    for priority, _ in servers:
        dns.add(f"s{priority}.{domain}", "A", LOCALHOST)


def call_in(heron: SipServer, directory: Path, domain: str, scenario: str) -> SippRun:
    return call(heron, directory, scenario, "bob", "alice", keys={"domain": domain})


def final_statuses(run: SippRun) -> list[int]:
    return [status for status, method in run.statuses() if status >= 200 and method == "INVITE"]


def test_rfc3263_4_1_call_reaches_the_server_naptr_srv_and_a_name(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    port = free_port()
    publish(dns, "other.test", "SIP+D2U", (10, port))
    # Ringing after 300 ms: heron's INVITE server transaction has sent 100 Trying by then.
    with answering(tmp_path / "callee", "uas_answer.xml", "-d", "300", port=port) as uas:
        caller = call_in(heron, tmp_path / "caller", "other.test", "uac_call_domain.xml")
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert caller.statuses() == [
        (407, "INVITE"),
        (100, "INVITE"),
        (180, "INVITE"),
        (200, "INVITE"),
        (200, "BYE"),
    ], caller.explain()
    invite = callee.received("INVITE")[0]
    assert invite.uri == "sip:bob@other.test", invite
    assert invite.get("Via").startswith(f"SIP/2.0/UDP {heron.address};"), invite
    # RFC 3263 §4.1 then §4.2: NAPTR first, the SRV it names, then that target's address.
    assert dns.asked("other.test") == ["NAPTR"]
    assert dns.asked("_sip._udp.other.test") == ["SRV"]
    assert dns.asked("s10.other.test")[0] == "A"
    # The dialog goes on through heron, by its Record-Route.
    assert callee.received("BYE")[0].get("Via").startswith(f"SIP/2.0/UDP {heron.address};")


def test_rfc3263_4_3_after_a_503_the_next_srv_target_gets_the_call(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    down, up = free_port(), free_port()
    publish(dns, "busy.test", "SIP+D2U", (10, down), (20, up))
    with (
        answering(tmp_path / "down", "uas_unavailable.xml", port=down) as first,
        answering(tmp_path / "up", "uas_answer.xml", port=up) as second,
    ):
        caller = call_in(heron, tmp_path / "caller", "busy.test", "uac_call_domain.xml")
        refused, answered = first.wait(), second.wait()

    assert caller.returncode == 0, caller.explain()
    assert refused.returncode == 0, refused.explain()
    assert answered.returncode == 0, answered.explain()
    assert final_statuses(caller) == [407, 200], caller.explain()
    # "a new request, which is identical to the previous, but has a different value of the
    # Via branch ID than the previous (and therefore constitutes a new SIP transaction)".
    before, after = refused.received("INVITE")[0], answered.received("INVITE")[0]
    assert before.get("Via") != after.get("Via")
    assert before.all("Via")[1:] == after.all("Via")[1:]
    assert before.get("Call-ID") == after.get("Call-ID")
    assert before.get("CSeq") == after.get("CSeq")


def test_rfc3263_4_3_a_refused_connection_moves_on_to_the_next_target(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    # TCP: nothing listens on the first target's port, so the connection fails at once.
    closed, open_ = free_port(), free_port()
    publish(dns, "tcp.test", "SIP+D2T", (10, closed), (20, open_))
    with answering(tmp_path / "callee", "uas_answer.xml", port=open_, transport="tcp") as uas:
        caller = call_in(heron, tmp_path / "caller", "tcp.test", "uac_call_domain.xml")
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert final_statuses(caller) == [407, 200], caller.explain()
    assert callee.received("INVITE")[0].get("Via").startswith("SIP/2.0/TCP ")


def test_rfc3263_4_3_a_domain_without_records_is_not_found(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    run = call_in(heron, tmp_path, "nowhere.test", "invite_domain_refused_auth.xml")

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [407, 404], run.explain()
    assert dns.asked("nowhere.test")[0] == "NAPTR"


def test_rfc3263_4_3_a_domain_whose_dns_does_not_answer_is_unavailable(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    # heron gives up on its lookups within its budget, and answers 503: try again later.
    dns.silent.add("mute.test")
    run = call_in(heron, tmp_path, "mute.test", "invite_domain_refused_auth.xml")

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [407, 503], run.explain()


def test_rfc3261_16_3_strangers_cannot_relay_to_another_domain(
    heron: SipServer, dns: DnsStub, tmp_path: Path
) -> None:
    # Neither caller nor callee is ours and no credentials: heron is no open relay, and
    # does not even look the domain up.
    port = free_port()
    publish(dns, "relay.test", "SIP+D2U", (10, port))
    run = run_sipp(
        tmp_path,
        "invite_domain_refused.xml",
        "-s",
        "bob",
        port=free_port(),
        remote=heron.address,
        keys={"from": "eve@example.com", "domain": "relay.test"},
    )

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [403], run.explain()
    assert dns.asked("relay.test") == []
