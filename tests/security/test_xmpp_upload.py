"""XEP-0363 uploads against a running heron over its real listeners: slots cannot be
forged, reused, stretched or aimed outside the upload directory; what is served never runs
script; size limits and each account's quota hold (XEP-0363 §4, §10)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from slixmpp.exceptions import IqError

from heron.credentials import load_or_create_secret
from heron.xmpp.upload import NAMESPACE, SlotSigner
from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    Client,
    XmppServer,
    client_context,
    logged_in,
    xmpp_server,
)

SERVICE = f"upload.{DOMAIN}"
MAX_SIZE = 1000
QUOTA = 2500
PLUGINS = ("xep_0030", "xep_0363")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    limits = {"upload_max_size": MAX_SIZE, "upload_quota": QUOTA}
    directory = tmp_path_factory.mktemp("heron-upload")
    with xmpp_server(directory, users=("alice", "bob", "mallory"), xmpp=limits) as running:
        yield running


async def _slot(client: Client, name: str, size: int, content_type: str) -> str:
    """The URL of a new slot (the PUT and the GET URL are one)."""
    answer = await client.plugin["xep_0363"].request_slot(
        SERVICE, name, size, content_type, timeout=TIMEOUT
    )
    slot = answer["http_upload_slot"]
    assert slot["put"]["url"] == slot["get"]["url"]
    return str(slot["put"]["url"])


def _session(server: XmppServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(server)))


async def _raw(server: XmppServer, request: bytes) -> bytes:
    """The status line heron answers a hand-written HTTP request with."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.web_port, ssl=client_context(server), server_hostname=DOMAIN
    )
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.readline(), TIMEOUT)
    finally:
        writer.close()


def _signer(server: XmppServer) -> SlotSigner:
    """The server's own slot key, from its data directory: a slot only heron could sign."""
    data = Path(server.heron.config).parent / "var"
    secret = load_or_create_secret(data / "sip_secret")
    return SlotSigner(hmac.digest(secret, b"heron xmpp: upload slots", "sha256"))


async def test_xep0363_s3_service_is_listed_with_its_largest_size(server: XmppServer) -> None:
    async with logged_in(server, "alice", plugins=PLUGINS) as (alice,):
        found = await alice.plugin["xep_0363"].find_upload_service(timeout=TIMEOUT)
        assert found is not None and str(found["from"]) == SERVICE
        values = found["disco_info"].iterables[0]["values"]
        assert values["FORM_TYPE"] == [NAMESPACE]
        assert values["max-file-size"] == str(MAX_SIZE)


async def test_upload_then_download_with_safe_headers(server: XmppServer) -> None:
    async with logged_in(server, "alice", plugins=PLUGINS) as (alice,):
        url = await _slot(alice, "cat.png", 4, "image/png")
    assert url.startswith(f"https://{DOMAIN}:{server.web_port}/upload/")
    async with _session(server) as http:
        put = await http.put(url, data=b"\x89PNG", headers={"Content-Type": "image/png"})
        assert put.status == 201
        again = await http.put(url, data=b"\x89PNG", headers={"Content-Type": "image/png"})
        assert again.status == 409  # a slot is uploaded to once
        got = await http.get(url)
        assert got.status == 200 and await got.read() == b"\x89PNG"
        assert got.headers["Content-Type"] == "image/png"
        assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert got.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["page.html", "drawing.svg"])
async def test_script_types_are_served_inert(server: XmppServer, name: str) -> None:
    content_type = "text/html" if name.endswith("html") else "image/svg+xml"
    body = b"<script>alert(1)</script>"
    async with logged_in(server, "bob", plugins=PLUGINS) as (bob,):
        url = await _slot(bob, name, len(body), content_type)
    async with _session(server) as http:
        assert (
            await http.put(url, data=body, headers={"Content-Type": content_type})
        ).status == 201
        got = await http.get(url)
        assert got.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in got.headers["Content-Security-Policy"]
        assert got.headers["X-Content-Type-Options"] == "nosniff"


async def test_forged_expired_or_renamed_slots_are_refused(server: XmppServer) -> None:
    async with logged_in(server, "bob", plugins=PLUGINS) as (bob,):
        url = await _slot(bob, "note.txt", 5, "text/plain")
    base, _, name = url.rpartition("/")
    token = base.rsplit("/", 1)[1]
    mac = token.partition(".")[2]
    forged = url.replace(mac, ("A" if mac[0] != "A" else "B") + mac[1:])
    renamed = f"{base}/other.txt"
    signer = _signer(server)
    slot = signer.check(token, name, now=None)
    expired = f"https://{DOMAIN}:{server.web_port}" + signer.path(replace(slot, expires=1))
    async with _session(server) as http:
        for bad in (forged, renamed, expired):
            put = await http.put(bad, data=b"hello", headers={"Content-Type": "text/plain"})
            assert put.status == 403, bad
            assert (await http.get(bad)).status == 404
        # The slot itself is still good and takes exactly its size, nothing else.
        for body in (b"hell", b"hello!"):
            put = await http.put(url, data=body, headers={"Content-Type": "text/plain"})
            assert put.status == 400
        mistyped = await http.put(url, data=b"hello", headers={"Content-Type": "text/html"})
        assert mistyped.status == 400
        assert (
            await http.put(url, data=b"hello", headers={"Content-Type": "text/plain"})
        ).status == 201


@pytest.mark.parametrize(
    "path",
    [
        "/upload/../heron.toml",
        "/upload/%2e%2e/%2e%2e/heron.toml",
        "/upload/x/..%2F..%2Fsip_secret",
        "/upload/..%2F..%2Fvar/sip_secret",
    ],
)
async def test_traversal_paths_reach_no_file(server: XmppServer, path: str) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
    status = await _raw(server, request)
    assert status.split()[1] in (b"400", b"403", b"404"), status


async def test_traversal_file_names_stay_in_their_slot(server: XmppServer) -> None:
    async with logged_in(server, "bob", plugins=PLUGINS) as (bob,):
        url = await _slot(bob, "../../../sip_secret", 3, "text/plain")
    assert url.endswith("/sip_secret") and "/../" not in url
    assert url.count("/") == len(f"https://{DOMAIN}:1/upload/t/n".split("/")) - 1
    async with _session(server) as http:
        assert (
            await http.put(url, data=b"abc", headers={"Content-Type": "text/plain"})
        ).status == 201
        assert await (await http.get(url)).read() == b"abc"
    assert (Path(server.heron.config).parent / "var" / "sip_secret").read_bytes() != b"abc"


async def test_xep0363_s4_file_too_large_and_quota_per_account(server: XmppServer) -> None:
    async with logged_in(server, "mallory", "alice", plugins=PLUGINS) as (mallory, alice):
        with pytest.raises(IqError) as too_large:
            await _slot(mallory, "big.bin", MAX_SIZE + 1, "application/octet-stream")
        assert too_large.value.condition == "not-acceptable"
        detail = too_large.value.iq.xml.find(f".//{{{NAMESPACE}}}max-file-size")
        assert detail is not None and detail.text == str(MAX_SIZE)
        urls = [
            await _slot(mallory, f"{n}.bin", MAX_SIZE, "application/octet-stream") for n in range(3)
        ]
        async with _session(server) as http:
            for url in urls[:2]:
                assert (await http.put(url, data=b"x" * MAX_SIZE)).status == 201
            # A slot handed out before the quota filled is refused at upload time.
            assert (await http.put(urls[2], data=b"x" * MAX_SIZE)).status == 413
        with pytest.raises(IqError) as over_quota:
            await _slot(mallory, "more.bin", MAX_SIZE, "application/octet-stream")
        assert over_quota.value.condition == "resource-constraint"
        # Another account's quota is its own.
        assert await _slot(alice, "mine.bin", MAX_SIZE, "application/octet-stream")
