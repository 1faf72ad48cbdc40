"""Stream Management (XEP-0198) with slixmpp's xep_0198 plugin: a phone whose TCP connection
is cut without a closing stream resumes its session and gets every message sent meanwhile
exactly once; one that never comes back (or is still away when heron stops) finds them in
offline storage; nobody else can take its session by its id. @xmpp/client (npm) resumes
over an RFC 7395 WebSocket.

Waits are on what the clients see: a ping answered (the server handled what was sent
before it), a session resumed, a contact's unavailable presence (the session ended).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError

from tests.interop.xmpp.support import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    Client,
    XmppServer,
    client_context,
    connect,
    log_out,
    login,
    subscribe_each_other,
    xmpp_server,
)
from tests.support.heron import serving
from tests.support.tools import missing, require_tool

SM = ("xep_0198", "xep_0199")
ROOT = Path(__file__).parents[3]


USERS = "alice bob carol dave erin frank grace heidi ivan judy mallory".split()
"""The accounts of this module's servers; each test keeps to its own."""


@pytest.fixture(scope="module")
def sm_xmpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    """heron as configured by default: sessions wait 300 s to be resumed."""
    with xmpp_server(tmp_path_factory.mktemp("heron-sm"), users=USERS) as server:
        yield server


@pytest.fixture(scope="module")
def brief_xmpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    """heron whose sessions wait one second to be resumed (``xmpp.resume_timeout``)."""
    directory = tmp_path_factory.mktemp("heron-sm-brief")
    with xmpp_server(directory, users=USERS[:4], xmpp={"resume_timeout": 1}) as server:
        yield server


async def settled(client: Client) -> None:
    """Once this returns, the server has handled everything ``client`` sent before."""
    await client.plugin["xep_0199"].ping(JID(DOMAIN), timeout=TIMEOUT)


async def enabled(client: Client) -> str:
    """The resumption id, once the server answered <enable resume='true'/>."""
    plugin = client.plugin["xep_0198"]
    if plugin.sm_id is None:
        done = asyncio.Event()
        client.add_event_handler("sm_enabled", lambda _: done.set())
        if plugin.sm_id is None:
            await asyncio.wait_for(done.wait(), TIMEOUT)
    assert plugin.sm_id
    return str(plugin.sm_id)


def cut(client: Client) -> None:
    """Drop the TCP connection, with no </stream:stream> (a phone out of reach)."""
    assert client.transport is not None
    client.transport.abort()


def bodies(client: Client) -> list[str]:
    """Every body ``client`` receives from now on, in order (duplicates included)."""
    seen: list[str] = []

    def on_message(message: slixmpp.Message) -> None:
        if message["body"]:
            seen.append(str(message["body"]))

    client.add_event_handler("message", on_message)
    return seen


async def resume(client: Client, server: XmppServer) -> None:
    resumed = asyncio.Event()
    client.add_event_handler("session_resumed", lambda _: resumed.set())
    client.connect("127.0.0.1", server.tls_port if client.enable_direct_tls else server.port)
    await asyncio.wait_for(resumed.wait(), TIMEOUT)


@pytest.mark.parametrize(
    ("direct_tls", "user", "other"),
    [(False, "alice", "bob"), (True, "carol", "dave")],
    ids=["starttls", "direct-tls"],
)
async def test_xep0198_slixmpp_resumes_after_a_cut_and_gets_each_message_once(
    sm_xmpp: XmppServer, direct_tls: bool, user: str, other: str
) -> None:
    phone = await connect(sm_xmpp, user, resource="phone", plugins=SM, direct_tls=direct_tls)
    contact = await connect(sm_xmpp, other, plugins=SM)
    try:
        await enabled(phone)
        seen = bodies(phone)
        for n in range(3):
            contact.send_message(mto=phone.boundjid, mbody=f"before {n}", mtype="chat")
        await phone.next_message("before 2")
        cut(phone)
        for n in range(5):
            contact.send_message(mto=phone.boundjid, mbody=f"while away {n}", mtype="chat")
        await settled(contact)
        await resume(phone, sm_xmpp)
        await phone.next_message("while away 4")
        contact.send_message(mto=phone.boundjid, mbody="after", mtype="chat")
        await phone.next_message("after")
        expected = [f"before {n}" for n in range(3)] + [f"while away {n}" for n in range(5)]
        assert seen == [*expected, "after"]
        # The session is the same one: same JID, and what it sends still flows.
        assert phone.boundjid.resource == "phone"
        await settled(phone)
    finally:
        await log_out([phone, contact])


async def test_xep0198_another_account_cannot_resume_a_session_by_its_id(
    sm_xmpp: XmppServer,
) -> None:
    phone = await connect(sm_xmpp, "erin", resource="phone", plugins=SM)
    contact = await connect(sm_xmpp, "frank", plugins=SM)
    thief: Client | None = None
    try:
        stolen = await enabled(phone)
        seen = bodies(phone)
        cut(phone)
        contact.send_message(mto=phone.boundjid, mbody="for erin only", mtype="chat")
        await settled(contact)

        # grace's client presents erin's id: <failed/>, then it binds a session of its own.
        thief = Client(f"grace@{DOMAIN}/phone", PASSWORD)
        thief.ssl_context = client_context(sm_xmpp)
        thief.enable_plaintext = False
        thief.register_plugin("xep_0198")
        thief.plugin["xep_0198"].sm_id = stolen
        failed = asyncio.Event()
        thief.add_event_handler("sm_failed", lambda _: failed.set())
        thief.connect("127.0.0.1", sm_xmpp.port)
        await asyncio.wait_for(failed.wait(), TIMEOUT)
        await asyncio.wait_for(thief.started.wait(), TIMEOUT)
        assert thief.boundjid.bare == f"grace@{DOMAIN}"

        # erin's own session is still there for erin, with the message.
        await resume(phone, sm_xmpp)
        await phone.next_message("for erin only")
        assert seen == ["for erin only"]
        assert thief.messages.empty()
    finally:
        await log_out([c for c in (phone, contact, thief) if c is not None])


async def test_xep0198_a_new_login_with_the_same_resource_replaces_a_hibernating_session(
    sm_xmpp: XmppServer,
) -> None:
    phone = await connect(sm_xmpp, "heidi", resource="phone", plugins=SM)
    contact = await connect(sm_xmpp, "ivan", plugins=SM)
    clients = [phone, contact]
    try:
        await enabled(phone)
        cut(phone)
        contact.send_message(mto=phone.boundjid, mbody="left behind", mtype="chat")
        await settled(contact)
        # The hibernating session is replaced at once (RFC 6120 §7.7.2.2, as a connected
        # one is); what it never acknowledged waits offline for the new one.
        again = await connect(sm_xmpp, "heidi", resource="phone")
        clients.append(again)
        message = await again.next_message("left behind")
        assert message.xml.find("{urn:xmpp:delay}delay") is not None
        assert contact.errors.empty()
    finally:
        phone.abort()
        await log_out(clients[1:])


async def test_xep0198_messages_to_a_session_that_never_resumes_wait_offline(
    brief_xmpp: XmppServer,
) -> None:
    phone = await connect(brief_xmpp, "alice", resource="phone", plugins=SM)
    contact = await connect(brief_xmpp, "bob", plugins=SM)
    try:
        await subscribe_each_other(contact, phone)
        await enabled(phone)
        cut(phone)
        contact.send_message(mto=phone.boundjid, mbody="are you there?", mtype="chat")
        contact.send_message(mto=phone.boundjid.bare, mbody="hello?", mtype="chat")
        ping = asyncio.ensure_future(
            contact.plugin["xep_0199"].send_ping(phone.boundjid, timeout=TIMEOUT)
        )
        # The session ends after xmpp.resume_timeout: its contacts see it go then, and a
        # request it never answered gets an error (RFC 6120 §8.2.3).
        await contact.presence_from(str(phone.boundjid), "unavailable")
        with pytest.raises(IqError) as refused:
            await ping
        assert refused.value.condition == "service-unavailable"
        back = await login(
            f"alice@{DOMAIN}/laptop", PASSWORD, brief_xmpp.port, client_context(brief_xmpp)
        )
        try:
            first = await back.next_message()
            second = await back.next_message()
            assert [first["body"], second["body"]] == ["are you there?", "hello?"]
            assert first.xml.find("{urn:xmpp:delay}delay") is not None  # XEP-0203: stored
        finally:
            await log_out([back])
    finally:
        phone.abort()
        await log_out([contact])


async def test_xep0198_5_resuming_a_session_that_ended_fails_with_its_h(
    brief_xmpp: XmppServer,
) -> None:
    """Since XEP-0198 1.6 a <failed/> may carry the 'h' of the session that ended: the
    client learns which of its stanzas arrived and resends only the others."""
    phone = await connect(brief_xmpp, "carol", resource="phone", plugins=SM)
    contact = await connect(brief_xmpp, "dave", plugins=SM)
    late: Client | None = None
    try:
        await subscribe_each_other(contact, phone)
        previd = await enabled(phone)
        for _ in range(3):
            await settled(phone)
        sent = phone.plugin["xep_0198"].seq
        cut(phone)
        await contact.presence_from(str(phone.boundjid), "unavailable")  # it ended

        late = Client(f"carol@{DOMAIN}/phone", PASSWORD)
        late.ssl_context = client_context(brief_xmpp)
        late.enable_plaintext = False
        late.register_plugin("xep_0198")
        late.plugin["xep_0198"].sm_id = previd
        failures: asyncio.Queue[Any] = asyncio.Queue()
        late.add_event_handler("sm_failed", failures.put_nowait)
        late.connect("127.0.0.1", brief_xmpp.port)
        failed = await asyncio.wait_for(failures.get(), TIMEOUT)
        assert failed.xml.get("h") == str(sent) and sent > 0
        assert failed.xml.find("{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None
        await asyncio.wait_for(late.started.wait(), TIMEOUT)  # it binds anew
    finally:
        phone.abort()
        await log_out([c for c in (contact, late) if c is not None])


class NodeClient:
    """``ws_resume.mjs`` running: its JSON lines read one by one, commands on its stdin."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._unread: list[dict[str, Any]] = []

    async def next(self, event: str) -> dict[str, Any]:
        """The first line of ``event`` not taken yet; other events stay for later calls."""
        assert self.process.stdout is not None
        while True:
            for found in self._unread:
                if found["event"] == event:
                    self._unread.remove(found)
                    return found
            line = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
            assert line, f"the client ended before {event}"
            if line.startswith(b"{"):
                parsed: dict[str, Any] = json.loads(line)
                assert parsed["event"] not in ("error", "failed", "timeout"), parsed
                self._unread.append(parsed)

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()


async def test_xep0198_xmpp_client_resumes_over_websocket(sm_xmpp: XmppServer) -> None:
    node = require_tool("node", "nodejs")
    if not (ROOT / "node_modules" / "@xmpp" / "client").is_dir():
        missing("@xmpp/client is missing: `make test-deps` runs npm install")
    process = await asyncio.create_subprocess_exec(
        node,
        "--experimental-websocket",
        str(Path(__file__).with_name("ws_resume.mjs")),
        f"wss://localhost:{sm_xmpp.web_port}/xmpp-websocket",
        DOMAIN,
        "judy",
        PASSWORD,
        cwd=ROOT,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(sm_xmpp.certificate)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    browser = NodeClient(process)
    contact = await connect(sm_xmpp, "mallory", plugins=SM)
    try:
        online = await browser.next("online")
        assert online == {"event": "online", "jid": f"judy@{DOMAIN}/browser"}
        assert (await browser.next("enabled"))["resume"] == "true"
        to = JID(online["jid"])
        contact.send_message(mto=to, mbody="before", mtype="chat")
        assert (await browser.next("message"))["body"] == "before"
        await browser.command("cut")
        await browser.next("cut")
        for n in range(3):
            contact.send_message(mto=to, mbody=f"while away {n}", mtype="chat")
        await settled(contact)
        await browser.command("resume")
        await browser.next("resumed")
        received = [(await browser.next("message"))["body"] for _ in range(3)]
        assert received == [f"while away {n}" for n in range(3)]
        contact.send_message(mto=to, mbody="after", mtype="chat")
        assert (await browser.next("message"))["body"] == "after"  # nothing came twice
        await browser.command("stop")
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await log_out([contact])


async def test_xep0198_a_session_hibernating_at_shutdown_leaves_its_messages_offline(
    tmp_path: Path,
) -> None:
    with xmpp_server(tmp_path, users=USERS[:2]) as server:
        phone = await connect(server, "alice", resource="phone", plugins=SM)
        contact = await connect(server, "bob", plugins=SM)
        await enabled(phone)
        cut(phone)
        contact.send_message(mto=phone.boundjid, mbody="kept over the restart", mtype="chat")
        await settled(contact)
        await log_out([contact])
    # heron stopped cleanly (xmpp_server checks it) with alice's session hibernating.
    with serving(tmp_path / "heron.toml"):
        back = await login(f"alice@{DOMAIN}/laptop", PASSWORD, server.port, client_context(server))
        try:
            message = await back.next_message("kept over the restart")
            assert message.xml.find("{urn:xmpp:delay}delay") is not None
        finally:
            await log_out([back])
