"""XEP-0363 HTTP File Upload with clients heron did not write: slixmpp's xep_0363 and
go-sendxmpp ``-h`` upload a file, and the recipient downloads what the message points to."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from tests.interop.xmpp.support import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    XmppServer,
    client_context,
    logged_in,
)
from tests.support.tools import require_tool


async def _download(server: XmppServer, url: str) -> bytes:
    connector = aiohttp.TCPConnector(ssl=client_context(server))
    async with aiohttp.ClientSession(connector=connector) as http:
        response = await http.get(url)
        assert response.status == 200, url
        return await response.read()


async def test_slixmpp_xep0363_upload_then_the_recipient_downloads(
    trusting_heron: XmppServer, tmp_path: Path
) -> None:
    photo = tmp_path / "holiday photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 40)
    plugins = ("xep_0030", "xep_0066", "xep_0363")
    async with logged_in(trusting_heron, "niaj", "olivia", plugins=plugins) as (niaj, olivia):
        url = await niaj.plugin["xep_0363"].upload_file(photo, timeout=TIMEOUT)
        message = niaj.make_message(f"olivia@{DOMAIN}", url, mtype="chat")
        message["oob"]["url"] = url  # XEP-0066, as Conversations marks an upload
        message.send()
        received = await olivia.next_message(url)
        assert received["oob"]["url"] == url
    assert await _download(trusting_heron, url) == photo.read_bytes()


async def test_go_sendxmpp_uploads_a_file_the_recipient_downloads(
    shared_xmpp: XmppServer, tmp_path: Path
) -> None:
    tool = require_tool("go-sendxmpp", "go-sendxmpp")
    document = tmp_path / "report.pdf"
    document.write_bytes(b"%PDF-1.4\n" + b"0123456789" * 300)
    async with logged_in(shared_xmpp, "peggy") as (peggy,):
        process = await asyncio.create_subprocess_exec(
            tool,
            "-u",
            f"rupert@{DOMAIN}",
            "-p",
            PASSWORD,
            "-j",
            f"127.0.0.1:{shared_xmpp.port}",
            "-h",
            str(document),
            f"peggy@{DOMAIN}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Go trusts the CAs of SSL_CERT_FILE: heron's self-signed certificate, for the
            # stream and the upload alike (its -n skips checks on the stream only).
            env={**os.environ, "SSL_CERT_FILE": str(shared_xmpp.certificate)},
        )
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, output.decode(errors="replace")
        received = await peggy.next_message()
    url = str(received["body"]).strip()
    assert url.startswith(f"https://{DOMAIN}:{shared_xmpp.web_port}/upload/"), url
    assert url.endswith("/report.pdf")
    assert await _download(shared_xmpp, url) == document.read_bytes()
