"""Temporary smoke check (replaced by the full interop tests)."""

from __future__ import annotations

from tests.interop.xmpp.federation.support import on_peers
from tests.support.federation.reference import ReferenceServer


async def test_heron_and_prosody_chat(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "alice"), (prosody_peer, "bob")) as (alice, bob):
        alice.send_message(mto=f"bob@{prosody_peer.domain}", mbody="hello bob", mtype="chat")
        assert (await bob.next_message("hello bob"))["from"].bare == f"alice@{heron_peer.domain}"
        bob.send_message(mto=f"alice@{heron_peer.domain}", mbody="hello alice", mtype="chat")
        assert (await alice.next_message("hello alice"))[
            "from"
        ].bare == f"bob@{prosody_peer.domain}"
