"""XEP-0410 MUC self-ping and XEP-0249 direct invitations with slixmpp's own plugins."""

from __future__ import annotations

import asyncio

import pytest
import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0410 import PingStatus

from tests.interop.xmpp.support import MUC, TIMEOUT, XmppServer, logged_in

PLUGINS = ("xep_0004", "xep_0030", "xep_0045", "xep_0199", "xep_0249", "xep_0410")
SELF_PING = "http://jabber.org/protocol/muc#self-ping-optimization"


async def test_xep0410_self_ping_and_xep0249_invitation_to_a_password_room(
    shared_xmpp: XmppServer,
) -> None:
    room = JID(f"stillhere@{MUC}")
    async with logged_in(shared_xmpp, "oscar", "pat", plugins=PLUGINS) as (oscar, pat):
        invited: asyncio.Future[slixmpp.Message] = asyncio.get_running_loop().create_future()
        pat.add_event_handler("groupchat_direct_invite", invited.set_result)
        muc = oscar.plugin["xep_0045"]
        await muc.join_muc_wait(room, "oscar", timeout=TIMEOUT)
        form = oscar.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(
            var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig"
        )
        form.add_field(var="muc#roomconfig_roomsecret", value="cauldronburn")
        await muc.set_room_config(room, form, timeout=TIMEOUT)

        # §3.3: the room advertises the optimization and answers the occupant's ping
        # itself, with a result (service-unavailable would also read as "joined").
        info = await oscar.plugin["xep_0030"].get_info(room, timeout=TIMEOUT)
        assert SELF_PING in info["disco_info"]["features"]
        me = JID(f"{room}/oscar")
        answer = await oscar.plugin["xep_0199"].send_ping(me, timeout=TIMEOUT)
        assert (answer["type"], answer["from"]) == ("result", me)
        pinger = oscar.plugin["xep_0410"]
        assert await pinger.send_self_ping(me, timeout=TIMEOUT) is PingStatus.JOINED
        # Someone not joined gets not-acceptable, which slixmpp reads as "disconnected".
        with pytest.raises(IqError) as refused:
            await pat.plugin["xep_0199"].send_ping(me, timeout=TIMEOUT)
        assert refused.value.condition == "not-acceptable"

        # XEP-0249 §2: the invitation arrives as sent, password and reason included, and
        # the password it carries lets pat in.
        oscar.plugin["xep_0249"].send_invitation(
            JID(pat.boundjid.bare), room, password="cauldronburn", reason="we are still here"
        )
        invitation = (await asyncio.wait_for(invited, TIMEOUT))["groupchat_invite"]
        assert (invitation["jid"], invitation["password"], invitation["reason"]) == (
            room,
            "cauldronburn",
            "we are still here",
        )
        await pat.plugin["xep_0045"].join_muc_wait(
            JID(invitation["jid"]), "pat", password=invitation["password"], timeout=TIMEOUT
        )
        status = await pat.plugin["xep_0410"].send_self_ping(JID(f"{room}/pat"), timeout=TIMEOUT)
        assert status is PingStatus.JOINED

        # After leaving, the self-ping tells the client it is out (§3.3, not-acceptable).
        muc.leave_muc(room, "oscar")
        await oscar.presence_from(str(me), "unavailable")
        assert await pinger.send_self_ping(me, timeout=TIMEOUT) is PingStatus.DISCONNECTED
