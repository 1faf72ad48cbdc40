"""Self-signed certificates and the checks ``heron check`` and ``heron serve`` make."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from heron.errors import TlsError
from heron.tls import inspect_certificate, server_context, write_self_signed


def test_self_signed_certificate_covers_names_and_hides_the_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls/c.pem", tmp_path / "tls/k.pem"
    info = write_self_signed(cert, key, ["falcot.com", "sip.falcot.com"], days=10)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    read = inspect_certificate(cert)
    assert read.names == ("falcot.com", "sip.falcot.com")
    assert read.not_after == info.not_after
    assert read.covers("sip.falcot.com") and not read.covers("xmpp.falcot.com")
    context = server_context(cert, key, alpn=("stun.turn",))
    assert isinstance(context, ssl.SSLContext)


def test_wildcard_covers_one_label_only() -> None:
    from datetime import UTC, datetime

    from heron.tls import CertificateInfo

    info = CertificateInfo(("*.falcot.com",), datetime.now(UTC))
    assert info.covers("sip.falcot.com")
    assert not info.covers("a.sip.falcot.com")
    assert not info.covers("falcot.com")


def test_missing_key_names_the_setting(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["localhost"])
    key.unlink()
    with pytest.raises(TlsError, match=r"^tls.key: .*k.pem does not exist"):
        server_context(cert, key)


def test_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    write_self_signed(tmp_path / "a.pem", tmp_path / "a.key", ["localhost"])
    write_self_signed(tmp_path / "b.pem", tmp_path / "b.key", ["localhost"])
    with pytest.raises(TlsError, match="not a matching PEM certificate and key"):
        server_context(tmp_path / "a.pem", tmp_path / "b.key")


def test_garbage_certificate_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match="is not a PEM certificate"):
        inspect_certificate(tmp_path / "c.pem")


def _served_leaf(context: ssl.SSLContext) -> bytes:
    """The certificate a new handshake on ``context`` presents, over memory BIOs."""
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    pipes = [ssl.MemoryBIO() for _ in range(4)]
    client = client_context.wrap_bio(pipes[0], pipes[1], server_hostname="localhost")
    server = context.wrap_bio(pipes[2], pipes[3], server_side=True)
    for _ in range(10):
        for side, outgoing, incoming in (
            (client, pipes[1], pipes[2]),
            (server, pipes[3], pipes[0]),
        ):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            incoming.write(outgoing.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_reloaded_certificate_is_presented_by_new_handshakes_on_live_contexts(
    tmp_path: Path,
) -> None:
    import gc

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from heron.tls import ServedCertificate

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["localhost"])
    served = ServedCertificate(cert, key)
    web, gone = served.context(alpn=("http/1.1",)), served.context()
    s2s = served.keep(server_context(cert, key))
    first = _served_leaf(web)
    del gone
    gc.collect()
    write_self_signed(cert, key, ["localhost"])
    assert served.reload() == 2  # a closed listener's context is not kept alive
    second = x509.load_pem_x509_certificate(cert.read_bytes())
    for context in (web, s2s):
        assert _served_leaf(context) == second.public_bytes(serialization.Encoding.DER)
    assert first != _served_leaf(web)


def test_a_bad_pair_on_reload_names_the_problem_and_changes_nothing(tmp_path: Path) -> None:
    from heron.tls import ServedCertificate

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["localhost"])
    served = ServedCertificate(cert, key)
    context = served.context()
    before = _served_leaf(context)
    write_self_signed(tmp_path / "other.pem", key, ["localhost"])  # a new key, the old cert
    with pytest.raises(TlsError, match="not a matching PEM certificate and key"):
        served.reload()
    assert _served_leaf(context) == before


def test_a_process_that_does_not_renew_follows_files_another_replaced(tmp_path: Path) -> None:
    """A TURN worker's contexts take the certificate the main process's ACME wrote."""
    from heron.tls import ServedCertificate

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["localhost"])
    served = ServedCertificate(cert, key)
    context = served.context()
    assert not served.follow()
    before = _served_leaf(context)
    write_self_signed(tmp_path / "new.crt", tmp_path / "new.key", ["localhost"])
    (tmp_path / "new.key").replace(key)
    (tmp_path / "new.crt").replace(cert)
    assert served.follow()
    assert not served.follow()
    assert _served_leaf(context) != before


def test_a_bad_pair_followed_is_logged_once_and_the_old_one_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from heron.tls import ServedCertificate

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["localhost"])
    served = ServedCertificate(cert, key)
    context = served.context()
    before = _served_leaf(context)
    write_self_signed(tmp_path / "new.crt", tmp_path / "new.key", ["localhost"])
    (tmp_path / "new.key").replace(key)  # the certificate is not replaced with it
    assert not served.follow()
    assert not served.follow()
    assert [r.message for r in caplog.records if "still serving" in r.message] == [
        f"tls: {cert} and {key} are not a matching PEM certificate and key"
        f" (KEY_VALUES_MISMATCH); still serving the certificate loaded before"
    ]
    assert _served_leaf(context) == before
