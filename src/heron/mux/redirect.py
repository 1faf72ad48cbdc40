"""The answer to plain HTTP on the shared port: the same path over HTTPS, sans-IO.

nginx's ``return 301 https://$host$request_uri`` answers with the client's own Host
header; heron names its configured host instead, so that a forged Host cannot turn the
redirect into a link to somewhere else.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TARGET", "redirect"]

MAX_TARGET = 2048
"""Longest request target carried into the Location; a longer one redirects to ``/``."""

_REQUEST_LINE = re.compile(rb"[A-Z]{1,16} (/[!-~]*) HTTP/1\.[01]\r?\n")
"""RFC 9112 §3: method SP origin-form SP version; visible ASCII only, so nothing a
client sends can end the Location header early."""


def redirect(head: bytes, host: str, port: int) -> bytes:
    """The whole response to a request whose first bytes are ``head``: 301 to ``host``
    (and ``port`` unless 443) with the request's path, or ``/`` when the request line is
    not whole, too long or not in origin form."""
    match = _REQUEST_LINE.match(head)
    target = "/"
    if match is not None and len(match.group(1)) <= MAX_TARGET:
        target = match.group(1).decode("ascii")
    authority = host if port == 443 else f"{host}:{port}"
    return (
        "HTTP/1.1 301 Moved Permanently\r\n"
        f"Location: https://{authority}{target}\r\n"
        "Server: heron\r\n"
        "Content-Length: 0\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")
