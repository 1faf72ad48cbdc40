"""The federation harness proved on two servers nobody here wrote: Prosody 0.12 and ejabberd
23.01 federate through the test's DNS stub and CA, with SASL EXTERNAL (XEP-0178) when both
certificates are valid, dialback (XEP-0220) when one is not, and no stream at all when Prosody's
s2s_secure_auth is on. heron's s2s tests trust the harness because of these."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp import JID

from tests.interop.xmpp.federation.support import (
    StartPeer,
    ejabberd_s2s,
    on_peers,
    prosody_s2s,
)
from tests.interop.xmpp.support import MUC_PLUGINS, TIMEOUT, join_room, subscribe_each_other
from tests.support.federation.ca import TestCa
from tests.support.federation.dns import FederationDns
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop


async def test_xep0178_valid_certificates_subscribe_and_chat_with_sasl_external(
    prosody_peer: ReferenceServer,
    ejabberd_peer: ReferenceServer,
    federation_resolver: FederationDns,
) -> None:
    async with on_peers((prosody_peer, "alice"), (ejabberd_peer, "bob")) as (alice, bob):
        await subscribe_each_other(alice, bob)
        alice.send_message(mto=bob.boundjid.bare, mbody="hello from prosody", mtype="chat")
        assert (await bob.next_message("hello from prosody"))["from"].bare == alice.boundjid.bare
        bob.send_message(mto=alice.boundjid.bare, mbody="hello from ejabberd", mtype="chat")
        assert (await alice.next_message("hello from ejabberd"))["from"].bare == bob.boundjid.bare

    # Both found each other through the stub (RFC 6120 §3.2.1), not through /etc.
    for domain in (prosody_peer.domain, ejabberd_peer.domain):
        assert "SRV" in federation_resolver.stub.asked(f"_xmpp-server._tcp.{domain}")
    assert {
        ("inbound", "EXTERNAL", prosody_peer.domain, ejabberd_peer.domain),
        ("outbound", "EXTERNAL", ejabberd_peer.domain, prosody_peer.domain),
    } <= ejabberd_s2s(ejabberd_peer)
    auth = {(s["Dir"], s["SASL"], s["Dialback"]) for s in prosody_s2s(prosody_peer, ejabberd_peer)}
    assert auth == {("-->", "Succeeded", "Not used"), ("<--", "Succeeded", "Not used")}


async def test_xep0045_a_remote_user_chats_in_a_room_across_s2s(
    prosody_peer: ReferenceServer, ejabberd_peer: ReferenceServer
) -> None:
    # The room's service is a subdomain reached through its own SRV record and certificate name.
    assert ejabberd_peer.muc_domain is not None
    room = JID(f"lounge@{ejabberd_peer.muc_domain}")
    async with on_peers((ejabberd_peer, "erin"), (prosody_peer, "erin"), plugins=MUC_PLUGINS) as (
        host,
        guest,
    ):
        await join_room(host, room, "host")
        await join_room(guest, room, "guest")
        guest.send_message(mto=room, mbody="hello, room", mtype="groupchat")
        for client in (host, guest):
            assert (await client.next_message("hello, room"))["from"] == JID(f"{room}/guest")


async def test_xep0220_certificate_for_another_domain_falls_back_to_dialback(
    ejabberd_peer: ReferenceServer, start_prosody: StartPeer, federation_ca: TestCa
) -> None:
    # Prosody's s2s certificate names another domain (its clients still get a valid one).
    # ejabberd cannot verify it, so Prosody's SASL EXTERNAL fails and dialback authenticates
    # Prosody's stream; ejabberd's own stream to Prosody still goes by EXTERNAL.
    domain = "dialback.example"
    wrong = start_prosody(
        domain, tls=federation_ca.issue("wrong.example"), c2s_tls=federation_ca.issue(domain)
    )
    async with on_peers((wrong, "carol"), (ejabberd_peer, "dave")) as (carol, dave):
        carol.send_message(mto=dave.boundjid.bare, mbody="over dialback", mtype="chat")
        await dave.next_message("over dialback")
        dave.send_message(mto=carol.boundjid.bare, mbody="dialback back", mtype="chat")
        await carol.next_message("dialback back")

    authenticated = ejabberd_s2s(ejabberd_peer)
    assert ("inbound", "dialback", domain, ejabberd_peer.domain) in authenticated
    assert ("inbound", "EXTERNAL", domain, ejabberd_peer.domain) not in authenticated
    auth = {(s["Dir"], s["SASL"], s["Dialback"]) for s in prosody_s2s(wrong, ejabberd_peer)}
    assert auth == {("-->", "Failed", "Completed"), ("<--", "Succeeded", "Not used")}


async def test_secure_auth_refuses_a_certificate_for_another_domain(
    start_prosody: StartPeer, federation_ca: TestCa
) -> None:
    # Prosody's s2s_secure_auth = true (the harness's secure_auth) refuses dialback: the peer
    # with a certificate for another name gets a not-authorized stream error, and its user a
    # bounce.
    strict = start_prosody("strict.example", secure_auth=True, muc_domain=None)
    wrong = start_prosody(
        "unverified.example",
        tls=federation_ca.issue("other.example"),
        c2s_tls=federation_ca.issue("unverified.example"),
        muc_domain=None,
    )
    async with on_peers((wrong, "alice"), (strict, "bob")) as (alice, bob):
        alice.send_message(mto=bob.boundjid.bare, mbody="let me in", mtype="chat")
        bounce = await asyncio.wait_for(alice.errors.get(), TIMEOUT)
        assert "not-authorized" in bounce["error"]["text"]
        assert bob.messages.empty()
    assert "Forbidding insecure connection to/from unverified.example" in strict.logs()
