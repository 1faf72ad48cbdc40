"""TLS between servers (XMPP s2s): both sides present certificates, and a certificate that
does not verify is *noted*, not refused, so the stream can fall back to dialback.

RFC 6120 §13.7.2 and XEP-0178/XEP-0220 want what Prosody does by default: a peer whose
certificate chains to a trusted CA authenticates with SASL EXTERNAL, one whose certificate
does not (self-signed, expired, unknown CA) still gets an encrypted stream and proves its
domain by dialback, unless ``s2s_secure_auth`` refuses it. Whether the certificate names
the domain is :mod:`heron.xmpp.s2s.identity`'s question, asked of :func:`verified_peer`'s
answer: SRV targets differ from the domain, so OpenSSL's host name check is off.

Why ctypes. Python's ``ssl`` offers CERT_NONE, under which a server does not even ask for
a client certificate, and CERT_OPTIONAL/CERT_REQUIRED, under which a certificate that
fails verification aborts the handshake; it has no verify callback. Verifying the chain
ourselves (``cryptography.x509.verification``) after CERT_NONE would need the certificate
the server never asked for. So :func:`_judge_later` installs, on the context's OpenSSL
``SSL_CTX``, a verify callback that accepts every certificate: OpenSSL still verifies the
chain and keeps the outcome, which :func:`verified_peer` reads with
``SSL_get_verify_result``. The functions come from the libssl that Python's ``_ssl`` is
linked to; the ``SSL_CTX``/``SSL`` pointers are the first fields of CPython's context and
socket objects, and :func:`_openssl` checks them against each other once, refusing to run
(TlsError) rather than guess if a Python build lays them out differently.

Purpose: a server's certificate is what an initiating server presents, and public CAs
(Let's Encrypt since 2026) issue them with the serverAuth extended key usage only, so the
receiving side checks the peer's chain for the TLS-server purpose rather than OpenSSL's
default TLS-client one (``SSL_CTX_set_purpose``); without that, such a peer would never get
SASL EXTERNAL.
"""

from __future__ import annotations

import _ssl
import ctypes
import ssl
from functools import cache
from pathlib import Path

from heron.errors import TlsError
from heron.tls import load_chain

__all__ = ["S2S_ALPN", "s2s_client_context", "s2s_server_context", "verified_peer"]

S2S_ALPN = "xmpp-server"
"""XEP-0368 §3: the ALPN protocol of direct-TLS server-to-server streams."""

_X509_V_OK = 0
_SSL_VERIFY_PEER = 0x01
_X509_PURPOSE_SSL_SERVER = 2
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _go_on(preverify_ok: int, store: int | None) -> int:
    """OpenSSL's verify callback: go on whatever the verdict; the verdict stays readable."""
    return 1


_ACCEPT = _VerifyCallback(_go_on)


class _OpenSsl:
    """The few libssl functions Python's ssl module leaves out, on the library it uses."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(_ssl.__file__)
        self.set_verify = lib.SSL_CTX_set_verify
        self.set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
        self.set_verify.restype = None
        self.get_verify_mode = lib.SSL_CTX_get_verify_mode
        self.get_verify_mode.argtypes = [ctypes.c_void_p]
        self.get_verify_mode.restype = ctypes.c_int
        self.verify_result = lib.SSL_get_verify_result
        self.verify_result.argtypes = [ctypes.c_void_p]
        self.verify_result.restype = ctypes.c_long
        self.set_purpose = lib.SSL_CTX_set_purpose
        self.set_purpose.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.set_purpose.restype = ctypes.c_int
        self.ssl_ctx = lib.SSL_get_SSL_CTX
        self.ssl_ctx.argtypes = [ctypes.c_void_p]
        self.ssl_ctx.restype = ctypes.c_void_p

    @staticmethod
    def context_pointer(context: ssl.SSLContext) -> int | None:
        """``SSL_CTX *ctx``, the field after PyObject_HEAD in CPython's PySSLContext."""
        return ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value

    @staticmethod
    def connection_pointer(connection: object) -> int | None:
        """``SSL *ssl``, after PyObject_HEAD and the socket weakref in PySSLSocket."""
        offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)
        return ctypes.c_void_p.from_address(id(connection) + offset).value


@cache
def _openssl() -> _OpenSsl:
    """The functions, once their pointers proved right on a throwaway connection."""
    try:
        openssl = _OpenSsl()
    except (OSError, AttributeError) as exc:
        raise TlsError(f"tls: cannot reach the OpenSSL Python uses: {exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_OPTIONAL  # SSL_VERIFY_PEER alone
    probe = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe.invalid")
    pointer = openssl.context_pointer(context)
    connection = openssl.connection_pointer(probe._sslobj)  # type: ignore[attr-defined]
    if (
        not pointer
        or not connection
        or openssl.get_verify_mode(pointer) != _SSL_VERIFY_PEER
        or openssl.ssl_ctx(connection) != pointer
    ):
        raise TlsError("tls: this Python's ssl objects are not laid out as heron expects")
    return openssl


def _judge_later(context: ssl.SSLContext) -> None:
    """Verify the peer's chain but let the handshake go on whatever the outcome."""
    openssl = _openssl()
    openssl.set_verify(openssl.context_pointer(context), _SSL_VERIFY_PEER, _ACCEPT)


def _trust(context: ssl.SSLContext, ca_file: Path | None) -> None:
    if ca_file is None:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        return
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"tls: {ca_file} is not a readable PEM file of CA certificates: {exc}"
        ) from None


def s2s_server_context(cert_path: Path, key_path: Path, ca_file: Path | None) -> ssl.SSLContext:
    """For streams other servers open: our certificate, a request for theirs (verified
    against ``ca_file``, else the system's CAs, never refused), ALPN ``xmpp-server``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain(context, cert_path, key_path)
    _trust(context, ca_file)
    context.set_alpn_protocols([S2S_ALPN])
    context.verify_mode = ssl.CERT_OPTIONAL
    _judge_later(context)
    openssl = _openssl()
    if openssl.set_purpose(openssl.context_pointer(context), _X509_PURPOSE_SSL_SERVER) != 1:
        raise TlsError("tls: OpenSSL refused the TLS-server purpose for peer certificates")
    return context


def s2s_client_context(cert_path: Path, key_path: Path, ca_file: Path | None) -> ssl.SSLContext:
    """For streams heron opens: our certificate for the peer to check, theirs verified
    against ``ca_file`` (else the system's CAs) but not refused, and no host name check
    (the caller passes the domain as ``server_hostname`` for SNI and checks identity)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    load_chain(context, cert_path, key_path)
    _trust(context, ca_file)
    context.set_alpn_protocols([S2S_ALPN])
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _judge_later(context)
    return context


def verified_peer(connection: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
    """The peer's certificate (DER) when its chain verified, else None (no certificate,
    or one OpenSSL could not verify)."""
    der = connection.getpeercert(binary_form=True)
    if not der:
        return None
    openssl = _openssl()
    pointer = openssl.connection_pointer(connection._sslobj)  # type: ignore[union-attr]
    if not pointer or openssl.ssl_ctx(pointer) != openssl.context_pointer(connection.context):
        raise TlsError("tls: this connection's OpenSSL state cannot be read")
    return der if openssl.verify_result(pointer) == _X509_V_OK else None
