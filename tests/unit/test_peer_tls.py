"""Server-to-server TLS (heron.peer_tls) over real loopback handshakes: both sides present
certificates; a chain that verifies is reported, one that does not (self-signed, expired,
another CA) still completes the handshake and is reported unverified, so the stream can
fall back to dialback (XEP-0220) as Prosody's does."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
import uvloop
from cryptography import x509

from heron.errors import TlsError
from heron.peer_tls import S2S_ALPN, s2s_client_context, s2s_server_context, verified_peer
from heron.xmpp.s2s.identity import certificate_names_domain
from tests.support.certs import CertificateAuthority, Issued, srv_id

Peer = tuple[bytes | None, bytes | None, str | None]
"""What one side learned: the DER it was shown, the DER if verified, the ALPN protocol."""


def _seen(ssl_object: ssl.SSLObject) -> Peer:
    return (
        ssl_object.getpeercert(binary_form=True),
        verified_peer(ssl_object),
        ssl_object.selected_alpn_protocol(),
    )


async def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[Peer, Peer]:
    """One TLS connection over loopback; what the receiving and the initiating side saw."""
    received: asyncio.Future[Peer] = asyncio.get_running_loop().create_future()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(_seen(cast(ssl.SSLObject, writer.get_extra_info("ssl_object"))))
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="receiving.test"
        )
        initiated = _seen(cast(ssl.SSLObject, writer.get_extra_info("ssl_object")))
        writer.close()
        return await received, initiated
    finally:
        listener.close()


class Domains:
    """A CA, its file, and certificates for the receiving and the initiating domains."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = CertificateAuthority()
        self.ca_file = self.ca.write(directory / "ca.pem")

    def files(self, name: str, issued: Issued) -> tuple[Path, Path]:
        return issued.write(self.directory, name)

    def contexts(
        self, receiving: Issued, initiating: Issued, ca_file: Path | None = None
    ) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        trusted = ca_file or self.ca_file
        server = s2s_server_context(*self.files("receiving", receiving), trusted)
        client = s2s_client_context(*self.files("initiating", initiating), trusted)
        return server, client


def names(domain: str) -> Sequence[x509.GeneralName]:
    return [x509.DNSName(domain)]


async def test_both_chains_verify_and_name_their_domains(tmp_path: Path) -> None:
    domains = Domains(tmp_path)
    receiving = domains.ca.issue(names("receiving.test"))
    initiating = domains.ca.issue([srv_id("_xmpp-server.initiating.test")])
    server, client = domains.contexts(receiving, initiating)
    (shown, verified, alpn), (shown_back, verified_back, alpn_back) = await handshake(
        server, client
    )

    assert verified == shown == initiating.der
    assert verified_back == shown_back == receiving.der
    assert alpn == alpn_back == S2S_ALPN
    assert certificate_names_domain(verified, "initiating.test")
    assert certificate_names_domain(verified_back, "receiving.test")


async def test_a_server_auth_only_certificate_verifies_for_an_initiating_server(
    tmp_path: Path,
) -> None:
    """Let's Encrypt's certificates carry serverAuth alone since 2026: a peer holding one
    still authenticates by its certificate (SASL EXTERNAL), in both directions."""
    domains = Domains(tmp_path)
    initiating = domains.ca.issue(names("initiating.test"), server_auth_only=True)
    receiving = domains.ca.issue(names("receiving.test"), server_auth_only=True)
    server, client = domains.contexts(receiving, initiating)
    (_, verified, _), (_, verified_back, _) = await handshake(server, client)

    assert verified == initiating.der
    assert verified_back == receiving.der


@pytest.mark.parametrize("flaw", ["self_signed", "expired", "other_ca"])
async def test_an_unverifiable_initiating_certificate_is_shown_but_not_verified(
    tmp_path: Path, flaw: str
) -> None:
    domains = Domains(tmp_path)
    issuer = CertificateAuthority("another CA") if flaw == "other_ca" else domains.ca
    initiating = issuer.issue(
        names("initiating.test"),
        self_signed=flaw == "self_signed",
        expired=flaw == "expired",
    )
    server, client = domains.contexts(domains.ca.issue(names("receiving.test")), initiating)
    (shown, verified, _), (_, verified_back, _) = await handshake(server, client)

    assert shown == initiating.der  # the handshake went through: dialback may follow
    assert verified is None
    assert verified_back is not None


async def test_an_unverifiable_receiving_certificate_is_shown_but_not_verified(
    tmp_path: Path,
) -> None:
    domains = Domains(tmp_path)
    receiving = domains.ca.issue(names("receiving.test"), self_signed=True)
    server, client = domains.contexts(receiving, domains.ca.issue(names("initiating.test")))
    (_, verified, _), (shown_back, verified_back, _) = await handshake(server, client)

    assert shown_back == receiving.der
    assert verified_back is None
    assert verified is not None


async def test_a_certificate_for_another_domain_verifies_but_names_only_that_one(
    tmp_path: Path,
) -> None:
    domains = Domains(tmp_path)
    initiating = domains.ca.issue(names("elsewhere.test"))
    server, client = domains.contexts(domains.ca.issue(names("receiving.test")), initiating)
    (_, verified, _), _ = await handshake(server, client)

    assert verified == initiating.der
    assert not certificate_names_domain(verified, "initiating.test")


async def test_a_peer_without_a_certificate_is_not_verified(tmp_path: Path) -> None:
    domains = Domains(tmp_path)
    server, _ = domains.contexts(
        domains.ca.issue(names("receiving.test")), domains.ca.issue(names("x.test"))
    )
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(domains.ca_file)
    bare.check_hostname = False
    (shown, verified, _), _ = await handshake(server, bare)

    assert shown is None and verified is None


def test_a_bad_ca_file_names_itself(tmp_path: Path) -> None:
    domains = Domains(tmp_path)
    files = domains.files("receiving", domains.ca.issue(names("receiving.test")))
    bad = tmp_path / "bad.pem"
    bad.write_text("not PEM")
    with pytest.raises(TlsError, match="bad.pem"):
        s2s_server_context(*files, bad)
    with pytest.raises(TlsError, match="missing.pem"):
        s2s_client_context(*files, tmp_path / "missing.pem")


def test_without_a_ca_file_the_contexts_still_ask_for_and_judge_certificates(
    tmp_path: Path,
) -> None:
    domains = Domains(tmp_path)
    files = domains.files("receiving", domains.ca.issue(names("receiving.test")))
    server, client = s2s_server_context(*files, None), s2s_client_context(*files, None)
    assert server.verify_mode == client.verify_mode == ssl.CERT_OPTIONAL
    assert not client.check_hostname


def test_the_verdicts_are_the_same_under_uvloop(tmp_path: Path) -> None:
    """heron serves on uvloop, whose TLS layer wraps the same OpenSSL objects."""
    domains = Domains(tmp_path)
    receiving = domains.ca.issue(names("receiving.test"))
    initiating = domains.ca.issue(names("initiating.test"), self_signed=True)
    server, client = domains.contexts(receiving, initiating)
    (shown, verified, _), (_, verified_back, _) = uvloop.run(handshake(server, client))

    assert shown == initiating.der and verified is None
    assert verified_back == receiving.der
