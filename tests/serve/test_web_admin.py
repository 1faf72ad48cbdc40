"""The admin API on a real ``heron serve``: a user added over HTTPS registers over SIP.

The SIP client is tests/interop/sip/wire.py's, over wss://.../sip as a browser would,
so the account the API creates is checked by a digest computed outside heron.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.interop.sip.wire import UserAgent, WebSocketChannel, trusting
from tests.support.config import free_port
from tests.support.heron import RunningHeron, running_heron

ROOT = ("root@localhost", "root secret")


@pytest.fixture(scope="module")
def heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHeron, int]]:
    directory = tmp_path_factory.mktemp("heron-web-admin")
    port = free_port()
    settings = {
        "admins": [ROOT[0]],
        "sip": {"enabled": True, "listen": [f"127.0.0.1:{free_port()}"], "tls_listen": []},
        "web": {"listen": [f"127.0.0.1:{port}"]},
    }
    with running_heron(directory, settings, users=dict([ROOT])) as running:
        yield running, port
    assert "Traceback" not in "".join(running.log), "".join(running.log)


@pytest.fixture
async def admin(heron: tuple[RunningHeron, int]) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTPS session logged in as root; its X-CSRF-Token header set for writes."""
    running, port = heron
    context = trusting(str(running.config.parent / "var" / "tls" / "heron.crt"))
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(f"https://localhost:{port}", connector=connector) as session:
        form = {"address": ROOT[0], "password": ROOT[1]}
        async with session.post("/login", data=form, allow_redirects=False) as login:
            assert login.status == 302, await login.text()
        async with session.get("/api/session") as answer:
            session.headers["X-CSRF-Token"] = (await answer.json())["csrf"]
        yield session


async def sip_register(running: RunningHeron, port: int, user: str, password: str) -> int:
    context = trusting(str(running.config.parent / "var" / "tls" / "heron.crt"))
    channel = await WebSocketChannel.connect(f"wss://localhost:{port}/sip", context)
    try:
        _, final = await UserAgent(channel, user, password).register()
    finally:
        await channel.close()
    assert final.status is not None
    return final.status


async def test_user_added_over_the_api_registers_over_sip(
    heron: tuple[RunningHeron, int], admin: aiohttp.ClientSession
) -> None:
    running, port = heron
    body = {"address": "walter@localhost", "password": "walter secret"}
    async with admin.post("/api/users", json=body) as added:
        assert added.status == 201, await added.text()
    assert await sip_register(running, port, "walter", "walter secret") == 200
    async with admin.get("/api/registrations") as listed:
        rows = await listed.json()
    assert [row["aor"] for row in rows] == ["walter@localhost"]
    async with admin.delete("/api/users/walter@localhost") as deleted:
        assert deleted.status == 204
    async with admin.get("/api/users") as listed:
        assert "walter@localhost" not in {user["address"] for user in await listed.json()}


async def test_metrics_from_loopback_parse_as_prometheus_text(
    heron: tuple[RunningHeron, int], admin: aiohttp.ClientSession
) -> None:
    running, port = heron
    body = {"address": "vera@localhost", "password": "vera secret"}
    async with admin.post("/api/users", json=body) as added:
        assert added.status == 201
    assert await sip_register(running, port, "vera", "vera secret") == 200
    async with admin.get("/metrics") as response:
        assert response.status == 200
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    assert families["heron_sip_registrations"].type == "counter"
    assert families["heron_sip_registrations"].samples[0].value >= 1
    sizes = {s.labels["view"]: s.value for s in families["heron_view_rows"].samples}
    assert sizes["sip.registrations"] >= 1
    assert families["heron_web_sessions"].samples[0].value >= 1
    async with admin.get("/api/counters") as counters:
        assert (await counters.json())["sip"]["registrations"] >= 1


async def test_admin_page_needs_a_login_over_https(heron: tuple[RunningHeron, int]) -> None:
    running, port = heron
    context = trusting(str(running.config.parent / "var" / "tls" / "heron.crt"))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(f"https://localhost:{port}/admin", allow_redirects=False) as page,
    ):
        assert page.status == 302
        assert page.headers["Location"].startswith("/login?next=")
