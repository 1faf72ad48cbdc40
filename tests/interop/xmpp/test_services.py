"""Server services with slixmpp: disco (XEP-0030), ping (XEP-0199), vCard (XEP-0054),
and XEP-0215 TURN credentials that heron's own TURN server accepts."""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element, SubElement

import aioice.turn
import pytest
from slixmpp.exceptions import IqError

from tests.interop.xmpp.support import DOMAIN, MUC, TIMEOUT, XmppServer, logged_in


async def test_xep0030_server_info_and_items(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "trent", plugins=("xep_0030",)) as (trent,):
        info = await trent.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
        identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
        assert ("server", "im") in identities
        features = set(info["disco_info"]["features"])
        assert {"urn:xmpp:ping", "vcard-temp", "urn:xmpp:extdisco:2"} <= features
        items = await trent.plugin["xep_0030"].get_items(jid=DOMAIN, timeout=TIMEOUT)
        assert MUC in {str(item[0]) for item in items["disco_items"]["items"]}


async def test_xep0199_ping_the_server(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "trent", plugins=("xep_0199",)) as (trent,):
        rtt = await trent.plugin["xep_0199"].ping(DOMAIN, timeout=TIMEOUT)
        assert rtt >= 0


async def test_xep0054_vcard_set_then_read_by_another_user(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "victor", "trent", plugins=("xep_0054",)) as (victor, trent):
        card = victor.plugin["xep_0054"].make_vcard()
        card["FN"] = "Victor Falcot"
        card["NICKNAME"] = "vic"
        await victor.plugin["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
        result = await trent.plugin["xep_0054"].get_vcard(
            f"victor@{DOMAIN}", cached=False, timeout=TIMEOUT
        )
        assert result["vcard_temp"]["FN"] == "Victor Falcot"
        assert result["vcard_temp"]["NICKNAME"] == ["vic"]


async def test_xep0215_turn_credentials_allocate_on_herons_turn(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "trent") as (trent,):
        iq = trent.make_iq_get(ito=DOMAIN)
        SubElement(iq.xml, "{urn:xmpp:extdisco:2}services", {"type": "turn"})
        answer = await iq.send(timeout=TIMEOUT)
        services = answer.xml.find("{urn:xmpp:extdisco:2}services")
        assert services is not None
        udp = [
            service
            for service in services.iter("{urn:xmpp:extdisco:2}service")
            if service.get("type") == "turn" and service.get("transport") == "udp"
        ]
        assert udp, "no TURN over UDP offered"
        service: Element = udp[0]
        assert int(service.get("port", "0")) == shared_xmpp.turn_port
        assert service.get("username") and service.get("password") and service.get("expires")
    # A real TURN client allocates a relay with exactly those credentials.
    transport, protocol = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", shared_xmpp.turn_port),
        username=service.get("username"),
        password=service.get("password"),
        transport="udp",
    )
    try:
        relayed = transport.get_extra_info("sockname")
        assert relayed is not None and relayed[1] > 0
    finally:
        transport.close()


ONLINE_USERS = "http://jabber.org/protocol/admin#get-online-users-list"


async def test_xep0133_admin_lists_online_users_and_others_are_refused(
    shared_xmpp: XmppServer,
) -> None:
    plugins = ("xep_0004", "xep_0050")
    async with logged_in(shared_xmpp, "walter", "trent", plugins=plugins) as (walter, trent):
        # XEP-0050 §3.4: execute, get the form, submit it with max_items, get the result.
        first = await walter.plugin["xep_0050"].send_command(DOMAIN, ONLINE_USERS, timeout=TIMEOUT)
        command = first["command"]
        assert command["status"] == "executing"
        form = walter.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/admin")
        form.add_field(var="max_items", value="none")
        done = await walter.plugin["xep_0050"].send_command(
            DOMAIN,
            ONLINE_USERS,
            action="complete",
            sessionid=command["sessionid"],
            payload=form,
            timeout=TIMEOUT,
        )
        assert done["command"]["status"] == "completed"
        values = done["command"]["form"]["values"]
        online = values.get("onlineuserjids") or []
        assert {f"walter@{DOMAIN}", f"trent@{DOMAIN}"} <= set(online), values
        # A user who is not an admin gets forbidden (XEP-0133 §2).
        with pytest.raises(IqError) as refused:
            await trent.plugin["xep_0050"].send_command(DOMAIN, ONLINE_USERS, timeout=TIMEOUT)
        assert refused.value.condition == "forbidden"
