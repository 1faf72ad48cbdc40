"""Message Archive Management (XEP-0313) and stanza ids (XEP-0359) with slixmpp's xep_0313
and xep_0359 plugins: two accounts chat and talk in a persistent room, heron restarts, and
the history comes back page by page (XEP-0059), in order and exactly once."""

from __future__ import annotations

from pathlib import Path

from slixmpp import JID

from tests.interop.xmpp.support import (
    MUC,
    TIMEOUT,
    Client,
    join_room,
    logged_in,
    make_persistent,
    restarted,
    xmpp_server,
)

MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
PLUGINS = ("xep_0004", "xep_0030", "xep_0045", "xep_0059", "xep_0297", "xep_0313", "xep_0359")


async def history(client: Client, archive: JID, *, page: int, reverse: bool) -> list[str]:
    """Every body in ``archive``, paged ``page`` at a time, as slixmpp's iterator yields them."""
    mam = client.plugin["xep_0313"]
    return [
        message["mam_result"]["forwarded"]["stanza"]["body"]
        async for message in mam.iterate(jid=archive, reverse=reverse, rsm={"max": page})
    ]


async def test_xep0313_history_pages_back_after_a_restart(tmp_path: Path) -> None:
    room = JID(f"archived@{MUC}")
    chat = [f"chat {n}" for n in range(23)]
    groupchat = [f"room {n}" for n in range(11)]
    with xmpp_server(tmp_path) as first:
        async with logged_in(first, "alice", "bob", plugins=PLUGINS) as (alice, bob):
            # §7 (XEP-0359 §6 too): the account's bare JID offers its archive.
            info = await alice.plugin["xep_0030"].get_info(jid=alice.boundjid.bare, timeout=TIMEOUT)
            assert {MAM, SID} <= set(info["disco_info"]["features"])
            for n, body in enumerate(chat):
                sender, receiver = (alice, bob) if n % 2 == 0 else (bob, alice)
                sender.send_message(mto=receiver.boundjid.bare, mbody=body, mtype="chat")
                received = await receiver.next_message(body)
                # XEP-0359 §3: the receiving account's archive id, by its bare JID.
                assert received["stanza_id"]["by"] == receiver.boundjid.bare
                assert received["stanza_id"]["id"]
            await join_room(alice, room, "alice")
            await make_persistent(alice, room)
            await join_room(bob, room, "bob")
            for n, body in enumerate(groupchat):
                sender = (alice, bob)[n % 2]
                sender.send_message(mto=room, mbody=body, mtype="groupchat")
                for each in (alice, bob):
                    echoed = await each.next_message(body)
                    assert echoed["stanza_id"]["by"] == room
    with restarted(first) as second:
        async with logged_in(second, "bob", plugins=PLUGINS) as (bob,):
            mine = bob.boundjid.bare
            # Backwards from the newest (an empty <before/>), five at a time: newest first.
            assert await history(bob, JID(mine), page=5, reverse=True) == chat[::-1]
            assert await history(bob, JID(mine), page=4, reverse=False) == chat
            # §5: the room's own archive, to someone who is not even in it now.
            info = await bob.plugin["xep_0030"].get_info(jid=room, timeout=TIMEOUT)
            assert MAM in info["disco_info"]["features"]
            assert await history(bob, room, page=3, reverse=True) == groupchat[::-1]
