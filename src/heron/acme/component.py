"""``[tls] acme``: one certificate for every name heron serves, obtained and renewed.

A background task looks at the certificate at start and then daily
(:mod:`heron.acme.renewal`), orders a new one when it is missing, self-signed, short
of a name or within ``tls.acme_renew_before`` of expiry, and swaps it under every TLS
listener's live contexts (:class:`heron.tls.ServedCertificate`): new handshakes get
the new certificate, open connections keep theirs. ``heron tls renew`` forces an
order through the control socket.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from heron.acme.alpn import AlpnResponder
from heron.acme.client import AcmeClient
from heron.acme.files import account_key, install
from heron.acme.messages import AcmeError, check_chain
from heron.acme.renewal import CHECK_EVERY, RETRY_AFTER, renewal_reason
from heron.component import Listener, Services
from heron.config import Config
from heron.control import View
from heron.errors import TlsError
from heron.tls import CertificateInfo, inspect_certificate

__all__ = ["RENEW_COMMAND", "STATUS_VIEW", "AcmeComponent", "build_acme"]

log = logging.getLogger(__name__)

RENEW_COMMAND = "tls.renew"
"""Control command: order a certificate now; answers the ticket ``tls.acme`` reports as
``done`` once that order has ended."""
STATUS_VIEW = "tls.acme"
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


def build_acme(services: Services) -> AcmeComponent | None:
    return AcmeComponent(services) if services.config.tls.acme else None


def _now() -> datetime:
    return datetime.now(UTC)


class AcmeComponent:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._config = config = services.config
        self._responder = AlpnResponder(
            config.acme_dir / "scratch", config.limits.handshake_timeout, _now
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._requested = 0
        self._status: dict[str, Any] = {
            "state": "starting",
            "requested": 0,
            "done": 0,
            "issued": 0,
            "error": "",
            "not_after": "",
        }

    async def start(self) -> Sequence[Listener]:
        trust = self._trust()
        key = account_key(self._config.acme_dir)  # a bad file stops the start, in one line
        self._services.handoffs["acme-tls"] = self._responder.take
        self._services.commands[RENEW_COMMAND] = self._renew_command
        self._task = asyncio.get_running_loop().create_task(self._run(trust, key))
        return []

    def apply(self, config: Config) -> frozenset[str]:
        """Nothing: the CA, its account and the names are read at start; a reload of the
        certificate it wrote is :class:`~heron.tls.ServedCertificate`'s."""
        return frozenset()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._responder.close()

    def views(self) -> Mapping[str, View]:
        return {STATUS_VIEW: lambda: [dict(self._status)]}

    def _trust(self) -> ssl.SSLContext:
        """What the directory's HTTPS is verified with: ``tls.acme_ca``, else the system's."""
        ca = self._config.tls.acme_ca
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"tls.acme_ca: {ca} is not a readable PEM file of CAs: {exc}") from None

    def _renew_command(self, _argument: str) -> list[dict[str, Any]]:
        self._requested += 1
        self._status["requested"] = self._requested
        self._wake.set()
        return [{"ticket": self._requested}]

    async def _run(self, trust: ssl.SSLContext, key: ec.EllipticCurvePrivateKey) -> None:
        tls = self._config.tls
        async with aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT) as session:
            client = AcmeClient(session, tls.acme_directory, key, trust=trust, email=tls.acme_email)
            while True:
                ticket = self._requested
                self._wake.clear()
                wait = await self._check(client, forced=ticket > self._status["done"])
                self._status["done"] = ticket
                try:
                    async with asyncio.timeout(wait.total_seconds()):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _check(self, client: AcmeClient, *, forced: bool) -> timedelta:
        """Order a certificate if one is due (or ``forced``); how long until the next look."""
        config = self._config
        info = self._current()
        renew_before = timedelta(days=config.tls.acme_renew_before)
        reason = (
            "renewal asked for"
            if forced
            else renewal_reason(info, config.tls_names, _now(), renew_before)
        )
        if reason is None:
            self._status["state"] = "valid"
            return CHECK_EVERY
        log.info("acme: ordering a certificate from %s: %s", config.tls.acme_directory, reason)
        self._status["state"] = "ordering"
        try:
            issued = await client.issue(
                config.tls_names, self._responder, ec.generate_private_key(ec.SECP256R1())
            )
            check_chain(issued.chain, issued.key, config.tls_names)
            install(config, issued)
            contexts = self._services.certificate.reload()
        except (AcmeError, TlsError) as exc:
            return self._failed(str(exc))
        except Exception as exc:  # a bug must not end renewals for good: logged, retried
            log.exception("acme: the order failed")
            return self._failed(f"{type(exc).__name__}: {exc}")
        info = self._current()
        self._status.update(state="valid", error="", issued=self._status["issued"] + 1)
        log.info(
            "acme: certificate for %s until %s, served on %d TLS contexts",
            ", ".join(config.tls_names),
            info.not_after if info else "?",
            contexts,
        )
        return CHECK_EVERY

    def _failed(self, error: str) -> timedelta:
        log.error("acme: no certificate: %s; next try in %s", error, RETRY_AFTER)
        self._status.update(state="failed", error=error)
        return RETRY_AFTER

    def _current(self) -> CertificateInfo | None:
        try:
            info = inspect_certificate(self._config.certificate_path)
        except TlsError:
            return None
        self._status["not_after"] = info.not_after.isoformat()
        return info
