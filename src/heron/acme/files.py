"""ACME's files in the data directory: the account key and the certificate, owner-only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from heron.acme.client import Issued
from heron.config import Config
from heron.errors import TlsError
from heron.tls import write_self_signed

__all__ = ["account_key", "install", "placeholder"]

ACCOUNT_KEY = "account.key"


def _private_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` whole (a reader sees the old file or the new one), mode 0600."""
    temporary = path.with_name(f".{path.name}.new")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise TlsError(f"tls.acme: cannot write {exc.filename or path}: {exc.strerror}") from None


def account_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    """The ACME account's key, made on first use; the CA knows the account by it."""
    path = directory / ACCOUNT_KEY
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(path, _private_bytes(key))
        return key
    except OSError as exc:
        raise TlsError(f"tls.acme: cannot read {path}: {exc.strerror}") from None
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise TlsError(f"tls.acme: {path} is not a PEM private key") from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise TlsError(f"tls.acme: {path} is not an EC key")
    return loaded


def install(config: Config, issued: Issued) -> None:
    """Put a new certificate and its key where every listener loads them from: the key
    first, so that the pair on disk is mismatched only until the certificate follows."""
    _write_private(config.key_path, _private_bytes(issued.key))
    _write_private(config.certificate_path, issued.chain)


def placeholder(config: Config) -> bool:
    """A self-signed certificate for the first start, so that every TLS listener (the
    port-443 mux that proves the names included) starts before the CA has issued one."""
    if config.certificate_path.exists() and config.key_path.exists():
        return False
    write_self_signed(config.certificate_path, config.key_path, config.tls_names, days=90)
    os.chmod(config.certificate_path, 0o600)
    return True
