"""The TURN URLs a web page is given for the port-443 mux take real allocations through it.

A running heron with ``[mux] listen``: the first two URLs of click-to-call's
``/call/NAME/config.json`` (TURN over TLS and over UDP on the mux port) and their
short-lived credentials go, unchanged, to aioice (the TURN client aiortc uses), which
allocates a relay through the mux with each. No browser: an asyncio module of its own.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aioice.turn import create_turn_endpoint

from tests.browser.conftest import DOMAIN, LOCALHOST, STAFF, TlsFiles, web_heron
from tests.support.config import free_port

pytestmark = pytest.mark.interop

TIMEOUT = 10.0


def _get_json(url: str) -> dict[str, Any]:
    unverified = ssl._create_unverified_context()  # our own test server, on loopback
    with urllib.request.urlopen(url, context=unverified, timeout=TIMEOUT) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


async def test_advertised_mux_turn_urls_allocate_through_the_mux(
    tmp_path: Path, browser_tls: TlsFiles
) -> None:
    mux_port = free_port()
    settings = {
        "mux": {"listen": [f"{LOCALHOST}:{mux_port}"]},
        "web": {"click_to_call": {"sales": f"alice@{DOMAIN}"}},
    }
    with web_heron(tmp_path / "heron", browser_tls, STAFF, settings) as server:
        config = await asyncio.to_thread(_get_json, server.url("/call/sales/config.json"))
        turn = config["ice_servers"][-1]
        advertised = turn["urls"][:2]
        assert advertised == [
            f"turns:{LOCALHOST}:{mux_port}?transport=tcp",
            f"turn:{LOCALHOST}:{mux_port}?transport=udp",
        ]
        for url in advertised:
            scheme, _, rest = url.partition(":")
            where = urlsplit(f"//{rest}")
            assert where.hostname is not None and where.port is not None
            context = None
            if scheme == "turns":
                # RFC 7443: the ALPN stun.turn, by which the mux knows TURN.
                context = ssl.create_default_context(cafile=str(browser_tls.certificate))
                context.set_alpn_protocols(["stun.turn"])
            transport, _ = await asyncio.wait_for(
                create_turn_endpoint(
                    asyncio.DatagramProtocol,
                    server_addr=(where.hostname, where.port),
                    username=turn["username"],
                    password=turn["credential"],
                    ssl=context,
                    transport=where.query.removeprefix("transport="),
                ),
                TIMEOUT,
            )
            try:
                relayed = transport.get_extra_info("sockname")
                assert relayed is not None and relayed[1] > 0, url
            finally:
                transport.close()
