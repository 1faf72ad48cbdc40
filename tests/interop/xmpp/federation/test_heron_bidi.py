"""XEP-0288: one TCP connection carries both directions between two herons and between heron
and Prosody with mod_s2s_bidi, whichever opens it, while a peer that offers no bidi (Prosody
0.12 by default, or heron with ``xmpp.s2s_bidi`` off) still gets a stream each way."""

from __future__ import annotations

import pytest

from tests.interop.xmpp.federation.support import (
    StartPeer,
    heron_s2s,
    on_peers,
    peer_login,
    prosody_s2s,
)
from tests.interop.xmpp.support import Client, log_out
from tests.support.federation.ca import TestCa
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop


async def ask_and_answer(first: Client, second: Client) -> None:
    """``first`` writes (so its server opens the stream), ``second`` answers."""
    first.send_message(mto=second.boundjid.bare, mbody="ping over s2s", mtype="chat")
    assert (await second.next_message("ping over s2s"))["from"] == first.boundjid
    second.send_message(mto=first.boundjid.bare, mbody="pong over s2s", mtype="chat")
    assert (await first.next_message("pong over s2s"))["from"] == second.boundjid


def streams(server: ReferenceServer, remote: ReferenceServer) -> list[tuple[str, str]]:
    return sorted((row["Dir"], row["Auth"]) for row in heron_s2s(server, remote.domain))


async def test_xep0288_two_herons_share_one_stream_both_ways(
    heron_peer: ReferenceServer, start_heron: StartPeer
) -> None:
    other = start_heron("bidi.example")
    async with on_peers((heron_peer, "alice"), (other, "bob")) as (alice, bob):
        await ask_and_answer(alice, bob)
        await ask_and_answer(bob, alice)
    assert streams(heron_peer, other) == [("out bidi", "external")]
    assert streams(other, heron_peer) == [("in bidi", "external")]


async def test_xep0288_heron_asks_no_bidi_of_a_server_whose_certificate_it_cannot_check(
    heron_peer: ReferenceServer, start_heron: StartPeer, federation_ca: TestCa
) -> None:
    # heron.example's stream to it goes without bidi; its own stream to heron.example asks
    # (that certificate is valid) but authenticates by dialback, which heron.example checks
    # over its own stream back, and that stream stays the way back.
    unverified = start_heron("db-bidi.example", tls=federation_ca.issue("other.example"))
    local = await peer_login(unverified, "erin", check_hostname=False)
    try:
        async with on_peers((heron_peer, "erin")) as (remote,):
            await ask_and_answer(remote, local)
            await ask_and_answer(local, remote)
    finally:
        await log_out([local])
    assert streams(heron_peer, unverified) == [("in bidi", "dialback"), ("out", "external")]
    assert streams(unverified, heron_peer) == [("in", "external"), ("out bidi", "dialback")]


async def test_xep0288_switched_off_means_a_stream_each_way(
    heron_peer: ReferenceServer, start_heron: StartPeer
) -> None:
    other = start_heron("nobidi.example", settings={"xmpp": {"s2s_bidi": False}})
    async with on_peers((heron_peer, "carol"), (other, "dave")) as (carol, dave):
        await ask_and_answer(carol, dave)
    assert streams(heron_peer, other) == [("in", "external"), ("out", "external")]
    assert streams(other, heron_peer) == [("in", "external"), ("out", "external")]


async def test_xep0288_heron_and_prosody_keep_two_streams(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "erin"), (prosody_peer, "erin")) as (local, remote):
        await ask_and_answer(local, remote)
    assert streams(heron_peer, prosody_peer) == [("in", "external"), ("out", "external")]


@pytest.mark.parametrize("heron_first", [True, False], ids=["heron-opens", "prosody-opens"])
async def test_xep0288_heron_and_prosody_with_mod_s2s_bidi_share_one_stream(
    heron_peer: ReferenceServer, start_prosody: StartPeer, heron_first: bool
) -> None:
    prosody = start_prosody("bidi-pro.example", modules=["s2s_bidi"])
    async with on_peers((heron_peer, "bob"), (prosody, "bob")) as (local, remote):
        if heron_first:
            await ask_and_answer(local, remote)
        else:
            await ask_and_answer(remote, local)
    expected = "out bidi" if heron_first else "in bidi"
    assert streams(heron_peer, prosody) == [(expected, "external")]
    assert len(prosody_s2s(prosody, heron_peer)) == 1
    # mod_s2s_bidi's debug lines: it was asked (heron opened) or it asked (Prosody opened).
    said = "Requested" if heron_first else "Requesting"
    assert f"{said} bidirectional stream" in prosody.logs()
