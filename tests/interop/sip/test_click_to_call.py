"""Click-to-call: what an anonymous caller may do through heron's SIP proxy, and no more.

The visitor is :class:`tests.interop.sip.wire.UserAgent` over WebSocket, as the /call page's
JsSIP is, with RFC 3323's anonymous From (``sip:anonymous@anonymous.invalid``) and no
credentials. ``web.click_to_call`` names three public destinations: ``sales`` (the local
user roland, registered over WebSocket), ``support`` (extension 600 on a "PBX", a sipp UAS)
and ``away`` (erin, who never registers). Everything else a stranger tries is refused as
before: other local users, other domains, MESSAGE, REGISTER, and a From naming a local user
(challenged: heron does not rewrite it to anonymous, the caller must prove it).

Each test calls from its own loopback address (127.0.0.N), so the per-source limit on
anonymous calls is counted apart for each.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.interop.sip.support import (
    DOMAIN,
    LOCALHOST,
    SipServer,
    answering,
    sip_settings,
)
from tests.interop.sip.wire import (
    SDP,
    Call,
    SipMessage,
    UserAgent,
    WebSocketChannel,
    encode,
    reply,
    trusting,
    uri_of,
)
from tests.support.config import free_port, render_toml
from tests.support.heron import base_settings, merge, provision, serving

pytestmark = pytest.mark.interop

USERS = {"roland": "secret-roland", "alice": "secret-alice", "erin": "secret-erin"}
PER_MINUTE = 3
ANONYMOUS = "anonymous.invalid"


@dataclass
class ClickToCallServer:
    sip: SipServer
    pbx_port: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickToCallServer]:
    directory = tmp_path_factory.mktemp("heron-click-to-call")
    port, tls_port, pbx_port = free_port(), free_port(), free_port()
    settings = merge(base_settings(directory), sip_settings(port, tls_port))
    public = {
        "sales": f"roland@{DOMAIN}",
        "support": f"sip:600@{LOCALHOST}:{pbx_port}",
        "away": f"erin@{DOMAIN}",
    }
    web = {"click_to_call": public, "click_to_call_per_minute": PER_MINUTE}
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(settings, {"web": web})))
    provision(config, {f"{user}@{DOMAIN}": password for user, password in USERS.items()})
    with serving(config) as heron:
        ports = re.findall(r"web listening on https://[^:]+:(\d+)/", "".join(heron.log))
        certificate = directory / "var" / "tls" / "heron.crt"
        yield ClickToCallServer(
            SipServer(heron, directory, port, tls_port, int(ports[0]), certificate), pbx_port
        )
    log = "".join(heron.log)
    assert heron.process.returncode == 0, log
    assert "Traceback" not in log, log


async def connect(server: SipServer, source: str = LOCALHOST) -> WebSocketChannel:
    """wss://.../sip from ``source``, a loopback address of the test's own."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    session = aiohttp.ClientSession(connector=connector)
    try:
        socket = await session.ws_connect(
            server.websocket_url,
            protocols=("sip",),
            ssl=trusting(str(server.certificate)),
            origin=f"https://{LOCALHOST}:{server.web_port}",
            heartbeat=None,
        )
    except BaseException:
        await session.close()
        raise
    return WebSocketChannel(session, socket)


@pytest.fixture
async def staff(server: ClickToCallServer) -> AsyncIterator[UserAgent]:
    """roland's phone: registered over WebSocket with digest, unregistered after."""
    channel = await connect(server.sip)
    agent = UserAgent(channel, "roland", USERS["roland"])
    try:
        _, final = await agent.register()
        assert final.status == 200, final
        yield agent
        _, gone = await agent.register(expires=0)
        assert gone.status == 200, gone
    finally:
        await channel.close()


async def visitor(server: ClickToCallServer, source: str, user: str = "anonymous") -> UserAgent:
    """A caller with no credentials; RFC 3323's anonymous identity unless ``user`` is
    a local one it pretends to be."""
    domain = ANONYMOUS if user == "anonymous" else DOMAIN
    return UserAgent(await connect(server.sip, source), user, "", domain=domain)


async def invite(agent: UserAgent, target: str) -> tuple[Call, list[SipMessage]]:
    call = Call(agent, target, secrets.token_hex(10))
    responses = await call.send_invite(SDP)
    call.established(responses[-1])
    if (responses[-1].status or 0) >= 300:
        await call.ack_non_2xx(responses[-1])
    return call, responses


async def request(agent: UserAgent, method: str, target: str, body: str = "") -> SipMessage:
    """One out-of-dialog request, unauthenticated; its final response."""
    call_id = secrets.token_hex(10)
    headers = [
        ("Via", agent.via()),
        ("Max-Forwards", "70"),
        ("To", f"<{target}>"),
        ("From", f"<{agent.aor}>;tag={agent.from_tag}"),
        ("Call-ID", call_id),
        ("CSeq", f"1 {method}"),
        ("Contact", agent.contact),
    ]
    if body:
        headers.append(("Content-Type", "text/plain"))
    await agent.send(encode(f"{method} {target} SIP/2.0", headers, body))
    return await agent.final_response(call_id, 1)


def statuses(responses: list[SipMessage]) -> list[int]:
    return [r.status or 0 for r in responses if r.status != 100]


async def test_anonymous_call_to_public_name_rings_its_target(
    server: ClickToCallServer, staff: UserAgent
) -> None:
    caller = await visitor(server, "127.0.0.11")
    try:
        placing = asyncio.ensure_future(invite(caller, f"sip:sales@{DOMAIN}"))
        received = await staff.expect(lambda m: m.method == "INVITE")
        # The Request-URI became roland's binding; To and From are the caller's own.
        assert received.uri == uri_of(staff.contact), received
        assert uri_of(received.get("To")) == f"sip:sales@{DOMAIN}", received
        assert uri_of(received.get("From")) == f"sip:anonymous@{ANONYMOUS}", received
        assert received.all("Record-Route"), received
        answered = await staff.answer_invite(received, SDP)
        dialog, responses = await placing
        assert statuses(responses) == [180, 200], responses
        assert dialog.route_set, responses[-1]

        await dialog.ack()
        ack = await answered.receive("ACK")
        assert ack.uri == uri_of(staff.contact), ack
        bye_done = asyncio.ensure_future(dialog.bye())
        bye = await answered.receive("BYE")
        await answered.answer(bye)
        assert (await bye_done).status == 200
    finally:
        await caller.channel.close()


async def test_public_name_may_name_a_pbx_extension(
    server: ClickToCallServer, tmp_path: Path
) -> None:
    caller = await visitor(server, "127.0.0.12")
    try:
        with answering(tmp_path, "uas_answer.xml", port=server.pbx_port) as pbx:
            dialog, responses = await invite(caller, f"sip:support@{DOMAIN}")
            assert statuses(responses) == [180, 200], responses
            await dialog.ack()
            assert (await dialog.bye()).status == 200
            run = await asyncio.to_thread(pbx.wait)
    finally:
        await caller.channel.close()

    assert run.returncode == 0, run.explain()
    received = run.received("INVITE")[0]
    assert received.uri == f"sip:600@{LOCALHOST}:{server.pbx_port}", run.explain()
    assert uri_of(received.get("To")) == f"sip:support@{DOMAIN}", run.explain()
    assert run.received("BYE"), run.explain()


async def test_anonymous_caller_may_cancel(server: ClickToCallServer, staff: UserAgent) -> None:
    caller = await visitor(server, "127.0.0.13")
    try:
        call = Call(caller, f"sip:sales@{DOMAIN}", secrets.token_hex(10))
        placing = asyncio.ensure_future(call.send_invite(SDP))
        received = await staff.expect(lambda m: m.method == "INVITE")
        to_tag = secrets.token_hex(5)
        await staff.send(reply(received, 180, "Ringing", to_tag=to_tag))
        # RFC 3261 §9.1: the CANCEL copies the INVITE's Request-URI, top Via and CSeq number.
        cancel = encode(
            f"CANCEL {call.target} SIP/2.0",
            [
                ("Via", caller.via(call.invite_branch)),
                ("Max-Forwards", "70"),
                ("To", f"<{call.target}>"),
                ("From", f'"Anonymous Test" <{caller.aor}>;tag={caller.from_tag}'),
                ("Call-ID", call.call_id),
                ("CSeq", f"{call.cseq} CANCEL"),
            ],
        )
        await caller.send(cancel)
        cancelled = await staff.expect(lambda m: m.method == "CANCEL")
        await staff.send(reply(cancelled, 200, "OK", to_tag=None))
        await staff.send(reply(received, 487, "Request Terminated", to_tag=to_tag))
        responses = await placing
        assert statuses(responses) == [180, 487], responses
        await call.ack_non_2xx(responses[-1])
        cancel_ok = await caller.expect(lambda m: m.status == 200 and m.cseq_method == "CANCEL")
        assert cancel_ok.get("Call-ID") == call.call_id
    finally:
        await caller.channel.close()


@pytest.mark.parametrize(
    ("target", "reason"),
    [(f"sip:roland@{DOMAIN}", "Forbidden"), ("sip:bob@example.com", "Relaying Denied")],
    ids=["private-local-user", "other-domain"],
)
async def test_anonymous_call_elsewhere_is_forbidden(
    server: ClickToCallServer, target: str, reason: str
) -> None:
    caller = await visitor(server, "127.0.0.14")
    try:
        _, responses = await invite(caller, target)
    finally:
        await caller.channel.close()

    assert statuses(responses) == [403], responses
    assert responses[-1].start == f"SIP/2.0 403 {reason}", responses[-1]


async def test_anonymous_message_to_public_name_is_forbidden(server: ClickToCallServer) -> None:
    caller = await visitor(server, "127.0.0.15")
    try:
        final = await request(caller, "MESSAGE", f"sip:sales@{DOMAIN}", body="hello")
    finally:
        await caller.channel.close()

    assert final.status == 403, final


async def test_register_as_public_name_is_challenged(server: ClickToCallServer) -> None:
    caller = UserAgent(await connect(server.sip, "127.0.0.16"), "sales", "guess")
    try:
        challenge, final = await caller.register()
    finally:
        await caller.channel.close()

    assert challenge.status == 401, challenge
    assert final.status == 401, final  # no account "sales": the guess is challenged again


async def test_from_naming_a_local_user_must_authenticate(
    server: ClickToCallServer, staff: UserAgent
) -> None:
    impostor = await visitor(server, "127.0.0.17", user="alice")
    try:
        _, responses = await invite(impostor, f"sip:sales@{DOMAIN}")
    finally:
        await impostor.channel.close()

    assert statuses(responses) == [407], responses
    # alice herself, with her password, may call the public name too.
    channel = await connect(server.sip, "127.0.0.17")
    alice = UserAgent(channel, "alice", USERS["alice"])
    try:
        placing = asyncio.ensure_future(alice.invite("sales", SDP))
        received = await staff.expect(lambda m: m.method == "INVITE")
        assert uri_of(received.get("From")) == f"sip:alice@{DOMAIN}", received
        await staff.answer_invite(received, SDP)
        dialog, responses = await placing
        assert statuses(responses)[-1] == 200, responses
        await dialog.ack()
        await staff.expect(lambda m: m.method == "ACK")
        bye_done = asyncio.ensure_future(dialog.bye())
        bye = await staff.expect(lambda m: m.method == "BYE")
        await staff.send(reply(bye, 200, "OK", to_tag=None))
        assert (await bye_done).status == 200
    finally:
        await channel.close()


async def test_anonymous_calls_are_limited_per_source(server: ClickToCallServer) -> None:
    caller = await visitor(server, "127.0.0.18")
    other = await visitor(server, "127.0.0.19")
    try:
        for _ in range(PER_MINUTE):
            _, responses = await invite(caller, f"sip:away@{DOMAIN}")
            assert statuses(responses) == [480], responses
        _, limited = await invite(caller, f"sip:away@{DOMAIN}")
        _, private = await invite(caller, f"sip:roland@{DOMAIN}")
        _, elsewhere = await invite(other, f"sip:away@{DOMAIN}")
    finally:
        await caller.channel.close()
        await other.channel.close()

    assert statuses(limited) == [503], limited
    assert limited[-1].get("Retry-After") == "60", limited[-1]
    assert statuses(private) == [403], private
    assert statuses(elsewhere) == [480], elsewhere


async def test_call_page_configurations_are_limited_per_source(server: ClickToCallServer) -> None:
    """The /call page's set-up, which hands out TURN credentials, counts like the calls."""
    url = f"https://{LOCALHOST}:{server.sip.web_port}/call/away/config.json"
    context = trusting(str(server.sip.certificate))
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.20", 0), ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = []
        for _ in range(PER_MINUTE + 1):
            async with session.get(url) as response:
                answers.append(response.status)
                retry_after = response.headers.get("Retry-After")
        async with session.get(url.replace("/away/", "/nobody/")) as unknown:
            unknown_status = unknown.status

    assert answers == [200] * PER_MINUTE + [429], answers
    assert retry_after == "60"
    assert unknown_status == 404
