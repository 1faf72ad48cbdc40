"""sipp calls through heron with ``sip.media_relay = "always"`` and the real media bridge:
each side's SDP names heron's media ports, RTP (RFC 4733 events played from a pcap) goes
through heron both ways, BYE frees the ports; the echo number answers and returns the RTP.

heron's counters and live calls are read over its control socket after sipp has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heron.control import query
from tests.interop.sip.support import (
    LOCALHOST,
    USERS,
    SippRun,
    SipServer,
    answering,
    browser_registered,
    callers_csv,
    register,
    run_sipp,
    sip_server,
)
from tests.support.config import free_port

pytestmark = pytest.mark.interop

MEDIA_PORTS = 40
CHROMIUM_OFFER = (
    Path(__file__).parents[2] / "vectors" / "media" / "chromium_offer.sdp"
).read_text()


def port_run(count: int) -> tuple[int, int]:
    """The first and last of ``count`` ports taken in turn from this worker's share, so
    that no server or sipp of the test is given one inside them later."""
    ports = [free_port() for _ in range(count)]
    return ports[0], ports[-1]


def sipp_media_port() -> int:
    """A port for sipp's ``-mp``: sipp binds it and the next three (RTCP, video)."""
    return port_run(4)[0]


@pytest.fixture(scope="module")
def media_sip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SipServer, int]]:
    """heron relaying every call's media on loopback, with the echo number 600."""
    low, high = port_run(MEDIA_PORTS)
    settings = {
        "sip": {"media_relay": "always", "echo": "600"},
        "media": {
            "enabled": True,
            "address": LOCALHOST,
            "port_min": low,
            "port_max": high,
            "allowed_destinations": ["127.0.0.0/8"],
        },
    }
    with sip_server(tmp_path_factory.mktemp("heron-media"), settings=settings) as server:
        yield server, low


def view(server: SipServer, name: str) -> list[dict[str, Any]]:
    return asyncio.run(query(server.directory / "var", name))


def audio_port(sdp: str) -> int:
    line = next(x for x in sdp.splitlines() if x.startswith("m=audio"))
    return int(line.split()[1])


def in_media_range(sdp: str, low: int) -> bool:
    """The SDP names heron's media address and a port of its range (heron and sipp share
    127.0.0.1: the port tells them apart)."""
    return "c=IN IP4 127.0.0.1" in sdp and low <= audio_port(sdp) < low + 2 * MEDIA_PORTS


def sipp_call(
    server: SipServer,
    directory: Path,
    scenarios: tuple[str, str],
    users: tuple[str, str],
    media_ports: tuple[int, int] | None = None,
    *callee_args: str,
) -> tuple[SippRun, SippRun]:
    """A registered sipp callee answers a sipp caller through heron, each with its own
    media port; the two finished runs, both successful, caller first."""
    uac, uas_scenario = scenarios
    caller_user, callee_user = users
    caller_media, callee_media = media_ports or (sipp_media_port(), sipp_media_port())
    callee_port = free_port()
    registered = register(
        server, directory / "register", callee_user, USERS[callee_user], port=callee_port
    )
    assert registered.returncode == 0, registered.explain()
    with answering(
        directory / "callee",
        uas_scenario,
        *callee_args,
        "-mp",
        str(callee_media),
        port=callee_port,
    ) as uas:
        csv = callers_csv(directory / "caller", (caller_user, caller_user, USERS[caller_user]))
        caller = run_sipp(
            directory / "caller",
            uac,
            "-s",
            callee_user,
            "-inf",
            str(csv),
            "-mp",
            str(caller_media),
            port=free_port(),
            remote=server.address,
        )
        callee = uas.wait()
    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    return caller, callee


def test_plain_call_through_the_bridge_relays_rtp_and_bye_frees_the_ports(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, low = media_sip
    caller_media, callee_media = sipp_media_port(), sipp_media_port()
    before = view(server, "media.counters")[0]
    caller, callee = sipp_call(
        server,
        tmp_path,
        ("uac_media.xml", "uas_media.xml"),
        ("alice", "bob"),
        (caller_media, callee_media),
        "-rtp_echo",
    )

    offer = callee.received("INVITE")[0].body
    answer = next(m for m in caller.received("200") if m.cseq_method == "INVITE").body
    assert in_media_range(offer, low) and audio_port(offer) != caller_media, offer
    assert in_media_range(answer, low) and audio_port(answer) != callee_media, answer
    assert "a=rtpmap:101 telephone-event/8000" in offer
    assert ";hm=rr." in callee.received("INVITE")[0].get("Record-Route")

    after = view(server, "media.counters")[0]
    assert after["packets_from_caller"] - before["packets_from_caller"] >= 10, after
    assert after["packets_from_callee"] - before["packets_from_callee"] >= 1, after
    assert view(server, "media.calls") == []
    assert after["ports"] == 0, after


def test_hold_from_the_caller_goes_through_the_bridge_on_the_same_ports(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, low = media_sip
    scenarios = ("uac_media_hold.xml", "uas_media_hold.xml")
    caller, callee = sipp_call(server, tmp_path, scenarios, ("carol", "ivan"))

    offer, hold = (m.body for m in callee.received("INVITE"))
    answer, held = (m.body for m in caller.received("200") if m.cseq_method == "INVITE")
    assert in_media_range(hold, low) and audio_port(hold) == audio_port(offer), hold
    assert in_media_range(held, low) and audio_port(held) == audio_port(answer), held
    assert "a=sendonly" in hold, hold
    assert "a=recvonly" in held, held
    assert view(server, "media.calls") == []


def test_late_offer_the_2xx_offers_and_the_ack_answers_through_the_bridge(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, low = media_sip
    scenarios = ("uac_late_offer.xml", "uas_media.xml")
    caller, callee = sipp_call(server, tmp_path, scenarios, ("dave", "grace"))

    assert callee.received("INVITE")[0].body == ""
    offer = next(m for m in caller.received("200") if m.cseq_method == "INVITE").body
    answer = callee.received("ACK")[0].body
    assert in_media_range(offer, low), offer
    assert in_media_range(answer, low), answer
    assert audio_port(offer) != audio_port(answer)
    assert view(server, "media.calls") == []


async def test_a_browser_calls_a_desk_phone_and_each_gets_the_sdp_it_speaks(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, low = media_sip
    port = free_port()
    registered = await asyncio.to_thread(
        register, server, tmp_path / "register", "frank", USERS["frank"], port=port
    )
    assert registered.returncode == 0, registered.explain()
    async with browser_registered(server, "alice") as browser:
        with answering(
            tmp_path / "callee", "uas_media.xml", "-mp", str(sipp_media_port()), port=port
        ) as uas:
            callee_done = asyncio.ensure_future(asyncio.to_thread(uas.wait))
            dialog, responses = await browser.invite("frank", CHROMIUM_OFFER)
            ok = responses[-1]
            assert ok.status == 200, responses
            await dialog.ack()
            assert (await dialog.bye()).status == 200
            callee = await callee_done
    assert callee.returncode == 0, callee.explain()

    plain = callee.received("INVITE")[0].body
    assert "RTP/AVP" in plain and "SAVPF" not in plain, plain
    assert "a=fingerprint" not in plain and "a=ice-ufrag" not in plain, plain
    assert in_media_range(plain, low), plain
    web = ok.body
    assert "UDP/TLS/RTP/SAVPF" in web and "a=ice-lite" in web, web
    assert in_media_range(web, low), web
    assert "a=fingerprint:sha-256" in web and "a=setup:" in web, web
    assert ";hm=wr." in callee.received("INVITE")[0].get("Record-Route")
    assert (await asyncio.to_thread(view, server, "media.calls")) == []


def test_the_echo_number_answers_and_returns_the_callers_rtp(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, low = media_sip
    before = view(server, "media.counters")[0]
    csv = callers_csv(tmp_path, ("carol", "carol", USERS["carol"]))
    caller = run_sipp(
        tmp_path,
        "uac_media.xml",
        "-s",
        "600",
        "-inf",
        str(csv),
        "-mp",
        str(sipp_media_port()),
        port=free_port(),
        remote=server.address,
    )
    assert caller.returncode == 0, caller.explain()
    ok = next(m for m in caller.received("200") if m.cseq_method == "INVITE")
    assert in_media_range(ok.body, low), ok
    assert ok.get("Contact").startswith("<sip:600@"), ok
    assert [status for status, _ in caller.statuses()][-1] == 200  # the BYE's
    after = view(server, "media.counters")[0]
    assert after["packets_from_caller"] - before["packets_from_caller"] >= 10, after
    assert view(server, "media.calls") == []


def test_a_stranger_cannot_call_the_echo_number(
    media_sip: tuple[SipServer, int], tmp_path: Path
) -> None:
    server, _ = media_sip
    csv = callers_csv(tmp_path, ("carol", "carol", "wrong password"))
    caller = run_sipp(
        tmp_path,
        "invite_refused_auth.xml",
        "-s",
        "600",
        "-inf",
        str(csv),
        port=free_port(),
        remote=server.address,
    )
    assert caller.returncode == 0, caller.explain()
    finals = [status for status, method in caller.statuses() if status >= 200]
    assert finals == [407, 407], caller.explain()  # challenged again, never answered
    assert view(server, "media.calls") == []
