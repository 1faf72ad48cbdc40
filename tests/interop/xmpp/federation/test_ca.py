"""The test CA's certificates as Python's ssl (heron's TLS) judges them: valid for the names
issued (RFC 6125 DNS-ID), refused for another name and when expired. In memory, no sockets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.support.federation.ca import Issued, TestCa, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(tmp_path_factory.mktemp("ca"))


def _handshake(cafile: Path, issued: Issued, name: str) -> None:
    """A TLS handshake over memory buffers; the client verifies ``name`` against ``cafile``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(issued.cert, issued.key)
    client_context = ssl.create_default_context(cafile=str(cafile))
    to_client, from_client, to_server, from_server = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(to_client, from_client, server_hostname=name)
    server = server_context.wrap_bio(to_server, from_server, server_side=True)
    pending = [client, server]
    for _ in range(10):  # TLS 1.3 needs three flights; a handshake error raises at once
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if not pending:
            return
    raise AssertionError("the handshake did not finish")


def test_rfc6125_certificate_verifies_for_its_dns_ids(ca: TestCa) -> None:
    issued = ca.issue("heron.example", dns_ids=("heron.example", "conference.heron.example"))
    for name in ("heron.example", "conference.heron.example"):
        _handshake(ca.cafile, issued, name)


def test_rfc6125_certificate_for_another_name_is_refused(ca: TestCa) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(ca.cafile, ca.issue("wrong.example"), "heron.example")


def test_expired_certificate_is_refused(ca: TestCa) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        _handshake(ca.cafile, ca.issue("heron.example", expired=True), "heron.example")
