"""WebSocket opening handshakes checked before any WebSocket route sees them (RFC 6455 §4.2.1).

aiohttp checks the handshake as it prepares the upgrade, and answers a bad one
with a 400 whose text echoes the client's Upgrade, Connection or version
header; a header that is not valid UTF-8 makes that answer raise instead, and
a non-ASCII key makes its decoding raise: a traceback per request on every
WebSocket route (SIP's ``/sip``, XMPP's ``/xmpp-websocket``). Here the opening
is checked first and a bad one gets a short 400 that echoes nothing.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy

from heron.component import WebHandler

__all__ = ["middleware", "valid_key", "valid_opening"]

_KEY_BYTES = 16
_VERSION = "13"


def valid_key(key: str | None) -> bool:
    """The base64 of 16 bytes (§4.2.1 item 5)."""
    if key is None or not key.isascii():
        return False
    try:
        return len(b64decode(key.strip(), validate=True)) == _KEY_BYTES
    except binascii.Error:
        return False


def valid_opening(method: str, headers: CIMultiDictProxy[str]) -> bool:
    """Whether a request is a WebSocket opening handshake RFC 6455 §4.2.1 accepts."""
    connection = headers.get("Connection", "").lower()
    return (
        method == "GET"
        and headers.get("Upgrade", "").strip().lower() == "websocket"
        and "upgrade" in (token.strip() for token in connection.split(","))
        and headers.get("Sec-WebSocket-Version", "").strip() == _VERSION
        and valid_key(headers.get("Sec-WebSocket-Key"))
    )


def middleware(paths: Collection[str]) -> Middleware:
    """A middleware that lets only valid openings reach the WebSocket routes at ``paths``."""
    guarded = frozenset(paths)

    @web.middleware
    async def check(request: web.Request, handler: WebHandler) -> web.StreamResponse:
        if request.path in guarded and not valid_opening(request.method, request.headers):
            return web.Response(status=400, text="WebSocket opening handshake expected\n")
        return await handler(request)

    return check
