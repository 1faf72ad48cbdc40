"""XEP-0045 group chat with slixmpp: a room, several occupants, history on join, a kick."""

from __future__ import annotations

import asyncio

from slixmpp import JID

from tests.interop.xmpp.support import MUC, TIMEOUT, XmppServer, logged_in

MUC_PLUGINS = ("xep_0004", "xep_0045")


async def test_xep0045_room_messages_history_and_kick(shared_xmpp: XmppServer) -> None:
    room = JID(f"lobby@{MUC}")
    async with logged_in(
        shared_xmpp, "olivia", "peggy", "rupert", "sybil", plugins=MUC_PLUGINS
    ) as (olivia, peggy, rupert, sybil):
        # §10.1.2: the creator gets status 201 and unlocks an instant room with an empty form.
        created, _, _, _ = await olivia.plugin["xep_0045"].join_muc_wait(
            room, "olivia", timeout=TIMEOUT
        )
        assert "201" in {str(code) for code in created["muc"]["status_codes"]}
        await olivia.plugin["xep_0045"].set_room_config(
            room, olivia.plugin["xep_0004"].make_form(ftype="submit"), timeout=TIMEOUT
        )
        for client, nick in ((peggy, "peggy"), (rupert, "rupert")):
            await client.plugin["xep_0045"].join_muc_wait(room, nick, timeout=TIMEOUT)

        # §7.4: a groupchat message reaches every occupant, the sender included.
        olivia.send_message(mto=room, mbody="welcome, all", mtype="groupchat")
        for client in (olivia, peggy, rupert):
            message = await client.next_message("welcome, all")
            assert message["from"] == f"{room}/olivia"
        peggy.send_message(mto=room, mbody="thanks olivia", mtype="groupchat")
        for client in (olivia, peggy, rupert):
            await client.next_message("thanks olivia")

        # §7.2.15: a late joiner gets the discussion history, stamped by the room.
        _, _, occupants, history = await sybil.plugin["xep_0045"].join_muc_wait(
            room, "sybil", maxstanzas=10, timeout=TIMEOUT
        )
        assert [m["body"] for m in history] == ["welcome, all", "thanks olivia"]
        assert {p["from"].resource for p in occupants} >= {"olivia", "peggy", "rupert"}

        # §8.2: the owner (a moderator) kicks rupert; he sees status 307 and is out.
        await olivia.plugin["xep_0045"].set_role(
            room, "rupert", "none", reason="spam", timeout=TIMEOUT
        )
        kicked = await rupert.presence_from(f"{room}/rupert", "unavailable")
        assert "307" in {str(code) for code in kicked["muc"]["status_codes"]}
        await peggy.presence_from(f"{room}/rupert", "unavailable")
        # §7.4: a non-occupant's groupchat message is refused, and reaches nobody: the
        # refusal comes back before olivia speaks, so peggy's next message is olivia's.
        rupert.send_message(mto=room, mbody="still here?", mtype="groupchat")
        refusal = await asyncio.wait_for(rupert.errors.get(), TIMEOUT)
        assert refusal["error"]["condition"] == "not-acceptable"
        olivia.send_message(mto=room, mbody="after the kick", mtype="groupchat")
        assert (await peggy.next_message())["body"] == "after the kick"


async def test_xep0045_7_14_an_occupant_who_disconnects_leaves_the_room(
    shared_xmpp: XmppServer,
) -> None:
    room = JID(f"party@{MUC}")
    async with logged_in(shared_xmpp, "olivia", plugins=MUC_PLUGINS) as (olivia,):
        await olivia.plugin["xep_0045"].join_muc_wait(room, "host", timeout=TIMEOUT)
        await olivia.plugin["xep_0045"].set_room_config(
            room, olivia.plugin["xep_0004"].make_form(ftype="submit"), timeout=TIMEOUT
        )
        async with logged_in(shared_xmpp, "sybil", plugins=MUC_PLUGINS) as (sybil,):
            await sybil.plugin["xep_0045"].join_muc_wait(room, "guest", timeout=TIMEOUT)
            await olivia.presence_from(f"{room}/guest")
            sybil.abort()  # the connection drops without a word: no unavailable presence
        gone = await olivia.presence_from(f"{room}/guest", "unavailable")
        assert gone["muc"]["role"] == "none"
