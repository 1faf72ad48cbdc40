"""heron federates with ejabberd 23.01, a server nobody here wrote: users of each subscribe,
see each other come and go (probes, logouts, offline requests), chat both ways, get errors and
iq answers across, and meet in each other's rooms. Streams authenticate with SASL EXTERNAL
(XEP-0178) when both certificates are valid and by dialback (XEP-0220) when one side's names
another domain (heron's, ejabberd's, or only heron's room service missing); closed streams
are opened again, and ejabberd reaches heron over direct TLS (XEP-0368)."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp import JID

from tests.interop.xmpp.federation.support import (
    StartPeer,
    chat_both_ways,
    chat_in_room,
    ejabberd_s2s,
    heron_s2s,
    heron_streams,
    on_peers,
)
from tests.interop.xmpp.support import (
    MUC_PLUGINS,
    TIMEOUT,
    join_room,
    log_out,
    make_persistent,
    subscribe_each_other,
)
from tests.support.federation.ca import TestCa
from tests.support.federation.dns import FederationDns
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop


async def test_rfc6121_subscription_presence_and_chat_with_ejabberd_over_sasl_external(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "alice"), (ejabberd_peer, "alice")) as (ours, theirs):
        await subscribe_each_other(ours, theirs)
        await chat_both_ways(ours, theirs)
        # RFC 6121 §4.5: unavailable presence reaches the other domain's subscriber, both ways
        # (ours comes back first: a server sends no presence to an unavailable resource).
        ours.send_presence(ptype="unavailable")
        await theirs.presence_from(str(ours.boundjid), "unavailable")
        ours.send_presence()
        await theirs.presence_from(str(ours.boundjid))
        theirs.send_presence(ptype="unavailable")
        await ours.presence_from(str(theirs.boundjid), "unavailable")

    # XEP-0178: each server's certificate is valid for its domain, so each stream's initiator
    # authenticated with SASL EXTERNAL; ejabberd logs its side, heron shows its own.
    assert {
        ("inbound", "EXTERNAL", heron_peer.domain, ejabberd_peer.domain),
        ("outbound", "EXTERNAL", ejabberd_peer.domain, heron_peer.domain),
    } <= ejabberd_s2s(ejabberd_peer)
    assert heron_streams(heron_peer, ejabberd_peer.domain) == {
        ("in", "external"),
        ("out", "external"),
    }


async def test_rfc6121_logout_is_unavailable_and_login_probes_across_domains(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    # §4.6: a session that ends broadcasts unavailable presence; §4.3: a new one's initial
    # presence makes its server probe the contact's, whose answer arrives from the other domain.
    async with on_peers((heron_peer, "erin"), (ejabberd_peer, "erin")) as (ours, theirs):
        await subscribe_each_other(ours, theirs)
        await log_out([ours])
        await theirs.presence_from(str(ours.boundjid), "unavailable")
        async with on_peers((heron_peer, "erin")) as (ours_again,):
            await theirs.presence_from(str(ours_again.boundjid))
            await ours_again.presence_from(str(theirs.boundjid))
            await log_out([theirs])
            await ours_again.presence_from(str(theirs.boundjid), "unavailable")
            async with on_peers((ejabberd_peer, "erin")) as (theirs_again,):
                await ours_again.presence_from(str(theirs_again.boundjid))
                await theirs_again.presence_from(str(ours_again.boundjid))


async def test_rfc6120_streams_ejabberd_closes_are_opened_again(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    accepted = f"Accepted inbound s2s EXTERNAL authentication {heron_peer.domain} -> "
    async with on_peers((heron_peer, "dave"), (ejabberd_peer, "dave")) as (ours, theirs):
        await chat_both_ways(ours, theirs)
        streams = ejabberd_peer.logs().count(accepted)
        # ejabberd ends every s2s stream (§4.4 closing handshake); its user speaks first after,
        # so heron has seen its old streams end before it needs one again.
        stopped = ejabberd_peer.ctl("stop_s2s_connections")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        await chat_both_ways(theirs, ours)
    assert ejabberd_peer.logs().count(accepted) > streams


async def test_iq_disco_version_and_ping_answered_across_domains(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    # An iq crosses s2s and its answer finds the full JID it came from (RFC 6120 §8.2.3).
    plugins = ("xep_0030", "xep_0092", "xep_0199")
    async with on_peers((heron_peer, "bob"), (ejabberd_peer, "carol"), plugins=plugins) as (
        ours,
        theirs,
    ):
        for client, server in ((ours, ejabberd_peer), (theirs, heron_peer)):
            info = await client.plugin["xep_0030"].get_info(jid=server.domain, timeout=TIMEOUT)
            assert ("server", "im") in {i[:2] for i in info["disco_info"]["identities"]}
            version = await client.plugin["xep_0092"].get_version(server.domain, timeout=TIMEOUT)
            assert version["software_version"]["name"] == server.kind
            await client.plugin["xep_0199"].ping(server.domain, timeout=TIMEOUT)
            assert server.muc_domain is not None
            room_service = await client.plugin["xep_0030"].get_info(
                jid=server.muc_domain, timeout=TIMEOUT
            )
            assert ("conference", "text") in {
                i[:2] for i in room_service["disco_info"]["identities"]
            }


async def test_rfc6120_errors_for_unknown_users_reach_the_remote_sender(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    # §8.3: each server answers for its own missing account, and the error crosses back.
    async with on_peers((heron_peer, "carol"), (ejabberd_peer, "dave")) as (ours, theirs):
        for client, server in ((ours, ejabberd_peer), (theirs, heron_peer)):
            client.send_message(mto=f"nobody@{server.domain}", mbody="anyone?", mtype="chat")
            error = await asyncio.wait_for(client.errors.get(), TIMEOUT)
            assert error["from"] == JID(f"nobody@{server.domain}")
            assert error["error"]["condition"] == "service-unavailable"


async def test_rfc6121_subscription_request_and_message_wait_for_an_offline_heron_user(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    absent = f"dave@{heron_peer.domain}"
    async with on_peers((ejabberd_peer, "carol"), plugins=("xep_0199",)) as (theirs,):
        theirs.send_presence(pto=absent, ptype="subscribe")
        theirs.send_message(mto=absent, mbody="while you were out", mtype="chat")
        # The stream keeps order: once heron answers a ping, it has stored both (§3.1.3).
        await theirs.plugin["xep_0199"].ping(heron_peer.domain, timeout=TIMEOUT)
        async with on_peers((heron_peer, "dave"), plugins=("xep_0203",)) as (ours,):
            await ours.presence_from(theirs.boundjid.bare, "subscribe")
            delayed = await ours.next_message("while you were out")
            assert delayed["from"] == theirs.boundjid
            assert delayed["delay"]["from"] == JID(heron_peer.domain)
            # slixmpp approves: the requester then gets the new contact's presence.
            await theirs.presence_from(str(ours.boundjid))


async def test_xep0045_ejabberd_user_chats_in_a_persistent_heron_room(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    assert heron_peer.muc_domain is not None
    room = JID(f"persistent@{heron_peer.muc_domain}")
    async with on_peers((heron_peer, "bob"), (ejabberd_peer, "bob"), plugins=MUC_PLUGINS) as (
        owner,
        guest,
    ):
        await join_room(owner, room, "owner")
        await make_persistent(owner, room)
        await join_room(guest, room, "guest")
        await chat_in_room(room, (guest, "guest"), (owner, "owner"))
        # The guest's session ends: ejabberd tells the room, which tells the owner.
        await log_out([guest])
        await owner.presence_from(f"{room}/guest", "unavailable")
        rooms = heron_peer.ctl("xmpp", "rooms").stdout.splitlines()
        assert [str(room), "1", "yes"] in [line.split() for line in rooms]


async def test_xep0045_heron_user_chats_in_an_ejabberd_room(
    heron_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    assert ejabberd_peer.muc_domain is not None
    room = JID(f"lounge@{ejabberd_peer.muc_domain}")
    async with on_peers((ejabberd_peer, "carol"), (heron_peer, "carol"), plugins=MUC_PLUGINS) as (
        host,
        guest,
    ):
        await join_room(host, room, "host")
        await join_room(guest, room, "guest")
        await chat_in_room(room, (guest, "guest"), (host, "host"))
        # RFC 6121 §4.6.3: heron ends the guest's directed presence to the room at logout.
        await log_out([guest])
        await host.presence_from(f"{room}/guest", "unavailable")


async def test_xep0220_heron_certificate_for_another_domain_falls_back_to_dialback(
    ejabberd_peer: ReferenceServer, start_heron: StartPeer, federation_ca: TestCa
) -> None:
    # heron's certificate names another domain: ejabberd refuses its SASL EXTERNAL and
    # checks its dialback key with heron over ejabberd's own stream, which goes by EXTERNAL.
    wrong = start_heron("dialback-heron.example", tls=federation_ca.issue("other.example"))
    async with (
        on_peers((wrong, "dave"), check_hostname=False) as (ours,),
        on_peers((ejabberd_peer, "dave")) as (theirs,),
    ):
        await chat_both_ways(ours, theirs)

    authenticated = ejabberd_s2s(ejabberd_peer)
    assert ("inbound", "dialback", wrong.domain, ejabberd_peer.domain) in authenticated
    assert ("inbound", "EXTERNAL", wrong.domain, ejabberd_peer.domain) not in authenticated
    assert ("outbound", "EXTERNAL", ejabberd_peer.domain, wrong.domain) in authenticated
    assert heron_streams(wrong, ejabberd_peer.domain) == {("in", "external"), ("out", "dialback")}


async def test_xep0220_heron_room_service_missing_from_its_certificate_uses_dialback(
    ejabberd_peer: ReferenceServer, start_heron: StartPeer, federation_ca: TestCa
) -> None:
    # The certificate names the host but not its room service: the service's stream to
    # ejabberd proves its name by dialback, while the host's streams keep to EXTERNAL.
    partial = start_heron("partial.example", tls=federation_ca.issue("partial.example"))
    assert partial.muc_domain is not None
    room = JID(f"lounge@{partial.muc_domain}")
    async with on_peers((partial, "alice"), (ejabberd_peer, "carol"), plugins=MUC_PLUGINS) as (
        host,
        guest,
    ):
        await join_room(host, room, "host")
        await join_room(guest, room, "guest")
        await chat_in_room(room, (guest, "guest"), (host, "host"))
        await chat_both_ways(host, guest)
    authenticated = ejabberd_s2s(ejabberd_peer)
    assert ("inbound", "dialback", partial.muc_domain, ejabberd_peer.domain) in authenticated
    assert ("inbound", "EXTERNAL", partial.domain, ejabberd_peer.domain) in authenticated
    outgoing = {(row["Local"], row["Auth"]) for row in heron_s2s(partial) if row["Dir"] == "out"}
    assert outgoing == {(partial.muc_domain, "dialback"), (partial.domain, "external")}


async def test_xep0220_ejabberd_certificate_for_another_domain_is_checked_by_dialback(
    heron_peer: ReferenceServer, start_ejabberd: StartPeer, federation_ca: TestCa
) -> None:
    # ejabberd (clients too) presents a certificate for another name and speaks first: heron
    # refuses its EXTERNAL, and checks its dialback key over a stream heron opens for it.
    wrong = start_ejabberd("dialback-ejabberd.example", tls=federation_ca.issue("other.example"))
    async with (
        on_peers((wrong, "erin"), check_hostname=False) as (theirs,),
        on_peers((heron_peer, "dave")) as (ours,),
    ):
        await chat_both_ways(theirs, ours)

    authenticated = ejabberd_s2s(wrong)
    assert ("outbound", "dialback", wrong.domain, heron_peer.domain) in authenticated
    assert ("outbound", "EXTERNAL", wrong.domain, heron_peer.domain) not in authenticated
    assert ("inbound", "EXTERNAL", heron_peer.domain, wrong.domain) in authenticated
    assert heron_streams(heron_peer, wrong.domain) == {("in", "dialback"), ("out", "external")}


async def test_xep0368_ejabberd_reaches_heron_over_direct_tls(
    ejabberd_peer: ReferenceServer, start_heron: StartPeer, federation_resolver: FederationDns
) -> None:
    direct = start_heron("direct-heron.example", direct_tls=True)
    # Only the direct-TLS record is left: reaching heron proves ejabberd used its TLS port.
    federation_resolver.stub.remove(f"_xmpp-server._tcp.{direct.domain}", "SRV")
    async with on_peers((direct, "bob"), (ejabberd_peer, "bob")) as (ours, theirs):
        await chat_both_ways(theirs, ours)
    assert "SRV" in federation_resolver.stub.asked(f"_xmpps-server._tcp.{direct.domain}")
    assert ("outbound", "EXTERNAL", ejabberd_peer.domain, direct.domain) in ejabberd_s2s(
        ejabberd_peer
    )
    assert ("in", "external") in heron_streams(direct, ejabberd_peer.domain)
