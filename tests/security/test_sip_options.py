"""OPTIONS health checks to heron itself, and REGISTERs as desk phones and outbound
proxies send them.

Before the fix, ``sipsak -s sip:<heron>`` (the classic health check, a PBX's qualify, a
trunk's keep-alive) got "403 Forbidden"; Kamailio answers 200. A REGISTER carrying a
pre-loaded Route naming heron (a phone's outbound-proxy setting) was judged differently
from the same REGISTER without it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sip.wire import SipMessage, digest_credentials, md5_challenge
from tests.security.sip_tools import UdpPeer, request
from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.support.config import free_port
from tests.support.tools import require_tool


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with target(Path(tmp_path_factory.mktemp("sip-options"))) as running:
        yield running


def options(heron: Target, uri: str) -> SipMessage:
    peer = UdpPeer(heron.ports["sip.listen"])
    try:
        monitor = "<sip:monitor@example.com>"
        peer.send(request("OPTIONS", uri, via=peer.via(), to=f"<{uri}>", from_=monitor))
        return peer.final()
    finally:
        peer.close()


def test_sipsak_health_check_gets_200(heron: Target) -> None:
    run = subprocess.run(
        # sipsak 0.9.8 writes only four digits of a port into its Request-URI: the port
        # goes with -r, the URI names heron by its address alone.
        [
            require_tool("sipsak", "sipsak"),
            "-v",
            "-s",
            f"sip:{HOST}",
            "-r",
            str(heron.ports["sip.listen"]),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "200 OK" in run.stdout, run.stdout


@pytest.mark.parametrize("where", ["address", "domain", "address without port"])
def test_options_to_heron_itself_gets_200_with_its_capabilities(heron: Target, where: str) -> None:
    port = heron.ports["sip.listen"]
    uri = {
        "address": f"sip:{HOST}:{port}",
        "domain": f"sip:{DOMAIN}",
        "address without port": f"sip:{HOST}",
    }[where]
    answer = options(heron, uri)
    assert answer.status == 200, answer
    assert "OPTIONS" in answer.get("Allow") and "INVITE" in answer.get("Allow"), answer
    assert answer.get("Accept"), answer
    assert answer.all("Supported") is not None


def test_options_to_a_user_is_still_judged_as_a_call(heron: Target) -> None:
    # Reaching roland's phone is not a health check: a stranger is refused as before.
    assert options(heron, f"sip:roland@{DOMAIN}").status == 403


def register(
    heron: Target, uri: str, domain: str, routes: tuple[str, ...] = ()
) -> tuple[SipMessage, SipMessage | None]:
    """REGISTER roland at ``uri`` with To/From in ``domain``; the 401, then the answer to
    the credentials."""
    peer = UdpPeer(heron.ports["sip.listen"])
    aor = f"<sip:roland@{domain}>"
    headers = [("Contact", f"<sip:roland@{HOST}:{peer.port}>"), *(("Route", r) for r in routes)]
    try:
        peer.send(request("REGISTER", uri, via=peer.via(), from_=aor, to=aor, headers=headers))
        challenge = peer.final()
        if challenge.status != 401:
            return challenge, None
        credentials = digest_credentials(
            md5_challenge(challenge), "REGISTER", uri, "roland", USERS["roland"]
        )
        headers.append(("Authorization", credentials))
        peer.send(
            request("REGISTER", uri, via=peer.via(), from_=aor, to=aor, headers=headers, cseq=2)
        )
        return challenge, peer.final()
    finally:
        peer.close()


def test_register_to_herons_own_address_works(heron: Target) -> None:
    address = f"{HOST}:{heron.ports['sip.listen']}"
    challenge, answer = register(heron, f"sip:{address}", address)
    assert challenge.status == 401, challenge
    assert answer is not None and answer.status == 200, answer


@pytest.mark.parametrize("uri", ["domain", "address"])
def test_register_with_a_preloaded_route_is_judged_as_without(heron: Target, uri: str) -> None:
    address = f"{HOST}:{heron.ports['sip.listen']}"
    request_uri = f"sip:{DOMAIN}" if uri == "domain" else f"sip:{address}"
    domain = DOMAIN if uri == "domain" else address
    for route in (f"<sip:{address};lr>", f"<sip:{address}>", f"<sip:{address};transport=udp;lr>"):
        challenge, answer = register(heron, request_uri, domain, (route,))
        assert challenge.status == 401, (route, challenge)
        assert answer is not None and answer.status == 200, (route, answer)


def test_register_to_the_address_of_a_wildcard_listener(tmp_path: Path) -> None:
    # heron's default listens on 0.0.0.0: a desk phone configured with the server's IP
    # address as its domain, with or without it as outbound proxy too.
    port = free_port()
    overrides = {"sip": {"listen": [f"0.0.0.0:{port}"]}}
    with target(tmp_path / "heron", overrides) as running:
        running.ports["sip.listen"] = port
        address = f"{HOST}:{port}"
        for routes in ((), (f"<sip:{address};lr>",)):
            challenge, answer = register(running, f"sip:{address}", address, routes)
            assert challenge.status == 401, (routes, challenge)
            assert answer is not None and answer.status == 200, (routes, answer)
        assert options(running, f"sip:{address}").status == 200
