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
