"""Malformed SIP requests whose To has no tag, found by fuzzing, and RFC 3581 rport.

Before the fix, the 400 for such a request needed a To tag nobody supplied: heron
logged an unhandled exception for each one, sent nothing, and over TCP tore the
connection down. A REGISTER asking for ``rport`` got its Via back unfilled, so a
phone behind NAT never learnt its public address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.sip.wire import tag_of
from tests.security.sip_tools import TcpPeer, UdpPeer, request
from tests.security.support import DOMAIN, HOST, Target, target


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with target(Path(tmp_path_factory.mktemp("sip-malformed"))) as running:
        yield running


def malformed(via: str) -> dict[str, bytes]:
    """Requests whose To carries no tag and that break one rule each."""
    to = f"<sip:a@{DOMAIN}>"
    return {
        "bad Content-Length": request("OPTIONS", f"sip:{DOMAIN}", via=via, to=to, length="x"),
        "missing Call-ID": request("OPTIONS", f"sip:a@{DOMAIN}", via=via, to=to, call_id=""),
        "missing From": request("OPTIONS", f"sip:a@{DOMAIN}", via=via, to=to, from_=""),
        "CSeq mismatch": request(
            "OPTIONS", f"sip:a@{DOMAIN}", via=via, to=to, headers=[("X-Pad", "1")]
        ).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"),
    }


@pytest.mark.parametrize("fault", ["bad Content-Length", "missing Call-ID", "missing From"])
def test_malformed_udp_request_is_answered_400_with_a_to_tag(heron: Target, fault: str) -> None:
    peer = UdpPeer(heron.ports["sip.listen"])
    try:
        peer.send(malformed(peer.via())[fault])
        answer = peer.receive()
    finally:
        peer.close()
    assert answer.status == 400, answer
    assert tag_of(answer.get("To")), answer
    assert "Traceback" not in heron.log()


def test_malformed_udp_cseq_mismatch_is_answered(heron: Target) -> None:
    peer = UdpPeer(heron.ports["sip.listen"])
    try:
        peer.send(malformed(peer.via())["CSeq mismatch"])
        answer = peer.receive()
    finally:
        peer.close()
    assert answer.status == 400 and tag_of(answer.get("To")), answer


def test_malformed_tcp_requests_are_answered_and_the_connection_stays(heron: Target) -> None:
    peer = TcpPeer(heron.ports["sip.listen"])
    try:
        for fault in ("missing Call-ID", "missing From", "CSeq mismatch"):
            peer.send(malformed(peer.via())[fault])
            answer = peer.receive()
            assert answer.status == 400 and tag_of(answer.get("To")), (fault, answer)
        # The same connection still carries requests.
        peer.send(request("OPTIONS", f"sip:{HOST}:{heron.ports['sip.listen']}", via=peer.via()))
        assert peer.receive().status is not None
    finally:
        peer.close()
    assert "Traceback" not in heron.log()


def test_tcp_request_with_a_bad_content_length_gets_its_400(heron: Target) -> None:
    # The stream cannot be framed after it (RFC 4475 §3.1.2.3): answered, then closed.
    peer = TcpPeer(heron.ports["sip.listen"])
    try:
        peer.send(malformed(peer.via())["bad Content-Length"])
        answer = peer.receive()
    finally:
        peer.close()
    assert answer.status == 400 and tag_of(answer.get("To")), answer
    assert "Traceback" not in heron.log()


def test_rfc3581_rport_and_received_are_filled_in(heron: Target) -> None:
    peer = UdpPeer(heron.ports["sip.listen"])
    aor = f"<sip:roland@{DOMAIN}>"
    try:
        sent_by = "10.9.9.9:5060"
        peer.send(
            request(
                "REGISTER",
                f"sip:{DOMAIN}",
                via=f"SIP/2.0/UDP {sent_by};rport;branch=z9hG4bKrport{peer.port}",
                from_=aor,
                to=aor,
                headers=[("Contact", f"<sip:roland@{sent_by}>")],
            )
        )
        answer = peer.receive()
    finally:
        peer.close()
    via = answer.get("Via")
    assert f"rport={peer.port}" in via and f"received={HOST}" in via, via


def test_rfc3261_18_2_1_received_when_sent_by_is_another_address(heron: Target) -> None:
    peer = UdpPeer(heron.ports["sip.listen"])
    try:
        peer.send(request("OPTIONS", f"sip:nobody@{DOMAIN}", via=peer.via("10.9.9.9:5060")))
        answer = peer.final()
    finally:
        peer.close()
    assert f"received={HOST}" in answer.get("Via"), answer
