"""heron federates with Prosody 0.12, slixmpp clients on both sides: subscriptions, presence
and chat across domains (RFC 6121), rooms on either server (XEP-0045), how each direction
authenticates (XEP-0178 SASL EXTERNAL, XEP-0220 dialback, s2s_secure_auth), server and user
queries (XEP-0030, XEP-0092, XEP-0199), blocking (XEP-0191), offline storage (XEP-0160) and
heron's carbons of chats with a Prosody user (XEP-0280).

An s2s stream is in order, and so is a client's: a ping of heron answered after a message
means heron has handled that message, and what heron sent Prosody before a witness message
arrived before it. The offline and blocking tests wait on these instead of sleeping."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp import JID, Message
from slixmpp.exceptions import IqError

from tests.interop.xmpp.federation.support import (
    StartPeer,
    heron_streams,
    on_peers,
    peer_login,
    prosody_s2s,
)
from tests.interop.xmpp.support import (
    MUC_PLUGINS,
    TIMEOUT,
    Client,
    join_room,
    log_out,
    subscribe_each_other,
)
from tests.support.federation.ca import TestCa
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop

PEER_USERS = {
    name: f"{name} secret"
    for name in (
        "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy"
    ).split()
}
"""Accounts of this module's heron and Prosody (the conftest picks them up): one or two per
test on each side."""
QUERY_PLUGINS = ("xep_0030", "xep_0092", "xep_0199")


async def ping_server(client: Client, server: ReferenceServer) -> None:
    """XEP-0199 ping of ``server``'s domain; once it answers, it has handled everything the
    client sent it before."""
    await client.plugin["xep_0199"].ping(server.domain, timeout=TIMEOUT)


def prosody_auth(server: ReferenceServer, remote: ReferenceServer) -> set[tuple[str, str, str]]:
    """(Dir, SASL, Dialback) of Prosody's streams with ``remote``."""
    return {(s["Dir"], s["SASL"], s["Dialback"]) for s in prosody_s2s(server, remote)}


async def chat_both_ways(first: Client, second: Client, tag: str) -> None:
    """A chat message each way, each checked for its sender."""
    for sender, receiver in ((first, second), (second, first)):
        body = f"{tag} from {sender.boundjid.bare}"
        sender.send_message(mto=receiver.boundjid.bare, mbody=body, mtype="chat")
        assert (await receiver.next_message(body))["from"] == sender.boundjid


async def test_rfc6121_heron_and_prosody_users_subscribe_see_presence_and_chat(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "alice"), (prosody_peer, "alice")) as (local, remote):
        # §3: a mutual subscription across the two domains; each sees the other available.
        await subscribe_each_other(local, remote)
        for client, contact in ((local, remote), (remote, local)):
            await asyncio.wait_for(client.get_roster(), TIMEOUT)
            assert client.client_roster[contact.boundjid.bare]["subscription"] == "both"
        await chat_both_ways(local, remote, "hello")

        # §4.5.2: logging out reaches the contact as unavailable presence, both ways; a
        # new login's initial presence (§4.2) reaches the contact again (another resource,
        # so that no presence of the first login can stand in for it).
        await log_out([remote])
        await local.presence_from(str(remote.boundjid), "unavailable")
        again = await peer_login(prosody_peer, "alice", "again")
        try:
            await local.presence_from(str(again.boundjid))
            await again.presence_from(str(local.boundjid))
            await log_out([local])
            await again.presence_from(str(local.boundjid), "unavailable")
        finally:
            await log_out([again])


async def test_rfc6121_8_5_2_a_message_to_a_missing_account_bounces_across_domains(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "judy"), (prosody_peer, "judy")) as (local, remote):
        for client, server in ((local, prosody_peer), (remote, heron_peer)):
            nobody = f"nobody@{server.domain}"
            client.send_message(mto=nobody, mbody="anyone there?", mtype="chat")
            bounce = await asyncio.wait_for(client.errors.get(), TIMEOUT)
            assert bounce["from"] == JID(nobody)
            assert bounce["error"]["condition"] == "service-unavailable"


async def test_xep0045_a_prosody_user_chats_in_a_persistent_heron_room(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    assert heron_peer.muc_domain is not None
    room = JID(f"lounge@{heron_peer.muc_domain}")
    async with on_peers((heron_peer, "bob"), (heron_peer, "carol"), plugins=MUC_PLUGINS) as (
        owner,
        member,
    ):
        # §10.1.3: the owner configures the new room persistent (muc#roomconfig_persistentroom).
        muc = owner.plugin["xep_0045"]
        created, _, _, _ = await muc.join_muc_wait(room, "owner", timeout=TIMEOUT)
        assert "201" in {str(code) for code in created["muc"]["status_codes"]}
        form = owner.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="muc#roomconfig_persistentroom", value="1")
        await muc.set_room_config(room, form, timeout=TIMEOUT)
        rooms = heron_peer.ctl("xmpp", "rooms")
        assert rooms.returncode == 0, rooms.stderr
        assert str(room) in rooms.stdout
        assert [line.split()[-1] for line in rooms.stdout.splitlines() if str(room) in line] == [
            "yes"
        ]
        await join_room(member, room, "member")
        owner.send_message(mto=room, mbody="before you came", mtype="groupchat")
        await member.next_message("before you came")

        async with on_peers((prosody_peer, "bob"), plugins=MUC_PLUGINS) as (guest,):
            # §7.2.3, §7.2.15: the remote newcomer gets the occupants, then the history.
            _, _, occupants, history = await guest.plugin["xep_0045"].join_muc_wait(
                room, "guest", maxstanzas=5, timeout=TIMEOUT
            )
            assert {p["from"].resource for p in occupants} >= {"owner", "member"}
            assert [m["body"] for m in history] == ["before you came"]
            for client in (owner, member):
                await client.presence_from(f"{room}/guest")

            guest.send_message(mto=room, mbody="hello from prosody", mtype="groupchat")
            for client in (owner, member, guest):
                assert (await client.next_message("hello from prosody"))["from"] == JID(
                    f"{room}/guest"
                )
            member.send_message(mto=room, mbody="hello from heron", mtype="groupchat")
            for client in (owner, member, guest):
                assert (await client.next_message("hello from heron"))["from"] == JID(
                    f"{room}/member"
                )
            # §7.5: private messages between occupants, through the room's nicks.
            guest.send_message(mto=JID(f"{room}/member"), mbody="psst", mtype="chat")
            assert (await member.next_message("psst"))["from"] == JID(f"{room}/guest")
            member.send_message(mto=JID(f"{room}/guest"), mbody="psst back", mtype="chat")
            assert (await guest.next_message("psst back"))["from"] == JID(f"{room}/member")

            guest.plugin["xep_0045"].leave_muc(room, "guest")
            for client in (owner, member):
                await client.presence_from(f"{room}/guest", "unavailable")


async def test_xep0045_a_heron_user_chats_in_a_prosody_room(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    assert prosody_peer.muc_domain is not None
    room = JID(f"den@{prosody_peer.muc_domain}")
    async with on_peers((prosody_peer, "carol"), (heron_peer, "dave"), plugins=MUC_PLUGINS) as (
        host,
        guest,
    ):
        await join_room(host, room, "host")
        host.send_message(mto=room, mbody="before you came", mtype="groupchat")
        await host.next_message("before you came")
        _, _, occupants, history = await guest.plugin["xep_0045"].join_muc_wait(
            room, "guest", maxstanzas=5, timeout=TIMEOUT
        )
        assert "host" in {p["from"].resource for p in occupants}
        assert [m["body"] for m in history] == ["before you came"]
        await host.presence_from(f"{room}/guest")

        guest.send_message(mto=room, mbody="hello from heron", mtype="groupchat")
        for client in (host, guest):
            assert (await client.next_message("hello from heron"))["from"] == JID(f"{room}/guest")
        host.send_message(mto=room, mbody="hello from prosody", mtype="groupchat")
        for client in (host, guest):
            assert (await client.next_message("hello from prosody"))["from"] == JID(f"{room}/host")
        host.plugin["xep_0045"].leave_muc(room, "host")
        await guest.presence_from(f"{room}/host", "unavailable")


async def test_xep0178_valid_certificates_authenticate_both_ways_with_sasl_external(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "erin"), (prosody_peer, "dave")) as (local, remote):
        await chat_both_ways(local, remote, "external")
    assert heron_streams(heron_peer, prosody_peer.domain) == {
        ("out", "external"),
        ("in", "external"),
    }
    assert prosody_auth(prosody_peer, heron_peer) == {
        ("-->", "Succeeded", "Not used"),
        ("<--", "Succeeded", "Not used"),
    }


async def test_xep0220_heron_with_a_certificate_for_another_domain_uses_dialback(
    start_heron: StartPeer, prosody_peer: ReferenceServer, federation_ca: TestCa
) -> None:
    # Prosody cannot match heron's certificate to heron's domain, so heron's stream to
    # Prosody authenticates by dialback; Prosody's own stream to heron still by EXTERNAL.
    unverified = start_heron("db-heron.example", tls=federation_ca.issue("other.example"))
    local = await peer_login(unverified, "alice", check_hostname=False)
    try:
        async with on_peers((prosody_peer, "erin")) as (remote,):
            await chat_both_ways(local, remote, "dialback")
    finally:
        await log_out([local])
    assert heron_streams(unverified, prosody_peer.domain) == {
        ("out", "dialback"),
        ("in", "external"),
    }
    # Prosody shows dialback on its outgoing streams only; its incoming one from heron went
    # without SASL, and Prosody asked heron back for the key (XEP-0220 §2.3).
    assert prosody_auth(prosody_peer, unverified) == {
        ("-->", "Succeeded", "Not used"),
        ("<--", "", "Not used"),
    }
    assert f"asking {unverified.domain} if key" in prosody_peer.logs()


async def test_xep0220_prosody_with_a_certificate_for_another_domain_uses_dialback(
    heron_peer: ReferenceServer, start_prosody: StartPeer, federation_ca: TestCa
) -> None:
    # The other way round: heron cannot verify Prosody's s2s certificate (its clients get a
    # valid one), so Prosody's stream to heron authenticates by dialback.
    domain = "db-prosody.example"
    unverified = start_prosody(
        domain,
        tls=federation_ca.issue("other.example"),
        c2s_tls=federation_ca.issue(domain),
        muc_domain=None,
    )
    async with on_peers((heron_peer, "frank"), (unverified, "alice")) as (local, remote):
        await chat_both_ways(local, remote, "dialback")
    assert heron_streams(heron_peer, unverified.domain) == {("out", "external"), ("in", "dialback")}
    # heron offers no SASL EXTERNAL it would refuse, so Prosody goes straight to dialback.
    assert prosody_auth(unverified, heron_peer) == {
        ("-->", "", "Completed"),
        ("<--", "Succeeded", "Not used"),
    }


async def test_secure_auth_refuses_prosody_with_a_certificate_for_another_domain(
    start_heron: StartPeer, start_prosody: StartPeer, federation_ca: TestCa
) -> None:
    # xmpp.s2s_secure_auth: no dialback, so a Prosody heron cannot verify is refused; its
    # user's message never arrives and comes back to the user as an error.
    strict = start_heron("strict.example", secure_auth=True)
    domain = "refused.example"
    unverified = start_prosody(
        domain,
        tls=federation_ca.issue("other.example"),
        c2s_tls=federation_ca.issue(domain),
        muc_domain=None,
    )
    async with on_peers((strict, "bob"), (unverified, "alice")) as (local, remote):
        remote.send_message(mto=local.boundjid.bare, mbody="let me in", mtype="chat")
        bounce = await asyncio.wait_for(remote.errors.get(), TIMEOUT)
        assert bounce["from"].bare == local.boundjid.bare
        assert bounce["error"]["condition"] == "remote-server-timeout"
        assert "not-authorized" in bounce["error"]["text"]  # heron's stream error, passed on
        assert local.messages.empty()
    assert heron_streams(strict, unverified.domain) <= {("out", "external")}


async def test_xep0030_xep0092_xep0199_remote_servers_and_users_answer_across_s2s(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "grace"), (prosody_peer, "frank"), plugins=QUERY_PLUGINS) as (
        local,
        remote,
    ):
        for client, server, software, user in (
            (local, prosody_peer, "Prosody", remote),
            (remote, heron_peer, "heron", local),
        ):
            disco, version = client.plugin["xep_0030"], client.plugin["xep_0092"]
            info = await disco.get_info(jid=server.domain, timeout=TIMEOUT)
            assert ("server", "im") in {
                (category, kind) for category, kind, _, _ in info["disco_info"]["identities"]
            }
            assert "urn:xmpp:ping" in info["disco_info"]["features"]
            answer = await version.get_version(JID(server.domain), timeout=TIMEOUT)
            assert answer["software_version"]["name"] == software
            await ping_server(client, server)

            # A user's own client answers at its full JID.
            info = await disco.get_info(jid=user.boundjid, timeout=TIMEOUT)
            assert "jabber:iq:version" in info["disco_info"]["features"]
            answer = await version.get_version(user.boundjid, timeout=TIMEOUT)
            assert answer["software_version"]["name"] == "Slixmpp"
            await client.plugin["xep_0199"].ping(user.boundjid, timeout=TIMEOUT)

            # RFC 6121 §8.5.1: a request to no account comes back as an error, across s2s too.
            with pytest.raises(IqError) as refused:
                await disco.get_info(jid=f"nobody@{server.domain}", timeout=TIMEOUT)
            assert refused.value.iq["error"]["condition"] == "service-unavailable"


async def test_xep0191_a_blocked_prosody_users_messages_do_not_arrive(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with (
        on_peers((heron_peer, "heidi"), plugins=("xep_0191",)) as (local,),
        on_peers((prosody_peer, "grace"), (prosody_peer, "heidi"), plugins=("xep_0199",)) as (
            blocked,
            other,
        ),
    ):
        await local.plugin["xep_0191"].block([blocked.boundjid.bare], timeout=TIMEOUT)
        blocked.send_message(mto=local.boundjid.bare, mbody="blocked", mtype="chat")
        await ping_server(blocked, heron_peer)  # heron has dealt with "blocked"
        other.send_message(mto=local.boundjid.bare, mbody="not blocked", mtype="chat")
        assert (await local.next_message())["body"] == "not blocked"
        # §3.6: a request from the blocked user is answered as if the account did not exist.
        with pytest.raises(IqError) as refused:
            await blocked.plugin["xep_0199"].ping(local.boundjid, timeout=TIMEOUT)
        assert refused.value.iq["error"]["condition"] == "service-unavailable"


async def test_xep0160_a_prosody_users_message_to_an_offline_heron_user_arrives_at_login(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with on_peers((prosody_peer, "ivan"), plugins=("xep_0199",)) as (remote,):
        recipient = JID(heron_peer.jid("ivan")).bare
        remote.send_message(mto=recipient, mbody="while you were out", mtype="chat")
        await ping_server(remote, heron_peer)  # heron has stored the message
    async with on_peers((heron_peer, "ivan"), plugins=("xep_0203",)) as (local,):
        message = await local.next_message("while you were out")
        assert message["from"].bare == remote.boundjid.bare
        assert message["delay"]["stamp"] is not None  # XEP-0203 stamp of the storage


async def test_xep0191_3_5_no_presence_broadcast_reaches_a_blocked_prosody_contact(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    async with (
        on_peers((heron_peer, "mallory"), plugins=("xep_0191", "xep_0199")) as (local,),
        on_peers((heron_peer, "niaj"), (prosody_peer, "mallory")) as (witness, remote),
    ):
        await subscribe_each_other(local, remote)
        await local.plugin["xep_0191"].block([remote.boundjid.bare], timeout=TIMEOUT)
        local.send_presence(pshow="away")
        await ping_server(local, heron_peer)  # heron has broadcast the change
        # heron's one stream to Prosody is in order: what the broadcast sent came first.
        witness.send_message(mto=remote.boundjid.bare, mbody="after the change", mtype="chat")
        await remote.next_message("after the change")
        assert not [p for p in remote.presences if p["show"] == "away"]


async def test_xep0280_a_heron_users_other_device_sees_both_sides_of_a_chat_with_prosody(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    plugins = ("xep_0199", "xep_0280")
    laptop = await peer_login(heron_peer, "olivia", "laptop", plugins=plugins)
    phone = await peer_login(heron_peer, "olivia", "phone", plugins=plugins)
    copies: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
    for kind in ("received", "sent"):
        phone.add_event_handler(
            f"carbon_{kind}", lambda carbon, kind=kind: copies.put_nowait((kind, carbon))
        )
    try:
        for device in (laptop, phone):
            await device.plugin["xep_0280"].enable(timeout=TIMEOUT)
        async with on_peers((prosody_peer, "olivia")) as (remote,):
            remote.send_message(mto=laptop.boundjid, mbody="from verona", mtype="chat")
            await laptop.next_message("from verona")
            kind, carbon = await asyncio.wait_for(copies.get(), TIMEOUT)
            assert (kind, carbon["from"]) == ("received", laptop.boundjid.bare)
            original = carbon["carbon_received"]
            assert (original["from"], original["body"]) == (remote.boundjid, "from verona")

            laptop.send_message(mto=remote.boundjid.bare, mbody="to verona", mtype="chat")
            await remote.next_message("to verona")
            kind, carbon = await asyncio.wait_for(copies.get(), TIMEOUT)
            assert (kind, carbon["from"]) == ("sent", laptop.boundjid.bare)
            assert carbon["carbon_sent"]["body"] == "to verona"
    finally:
        await log_out([laptop, phone])


async def test_xep0163_a_heron_users_avatar_is_notified_to_a_prosody_contact(
    heron_peer: ReferenceServer, prosody_peer: ReferenceServer
) -> None:
    """heron follows the Prosody contact's presence, asks its caps across s2s and sends it
    the avatar metadata it asked for with +notify (XEP-0163 §4.3, §6.2)."""
    plugins = ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084")
    async with on_peers((heron_peer, "peggy"), (prosody_peer, "peggy"), plugins=plugins) as (
        local,
        remote,
    ):
        events: asyncio.Queue[Message] = asyncio.Queue()
        remote.add_event_handler("avatar_metadata_publish", events.put_nowait)
        await subscribe_each_other(local, remote)
        # slixmpp's first presence can carry a caps hash of a feature list it changed since;
        # heron distrusts that one, so the contact announces its settled caps again.
        await remote.plugin["xep_0115"].update_caps(broadcast=True)
        avatar = local.plugin["xep_0084"]
        await avatar.publish_avatar(b"\x89PNG avatar", timeout=TIMEOUT)
        info = {"id": "a1b2", "type": "image/png", "bytes": 12}
        await avatar.publish_avatar_metadata(info, timeout=TIMEOUT)
        # Live, or as the last item once heron verified the caps: exactly one of them.
        event = await asyncio.wait_for(events.get(), TIMEOUT)
        assert event["from"] == local.boundjid.bare
        assert event["pubsub_event"]["items"]["item"]["id"] == "a1b2"
