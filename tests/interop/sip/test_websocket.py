"""A browser's SIP over WebSocket (RFC 7118) through heron, with sipp over UDP on the
other side.

The browser is :class:`tests.interop.sip.wire.UserAgent` on aiohttp's WebSocket client,
sending what JsSIP sends (shared/samples/browser/jssip_*.txt): a Contact at a random
``.invalid`` host with ``transport=ws``, ``+sip.instance`` and ``reg-id`` (RFC 5626),
and a Via it cannot make true (``SIP/2.0/WSS <random>.invalid``). heron can reach it only
over the socket it registered on, and bridging WebSocket and UDP it Record-Routes twice,
once per side (RFC 5658).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.interop.sip.support import (
    LOCALHOST,
    USERS,
    SippRun,
    SipServer,
    answering,
    browser_registered,
    call,
    register,
)
from tests.interop.sip.wire import SDP, UserAgent, unsealed, uri_of
from tests.support.config import free_port

pytestmark = pytest.mark.interop

T = TypeVar("T")


@pytest.fixture
async def browser(shared_sip: SipServer) -> AsyncIterator[UserAgent]:
    """alice in a browser: connected over wss://.../sip and registered with digest."""
    async with browser_registered(shared_sip, "alice") as agent:
        yield agent


def record_routes(server: SipServer) -> tuple[str, str]:
    """heron's two Record-Route values when bridging: its UDP side, its WebSocket side."""
    return (f"<sip:{server.address};lr>", f"<sip:{LOCALHOST}:{server.web_port};transport=wss;lr>")


async def before_exit(awaitable: Awaitable[T], sipp: asyncio.Future[SippRun], what: str) -> T:
    """``awaitable``'s result, failing at once (with sipp's trace) if sipp ends first."""
    waiting = asyncio.ensure_future(awaitable)
    either: list[asyncio.Future[Any]] = [waiting, sipp]
    done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        return waiting.result()
    waiting.cancel()
    raise AssertionError(f"sipp ended before the browser got {what}:\n" + sipp.result().explain())


async def test_browser_calls_udp_phone(
    shared_sip: SipServer, browser: UserAgent, tmp_path: Path
) -> None:
    port = free_port()
    registered = await asyncio.to_thread(
        register, shared_sip, tmp_path / "register", "grace", USERS["grace"], port=port
    )
    assert registered.returncode == 0, registered.explain()
    with answering(tmp_path / "callee", "uas_answer.xml", port=port) as uas:
        callee_done = asyncio.ensure_future(asyncio.to_thread(uas.wait))
        dialog, responses = await before_exit(browser.invite("grace", SDP), callee_done, "a 200")
        assert [r.status for r in responses if r.status != 100] == [180, 200], responses
        ok = responses[-1]
        udp_side, ws_side = record_routes(shared_sip)
        assert unsealed(ok.all("Record-Route")) == [udp_side, ws_side], ok
        await dialog.ack()
        bye = await before_exit(dialog.bye(), callee_done, "a 200 for its BYE")
        assert bye.status == 200, bye
        callee = await callee_done

    assert callee.returncode == 0, callee.explain()
    invite = callee.received("INVITE")[0]
    assert unsealed(invite.all("Record-Route")) == [udp_side, ws_side], invite
    vias = invite.all("Via")
    assert vias[0].startswith(f"SIP/2.0/UDP {shared_sip.address};"), vias
    assert vias[1].startswith(f"SIP/2.0/WSS {browser.sent_by};"), vias
    # The browser's ACK and BYE followed the route set: both of heron's Route values
    # (WebSocket side first), which heron took off before sending them on over UDP.
    for method in ("ACK", "BYE"):
        received = callee.received(method)[0]
        assert received.uri == uri_of(callee.sent("200")[0].get("Contact")), received
        assert received.get("Via").startswith(f"SIP/2.0/UDP {shared_sip.address};"), received
        assert not received.all("Route"), received


async def test_udp_phone_calls_browser(
    shared_sip: SipServer, browser: UserAgent, tmp_path: Path
) -> None:
    caller_done = asyncio.ensure_future(
        asyncio.to_thread(call, shared_sip, tmp_path / "caller", "uac_call.xml", "alice", "carol")
    )
    try:
        invite = await before_exit(
            browser.expect(lambda m: m.method == "INVITE"), caller_done, "the INVITE"
        )
        # heron sent it over the browser's socket, to the Contact it registered.
        assert invite.uri == uri_of(browser.contact), invite
        udp_side, ws_side = record_routes(shared_sip)
        assert unsealed(invite.all("Record-Route")) == [ws_side, udp_side], invite
        assert invite.get("Via").startswith(f"SIP/2.0/WSS {LOCALHOST}:{shared_sip.web_port};")
        answered = await browser.answer_invite(invite, SDP)
        ack = await before_exit(answered.receive("ACK"), caller_done, "the ACK")
        assert ack.uri == uri_of(browser.contact), ack
        bye = await before_exit(answered.receive("BYE"), caller_done, "the BYE")
        await answered.answer(bye)
        caller = await caller_done
    finally:
        if not caller_done.done():
            caller_done.cancel()

    assert caller.returncode == 0, caller.explain()
    assert [s for s, _ in caller.statuses() if s >= 200] == [407, 200, 200], caller.explain()
    # carol's ACK and BYE carried both of heron's Route values, UDP side first.
    assert unsealed(caller.sent("BYE")[0].all("Route")) == [udp_side, ws_side], caller.explain()
