"""RFC 8555 over HTTPS: one certificate order from account to chain, on aiohttp.

A thin adapter: :mod:`heron.acme.messages` signs the requests and reads the answers;
this module posts them, keeps the replay nonce and polls. Proving a name is the
caller's :class:`Responder` (heron's is the port-443 mux, :mod:`heron.acme.alpn`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from heron.acme.messages import (
    MAX_BODY,
    AcmeError,
    AcmeProblem,
    Authorization,
    Directory,
    Order,
    Status,
    csr,
    key_authorization,
    parse_json,
    sign,
)

__all__ = ["AcmeClient", "Issued", "Responder"]

log = logging.getLogger(__name__)

CHALLENGE = "tls-alpn-01"
_JOSE = {"Content-Type": "application/jose+json"}
_PEM_CHAIN = "application/pem-certificate-chain"
_WAITING = (Status.PENDING, Status.PROCESSING)
_POLL_LIMIT = 60
"""Polls of one authorization or order before giving up (RFC 8555 §7.5.1 leaves the
number to the client): a minute at the default second between them."""


class Responder(Protocol):
    """Answers the CA's validation connections for names being proven."""

    def publish(self, name: str, authorization: str) -> None:
        """Answer validation of ``name`` with proof of ``authorization`` (RFC 8555 §8.1)."""

    def withdraw(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate chain in PEM (leaf first) for the key it was ordered with."""

    chain: bytes
    key: ec.EllipticCurvePrivateKey


@dataclass(slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class AcmeClient:
    """One account on one CA; :meth:`issue` runs an order from start to chain.

    Each request is a JWS POST (RFC 8555 §6.2) carrying a fresh nonce from the last
    answer's Replay-Nonce; a badNonce problem is retried once with the nonce it brought,
    as §6.5 asks ("the client SHOULD retry the request using the new nonce").
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        directory_url: str,
        account_key: ec.EllipticCurvePrivateKey,
        *,
        trust: ssl.SSLContext,
        email: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._session = session
        self._directory_url = directory_url
        self._key = account_key
        self._trust = trust
        self._email = email
        self._poll_interval = poll_interval
        self._nonce: str | None = None
        self._kid: str | None = None

    async def issue(
        self,
        names: Sequence[str],
        responder: Responder,
        certificate_key: ec.EllipticCurvePrivateKey,
    ) -> Issued:
        """Order a certificate for ``names`` (RFC 8555 §7.4), prove each by TLS-ALPN-01
        through ``responder``, finalize with a CSR for ``certificate_key``, download."""
        directory = Directory.parse(parse_json((await self._get(self._directory_url)).body))
        if self._kid is None:
            self._kid = await self._account(directory)
        identifiers = [{"type": "dns", "value": name} for name in names]
        placed = await self._post(directory, directory.new_order, {"identifiers": identifiers})
        order_url = placed.headers.get("Location")
        if not order_url:
            raise AcmeError("the CA's new order has no Location")
        order = Order.parse(parse_json(placed.body))
        await self._authorize(directory, order.authorizations, responder)
        order = await self._poll_order(directory, order_url, (Status.PENDING,))
        if order.status is not Status.READY:
            raise AcmeError(f"the order is {order.status}, not ready: {order.problem}")
        finalize = {"csr": csr(names, certificate_key)}
        order = Order.parse(
            parse_json((await self._post(directory, order.finalize, finalize)).body)
        )
        if order.status is not Status.VALID:
            order = await self._poll_order(directory, order_url, (Status.PROCESSING, Status.READY))
        if order.status is not Status.VALID or order.certificate is None:
            raise AcmeError(f"the order is {order.status}, not valid: {order.problem}")
        chain = await self._post(directory, order.certificate, None, accept=_PEM_CHAIN)
        return Issued(chain.body, certificate_key)

    async def _account(self, directory: Directory) -> str:
        """newAccount (§7.3): the same key finds the same account, so heron keeps the key
        alone and asks for the account URL at each order."""
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if self._email:
            payload["contact"] = [f"mailto:{self._email}"]
        answer = await self._post(directory, directory.new_account, payload)
        parse_json(answer.body)
        kid = answer.headers.get("Location")
        if not kid:
            raise AcmeError("the CA's new account has no Location")
        return kid

    async def _authorize(
        self, directory: Directory, urls: Sequence[str], responder: Responder
    ) -> None:
        published: list[str] = []
        try:
            pending: list[tuple[str, Authorization]] = []
            for url in urls:
                authorization = await self._authorization(directory, url)
                if authorization.status is Status.VALID:
                    continue  # proven recently: the CA may reuse it (§7.1.4)
                if authorization.status is not Status.PENDING:
                    raise AcmeError(
                        f"{authorization.name}: {authorization.status}: {authorization.problem}"
                    )
                if CHALLENGE not in authorization.challenges:
                    offered = ", ".join(authorization.challenges) or "none"
                    raise AcmeError(
                        f"{authorization.name}: the CA offers no {CHALLENGE} ({offered})"
                    )
                challenge_url, token = authorization.challenges[CHALLENGE]
                responder.publish(authorization.name, key_authorization(token, self._key))
                published.append(authorization.name)
                await self._post(directory, challenge_url, {})  # §7.5.1: "{}" says ready
                pending.append((url, authorization))
            for url, authorization in pending:
                for _ in range(_POLL_LIMIT):
                    authorization = await self._authorization(directory, url)
                    if authorization.status not in _WAITING:
                        break
                    await asyncio.sleep(self._poll_interval)
                if authorization.status is not Status.VALID:
                    raise AcmeError(
                        f"{authorization.name}: {authorization.status}: {authorization.problem}"
                    )
                log.info("acme: %s proven", authorization.name)
        finally:
            for name in published:
                responder.withdraw(name)

    async def _authorization(self, directory: Directory, url: str) -> Authorization:
        return Authorization.parse(parse_json((await self._post(directory, url, None)).body))

    async def _poll_order(self, directory: Directory, url: str, waiting: Sequence[Status]) -> Order:
        for _ in range(_POLL_LIMIT):
            order = Order.parse(parse_json((await self._post(directory, url, None)).body))
            if order.status not in waiting:
                return order
            await asyncio.sleep(self._poll_interval)
        raise AcmeError(f"the order stayed {order.status} for {_POLL_LIMIT} polls")

    async def _post(
        self,
        directory: Directory,
        url: str,
        payload: Mapping[str, Any] | None,
        accept: str = "application/json",
    ) -> _Answer:
        for retry in (True, False):
            if self._nonce is None:
                self._nonce = (await self._head(directory.new_nonce)).headers.get("Replay-Nonce")
                if not self._nonce:
                    raise AcmeError("the CA's newNonce gave no Replay-Nonce")
            body = sign(self._key, url, self._nonce, payload, self._kid)
            self._nonce = None
            answer = await self._send("POST", url, body, {**_JOSE, "Accept": accept})
            if answer.status < 400:
                return answer
            try:
                parse_json(answer.body)
            except AcmeProblem as problem:
                if problem.kind == "badNonce" and retry:
                    continue
                raise
            raise AcmeError(f"the CA answered {answer.status} to {url}")
        raise AssertionError("unreachable: the second try returns or raises")

    async def _get(self, url: str) -> _Answer:
        return await self._send("GET", url, None, {})

    async def _head(self, url: str) -> _Answer:
        return await self._send("HEAD", url, None, {})

    async def _send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> _Answer:
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, ssl=self._trust
            ) as response:
                data = await response.content.read(MAX_BODY + 1)
                while len(data) <= MAX_BODY and not response.content.at_eof():
                    more = await response.content.read(MAX_BODY + 1 - len(data))
                    if not more:
                        break
                    data += more
                if (nonce := response.headers.get("Replay-Nonce")) is not None:
                    self._nonce = nonce
                return _Answer(response.status, response.headers, data)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AcmeError(f"cannot reach the CA at {url}: {exc or type(exc).__name__}") from None
