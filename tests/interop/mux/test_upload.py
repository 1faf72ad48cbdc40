"""XEP-0363 on a heron whose web has no listener of its own, only the port-443 mux: the
upload service is still offered, its slots point at the mux port, and slixmpp's
xep_0363 uploads a file that a plain HTTPS client then downloads through the mux."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import aiohttp.connector
import pytest

from tests.interop.mux.support import ACCOUNTS, DOMAIN, MuxHeron, mux_heron
from tests.interop.xmpp.support import TIMEOUT, client_context, log_out, login

pytestmark = pytest.mark.interop


@pytest.fixture
def web_on_mux_only(tmp_path: Path) -> Iterator[MuxHeron]:
    with mux_heron(tmp_path / "heron", web_listen=False) as server:
        # slixmpp uploads with aiohttp's default verifying context: it learns the CA.
        context = aiohttp.connector._SSL_CONTEXT_VERIFIED
        assert context is not None
        context.load_verify_locations(cafile=str(server.certificate))
        yield server


async def test_xep0363_upload_and_download_through_the_mux_without_web_listen(
    web_on_mux_only: MuxHeron, tmp_path: Path
) -> None:
    server = web_on_mux_only
    photo = tmp_path / "mux.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    client = await login(
        f"alice@{DOMAIN}/mux",
        ACCOUNTS["alice"],
        server.port,
        client_context(server.xmpp),
        plugins=("xep_0030", "xep_0363"),
    )
    try:
        url = await client.plugin["xep_0363"].upload_file(photo, timeout=TIMEOUT)
    finally:
        await log_out([client])
    assert url.startswith(f"https://{DOMAIN}:{server.port}/upload/"), url
    download = client_context(server.xmpp)
    download.set_alpn_protocols(["http/1.1"])  # as every HTTP client offers; none is TURN
    connector = aiohttp.TCPConnector(ssl=download)
    async with aiohttp.ClientSession(connector=connector) as http:
        response = await http.get(url)
        assert response.status == 200
        assert await response.read() == photo.read_bytes()
