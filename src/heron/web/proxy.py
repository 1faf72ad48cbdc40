"""Who the client is behind a reverse proxy: X-Forwarded-For from trusted proxies only.

``web.trusted_proxies`` names the proxies whose headers heron believes, as nginx's
``set_real_ip_from`` with ``real_ip_recursive on`` does: walking X-Forwarded-For from
the right (the hop the proxy itself appended), every trusted address is skipped and the
first other one is the client. Anything a client writes into the header itself sits
left of that and is never reached. A request from anyone else keeps its own address,
whatever headers it carries.

On a plain-HTTP listener (``web.plain_listen``, for a TLS-terminating proxy) the peer
is the proxy: unless it is trusted, the client is *unknown*. An unknown client is never
taken for loopback (``/metrics`` is not served to it) and has no source address for the
guess throttle, so one visitor's bad logins do not hold every visitor behind the proxy.

:func:`real_client` is the pure rule; :func:`middleware` applies it to each request,
which handlers then see with ``request.remote`` set to the client (``None`` for an
unknown one is kept apart: :func:`client_of`) and ``request.scheme`` set from the
proxy's X-Forwarded-Proto.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp import web
from aiohttp.typedefs import Middleware

from heron.component import WebHandler

__all__ = ["CLIENT", "Client", "client_of", "is_trusted", "middleware", "real_client"]

Network = IPv4Network | IPv6Network

_MAX_HOPS = 32
"""X-Forwarded-For entries looked at, from the right; a longer chain is a forgery."""


@dataclass(frozen=True, slots=True)
class Client:
    """The client behind a request, as far as heron can tell."""

    address: str | None
    """Its IP address; None when a plain listener's peer is an untrusted proxy."""
    proxied: bool
    """The request came through a trusted proxy."""

    @property
    def is_loopback(self) -> bool:
        """A client on this host (never an unknown one)."""
        address = _parse(self.address or "")
        return address is not None and address.is_loopback


CLIENT = web.RequestKey("heron.client", Client)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]").partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    """``address`` lies in one of the ``trusted`` networks."""
    parsed = _parse(address or "")
    return parsed is not None and _within(parsed, trusted)


def _within(address: IPv4Address | IPv6Address, networks: Iterable[Network]) -> bool:
    return any(address in net for net in networks if net.version == address.version)


def real_client(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network], *, tls: bool
) -> Client:
    """The client of a request from ``peer`` carrying the X-Forwarded-For header values
    ``forwarded_for``, on an HTTPS (``tls``) or a plain listener."""
    address = _parse(peer or "")
    if address is None:
        return Client(None, False)
    if not _within(address, trusted):
        return Client(str(address) if tls else None, False)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = address
    for hop in reversed(hops[-_MAX_HOPS:]):
        parsed = _parse(hop)
        if parsed is None:
            break  # beyond a malformed hop nothing is believed
        client = parsed
        if not _within(parsed, trusted):
            break
    return Client(str(client), bool(hops))


def client_of(request: web.Request) -> Client:
    """The request's client, as :func:`middleware` found it (else its peer)."""
    client = request.get(CLIENT)
    return client if client is not None else Client(request.remote, False)


def middleware(trusted: Sequence[Network]) -> Middleware:
    """Resolve each request's client (see the module docstring)."""
    networks = tuple(trusted)

    @web.middleware
    async def resolve(request: web.Request, handler: WebHandler) -> web.StreamResponse:
        tls = request.secure
        peer = request.remote
        client = real_client(peer, request.headers.getall("X-Forwarded-For", ()), networks, tls=tls)
        if is_trusted(peer, networks):
            proto = request.headers.get("X-Forwarded-Proto", "").rpartition(",")[2].strip()
            scheme = "https" if tls or proto.lower() == "https" else "http"
            request = request.clone(remote=client.address or peer or "", scheme=scheme)
        request[CLIENT] = client
        return await handler(request)

    return resolve
