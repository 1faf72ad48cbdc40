"""Password guessing over SIP digest, counted with every other protocol's guesses.

Before the fix, SIP kept a lockout of its own, per user name as typed: ``Roland``,
``roland`` and ``ROLAND`` were three accounts with three counts, and a guess over SIP
did not slow one over the web, XMPP or TURN. Now every wrong digest counts against the
account (and the source network) in the shared guess throttle; a phone that already
proved the password from its network keeps registering.
"""

from __future__ import annotations

import re
import secrets

from tests.interop.sip.wire import SipMessage, digest_credentials, md5_challenge
from tests.security.sip_tools import Phone, UdpPeer, request, wait_for
from tests.security.support import DOMAIN, USERS, Target

GUESSES = 6
"""One more than the free ``limits.account_guesses`` (5)."""


def challenged(peer: UdpPeer) -> tuple[SipMessage, str]:
    """A 401 for a REGISTER of roland from ``peer``, and the Call-ID it was for."""
    call_id = secrets.token_hex(8)
    aor = f"<sip:roland@{DOMAIN}>"
    peer.send(
        request("REGISTER", f"sip:{DOMAIN}", via=peer.via(), from_=aor, to=aor, call_id=call_id)
    )
    answer = peer.final()
    assert answer.status == 401, answer
    return answer, call_id


def answered(
    peer: UdpPeer, challenge: tuple[SipMessage, str], username: str, password: str
) -> bytes:
    """The REGISTER answering ``challenge`` with ``username`` and ``password``."""
    response, call_id = challenge
    uri = f"sip:{DOMAIN}"
    credentials = digest_credentials(md5_challenge(response), "REGISTER", uri, username, password)
    aor = f"<sip:roland@{DOMAIN}>"
    return request(
        "REGISTER",
        uri,
        via=peer.via(),
        from_=aor,
        to=aor,
        call_id=call_id,
        cseq=2,
        headers=[
            ("Contact", f"<sip:roland@{peer.host}:{peer.port}>"),
            ("Authorization", credentials),
        ],
    )


def test_guesses_count_per_account_whatever_the_case(heron: Target) -> None:
    port = heron.ports["sip.listen"]
    owner = Phone(port, "roland")  # roland's desk phone, on 127.0.0.1
    attacker = UdpPeer(port, "127.0.0.2")
    stranger = UdpPeer(port, "127.0.0.3")  # a new network with the right password
    try:
        assert owner.register().status == 200
        # Every challenge first, so the guesses and what follows them take milliseconds
        # (the first wait is one second).
        spellings = ["Roland", "roland", "ROLAND", "rOland", "RolanD", "roLAND"]
        guesses = [answered(attacker, challenged(attacker), name, "guess") for name in spellings]
        assert len(guesses) == GUESSES
        right = answered(stranger, challenged(stranger), "roland", USERS["roland"])
        for guess in guesses:
            attacker.send(guess)
            assert attacker.final().status == 401
        stranger.send(right)
        refused = stranger.final()
        mine = owner.register()  # the known network is not held by the account's wait
    finally:
        owner.close()
        attacker.close()
        stranger.close()
    assert refused.status == 401, refused
    assert mine.status == 200, mine
    assert wait_for(lambda: "refused unchecked" in heron.log()), heron.log()


def test_a_captured_register_replayed_from_elsewhere_is_stale_and_counts_nothing(
    heron: Target,
) -> None:
    """RFC 7616 §3.4: an eavesdropper resending a phone's authenticated REGISTER (same
    nonce and nonce-count, its own Via) gets a fresh challenge, not a binding; one whose
    nonce was edited (issuer tag or MAC) is refused unchecked. Neither is a guess."""
    port = heron.ports["sip.listen"]
    owner = UdpPeer(port, "127.0.0.1")
    attacker = UdpPeer(port, "127.0.0.4")
    try:
        challenge = challenged(owner)
        genuine = answered(owner, challenge, "roland", USERS["roland"])
        owner.send(genuine)
        assert owner.final().status == 200
        via = re.search(rb"Via: [^\r]*", genuine)
        assert via is not None
        replay = genuine.replace(via.group(0), b"Via: " + attacker.via().encode())
        attacker.send(replay)
        replayed = attacker.final()
        nonce = md5_challenge(challenge[0])["nonce"].encode()
        edited = nonce[:20] + (b"0" if nonce[20:21] != b"0" else b"1") + nonce[21:]
        fresh_via = b"Via: " + attacker.via().encode()  # a new transaction, not a resend
        attacker.send(genuine.replace(via.group(0), fresh_via).replace(nonce, edited))
        tampered = attacker.final()
    finally:
        owner.close()
        attacker.close()
    assert replayed.status == 401, replayed
    assert "stale=true" in str(replayed).lower(), replayed
    assert tampered.status == 401, tampered
    assert "refused unchecked" not in heron.log(), heron.log()
