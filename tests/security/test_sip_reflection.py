"""heron as a reflector, as a loop, and bindings a crash brings back.

Before the fix, a 407 to an unauthenticated UDP INVITE was retransmitted until Timer H
(eleven datagrams to a source that may be spoofed: the victim's); an ACK heron forwarded
to its own address came back from loopback, which the flood guard exempts, and went round
until Max-Forwards ran out; and a de-registration reached the database only with the
write-behind flush, so a kill -9 within that second brought the removed binding back.
"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.interop.sip.wire import tag_of
from tests.security.sip_tools import Phone, UdpPeer, request, wait_for
from tests.security.support import DOMAIN, HOST, Target, target
from tests.support.heron import serving


def invite_as_roland(peer: UdpPeer) -> bytes:
    """An INVITE claiming to be from a local user, without credentials: challenged."""
    return request(
        "INVITE",
        f"sip:mallory@{DOMAIN}",
        via=peer.via(),
        from_=f"<sip:roland@{DOMAIN}>",
        headers=[("Contact", f"<sip:roland@{HOST}:{peer.port}>")],
    )


def test_challenge_to_udp_is_sent_once(heron: Target) -> None:
    victim = UdpPeer(heron.ports["sip.listen"])  # the spoofed source never ACKs
    try:
        victim.send(invite_as_roland(victim))
        challenge = victim.final()
        assert challenge.status == 407, challenge
        # Timer G would resend it at T1 = 0.5 s, then 1 s, 2 s...: nothing comes.
        assert victim.nothing(within=1.5)
    finally:
        victim.close()


def test_ack_for_a_stateless_challenge_is_absorbed_quietly(heron: Target) -> None:
    phone = UdpPeer(heron.ports["sip.listen"])
    try:
        invite = invite_as_roland(phone)
        phone.send(invite)
        challenge = phone.final()
        assert challenge.status == 407 and tag_of(challenge.get("To")), challenge
        via = challenge.get("Via").split(";received")[0].split(";rport")[0]
        ack = request(
            "ACK",
            f"sip:mallory@{DOMAIN}",
            via=via,
            from_=challenge.get("From"),
            tagged=False,
            to=challenge.get("To"),
            call_id=challenge.get("Call-ID"),
        )
        phone.send(ack)
        # A later request from the same socket is answered: the ACK was dealt with.
        phone.send(request("OPTIONS", f"sip:nobody@{DOMAIN}", via=phone.via()))
        assert phone.final().status is not None
    finally:
        phone.close()
    assert "did not record-route" not in heron.log()
    assert "Traceback" not in heron.log()


def test_an_ack_sent_to_herons_own_address_does_not_loop(tmp_path: Path) -> None:
    # Even where loopback may be reached and is trusted, the ACK goes round once at most.
    overrides = {"sip": {"allowed_destinations": ["127.0.0.0/8"], "trusted_peers": [HOST]}}
    with target(tmp_path / "heron", overrides) as heron:
        attacker = UdpPeer(heron.ports["sip.listen"])
        try:
            attacker.send(
                request(
                    "ACK",
                    f"sip:x@{HOST}:{heron.ports['sip.listen']}",
                    via=attacker.via(),
                    to=f"<sip:x@{HOST}>;tag=1",
                    max_forwards=255,
                )
            )
            assert wait_for(lambda: "looped back" in heron.log()), heron.log()
            attacker.send(request("OPTIONS", f"sip:{HOST}", via=attacker.via()))
            assert attacker.final().status == 200
        finally:
            attacker.close()
        assert heron.log().count("looped back") == 1, heron.log()


def test_a_removed_binding_survives_kill_9(tmp_path: Path) -> None:
    with target(tmp_path / "heron") as heron:
        phone = Phone(heron.ports["sip.listen"], "roland")
        try:
            assert phone.register(expires=600).status == 200
            registered = heron.heron.cli("sip", "registrations")
            assert f"roland@{DOMAIN}" in registered.stdout, registered
            assert phone.register(expires=0).status == 200
        finally:
            phone.close()
        heron.heron.process.send_signal(signal.SIGKILL)
        heron.heron.process.wait(timeout=30)
        with serving(heron.heron.config) as again:
            listed = again.cli("sip", "registrations")
        assert listed.returncode == 0, listed.stderr
        assert f"roland@{DOMAIN}" not in listed.stdout, listed.stdout
