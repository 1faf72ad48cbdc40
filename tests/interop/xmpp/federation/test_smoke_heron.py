"""Temporary smoke check (replaced by the full interop tests)."""

from __future__ import annotations

from tests.interop.xmpp.federation.support import on_peers
from tests.support.federation.reference import ReferenceServer


async def test_heron_and_ejabberd_chat(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "carol"), (ejabberd_peer, "dave")) as (carol, dave):
        carol.send_message(mto=f"dave@{ejabberd_peer.domain}", mbody="hello dave", mtype="chat")
        assert (await dave.next_message("hello dave"))["from"].bare == f"carol@{heron_peer.domain}"
        dave.send_message(mto=f"carol@{heron_peer.domain}", mbody="hello carol", mtype="chat")
        assert (await carol.next_message("hello carol"))[
            "from"
        ].bare == f"dave@{ejabberd_peer.domain}"
