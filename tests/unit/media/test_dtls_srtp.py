"""DTLS-SRTP (RFC 5763, RFC 5764) between two of heron's own sans-IO endpoints, in memory."""

from __future__ import annotations

import datetime

import pylibsrtp
import pytest

from heron.media.dtls import Certificate, DtlsSrtp, DtlsState
from tests.support.media import rtp

NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def certificates() -> tuple[Certificate, Certificate]:
    return Certificate.generate(NOW, 1), Certificate.generate(NOW, 2)


def handshake(client: DtlsSrtp, server: DtlsSrtp) -> None:
    client.start()
    server.start()
    for _ in range(20):
        to_server, to_client = client.datagrams(), server.datagrams()
        if not to_server and not to_client:
            return
        for datagram in to_server:
            server.receive(datagram)
        for datagram in to_client:
            client.receive(datagram)


def pair(
    certificates: tuple[Certificate, Certificate], client_trusts: str | None = None
) -> tuple[DtlsSrtp, DtlsSrtp]:
    ours, theirs = certificates
    client = DtlsSrtp(ours.context(), False, (client_trusts or theirs.fingerprint,))
    server = DtlsSrtp(theirs.context(), True, (ours.fingerprint,))
    return client, server


def test_rfc5764_handshake_gives_both_sides_matching_srtp_keys(
    certificates: tuple[Certificate, Certificate],
) -> None:
    client, server = pair(certificates)
    handshake(client, server)
    assert client.state is server.state is DtlsState.CONNECTED
    assert client.keys is not None and server.keys is not None
    packet = rtp(1, b"voice" * 20)
    protected = client.keys.outbound.protect(packet)
    assert protected != packet
    assert server.keys.inbound.unprotect(protected) == packet
    back = server.keys.outbound.protect(rtp(2, b"back"))
    assert client.keys.inbound.unprotect(back) == rtp(2, b"back")
    report = bytes.fromhex("80c90001") + (0x1234).to_bytes(4, "big")
    assert server.keys.inbound.unprotect_rtcp(client.keys.outbound.protect_rtcp(report)) == report


def test_rfc5763_a_certificate_not_matching_the_sdp_fingerprint_fails_the_leg(
    certificates: tuple[Certificate, Certificate],
) -> None:
    wrong = "sha-256 " + ":".join(["AB"] * 32)
    client, server = pair(certificates, client_trusts=wrong)
    handshake(client, server)
    assert client.state is DtlsState.FAILED and client.keys is None
    assert "fingerprint" in client.failure


def test_srtp_that_fails_authentication_raises_for_the_caller_to_count(
    certificates: tuple[Certificate, Certificate],
) -> None:
    client, server = pair(certificates)
    handshake(client, server)
    assert client.keys is not None and server.keys is not None
    protected = bytearray(client.keys.outbound.protect(rtp(1, b"voice")))
    protected[-1] ^= 1
    with pytest.raises(pylibsrtp.Error):
        server.keys.inbound.unprotect(bytes(protected))


def test_garbage_records_fail_the_handshake_without_raising(
    certificates: tuple[Certificate, Certificate],
) -> None:
    _, server = pair(certificates)
    server.receive(bytes([22, 0xFE, 0xFD]) + bytes(100))
    server.receive(b"\x17" + bytes(40))
    assert server.state in (DtlsState.CONNECTING, DtlsState.FAILED)


@pytest.mark.parametrize("profile", [b"SRTP_AES128_CM_SHA1_80", b"SRTP_AEAD_AES_128_GCM"])
def test_rfc5764_4_1_2_each_offered_profile_keys_both_directions(
    certificates: tuple[Certificate, Certificate], profile: bytes
) -> None:
    ours, theirs = certificates
    context = ours.context()
    context.set_tlsext_use_srtp(profile)  # a peer offering this profile alone
    client = DtlsSrtp(context, False, (theirs.fingerprint,))
    server = DtlsSrtp(theirs.context(), True, (ours.fingerprint,))
    handshake(client, server)
    assert client.keys is not None and server.keys is not None
    protected = client.keys.outbound.protect(rtp(5, b"voice"))
    overhead = len(protected) - len(rtp(5, b"voice"))
    assert overhead == (10 if profile.endswith(b"_80") else 16)
    assert server.keys.inbound.unprotect(protected) == rtp(5, b"voice")
