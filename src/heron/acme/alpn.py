"""TLS-ALPN-01 (RFC 8737) answered on the port-443 mux.

The mux hands over each ClientHello offering ``acme-tls/1`` (the ALPN id chooses the
service before any other, :mod:`heron.mux.classify`); the handshake answers with the
challenge certificate for the name the CA asked by SNI, then the connection is closed:
§3 "Once the handshake is completed, the client MUST NOT exchange any further data".
Names not being proven get an ``unrecognized_name`` alert.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from heron.acme.messages import ALPN_PROTOCOL, tls_alpn_certificate
from heron.handoff import AcceptedSockets

__all__ = ["AlpnResponder"]

log = logging.getLogger(__name__)


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8737 §3: "TLS 1.2 or higher"
    context.set_alpn_protocols([ALPN_PROTOCOL])
    return context


class _Hangup(asyncio.Protocol):
    """The handshake was the whole answer."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class AlpnResponder:
    """The :class:`heron.acme.client.Responder` behind the mux's ``acme-tls`` handoff.

    ``scratch`` is a private directory: Python's ssl loads certificates from files
    only, so each challenge certificate passes through one there, removed at once.
    """

    def __init__(
        self, scratch: Path, handshake_timeout: float, now: Callable[[], datetime]
    ) -> None:
        self._scratch = scratch
        self._handshake_timeout = handshake_timeout
        self._now = now
        self._by_name: dict[str, ssl.SSLContext] = {}
        self._accepted = AcceptedSockets("acme")
        self._entry = _context()
        self._entry.sni_callback = self._choose

    def publish(self, name: str, authorization: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = tls_alpn_certificate(name, authorization, self._now(), key)
        context = _context()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ) + certificate.public_bytes(serialization.Encoding.PEM)
        self._scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, path = tempfile.mkstemp(dir=self._scratch, suffix=".pem")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        self._by_name[name.lower()] = context

    def withdraw(self, name: str) -> None:
        self._by_name.pop(name.lower(), None)

    def take(self, sock: socket.socket, tls: bool) -> None:
        """The mux's handoff: a connection whose ClientHello offered ``acme-tls/1``."""
        if not tls:
            sock.close()
            return
        self._accepted.serve(_Hangup, sock, self._entry, self._handshake_timeout)

    def close(self) -> None:
        self._accepted.close()

    def _choose(
        self, connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> int | None:
        context = self._by_name.get(name.lower()) if name else None
        if context is None:
            log.debug("acme: TLS-ALPN-01 handshake for %r, which is not being proven", name)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        connection.context = context
        return None
