"""Two herons in two domains federate: users subscribe, see each other come and go, chat and
meet in a room across; SASL EXTERNAL (XEP-0178) with valid certificates, dialback (XEP-0220)
when one or both name another domain, no stream at all with ``s2s_secure_auth`` for an
invalid one, stanzas that waited for a stream leave in order and intact, and direct TLS
(XEP-0368) to a domain that publishes ``_xmpps-server._tcp``.

Every heron started here has XEP-0288 off, so each direction keeps a stream of its own and
shows how it authenticated; test_heron_bidi.py proves the one stream both ways."""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree

import pytest
from slixmpp import JID

from tests.interop.xmpp.federation.support import (
    StartPeer,
    chat_both_ways,
    chat_in_room,
    heron_s2s,
    heron_streams,
    on_peers,
)
from tests.interop.xmpp.support import MUC_PLUGINS, TIMEOUT, join_room, subscribe_each_other
from tests.support.federation.ca import TestCa
from tests.support.federation.dns import FederationDns
from tests.support.federation.reference import ReferenceServer

pytestmark = pytest.mark.interop

ONE_STREAM_EACH_WAY: dict[str, Any] = {"xmpp": {"s2s_bidi": False}}


@pytest.fixture(scope="module")
def second_peer(start_module_heron: StartPeer) -> ReferenceServer:
    """A second heron with a valid certificate, for ``second.example``."""
    return start_module_heron("second.example", settings=ONE_STREAM_EACH_WAY)


@pytest.fixture(scope="module")
def unverified_peer(start_module_heron: StartPeer, federation_ca: TestCa) -> ReferenceServer:
    """A heron for ``unverified.example`` whose certificate names ``other.example``."""
    return start_module_heron(
        "unverified.example",
        tls=federation_ca.issue("other.example"),
        settings=ONE_STREAM_EACH_WAY,
    )


async def test_rfc6121_subscription_presence_and_chat_between_herons_over_sasl_external(
    heron_peer: ReferenceServer, second_peer: ReferenceServer
) -> None:
    async with on_peers((heron_peer, "alice"), (second_peer, "alice")) as (first_user, second_user):
        await subscribe_each_other(first_user, second_user)
        await chat_both_ways(first_user, second_user)
        # RFC 6121 §4.5, both ways (the first comes back before the second leaves: a server
        # sends no presence to an unavailable resource).
        first_user.send_presence(ptype="unavailable")
        await second_user.presence_from(str(first_user.boundjid), "unavailable")
        first_user.send_presence()
        await second_user.presence_from(str(first_user.boundjid))
        second_user.send_presence(ptype="unavailable")
        await first_user.presence_from(str(second_user.boundjid), "unavailable")

    # XEP-0178: both certificates are valid, so each side's outgoing stream used EXTERNAL.
    both = {("in", "external"), ("out", "external")}
    assert heron_streams(heron_peer, second_peer.domain) == both
    assert heron_streams(second_peer, heron_peer.domain) == both


async def test_xep0045_user_of_one_heron_chats_in_a_room_of_another(
    heron_peer: ReferenceServer, second_peer: ReferenceServer
) -> None:
    assert heron_peer.muc_domain is not None
    room = JID(f"across@{heron_peer.muc_domain}")
    async with on_peers((heron_peer, "bob"), (second_peer, "bob"), plugins=MUC_PLUGINS) as (
        host,
        guest,
    ):
        await join_room(host, room, "host")
        await join_room(guest, room, "guest")
        await chat_in_room(room, (guest, "guest"), (host, "host"))
    # The room's service speaks for itself over s2s: its own stream to the guest's domain.
    assert ("out", "external") in {
        (row["Dir"], row["Auth"])
        for row in heron_s2s(heron_peer)
        if row["Local"] == heron_peer.muc_domain and row["Remote"] == second_peer.domain
    }


async def test_xep0220_dialback_when_one_heron_certificate_names_another_domain(
    heron_peer: ReferenceServer, unverified_peer: ReferenceServer
) -> None:
    # The unverified heron's stream is authenticated by dialback, checked with it over
    # heron_peer's own stream, which goes by EXTERNAL.
    async with (
        on_peers((unverified_peer, "carol"), check_hostname=False) as (ours,),
        on_peers((heron_peer, "carol")) as (theirs,),
    ):
        await chat_both_ways(ours, theirs)
    assert heron_streams(heron_peer, unverified_peer.domain) == {
        ("in", "dialback"),
        ("out", "external"),
    }
    assert heron_streams(unverified_peer, heron_peer.domain) == {
        ("in", "external"),
        ("out", "dialback"),
    }


async def test_xep0220_dialback_both_ways_when_neither_certificate_is_valid(
    unverified_peer: ReferenceServer, start_heron: StartPeer, federation_ca: TestCa
) -> None:
    # Both users speak at once, so each heron checks the other's key over its own stream
    # while that stream itself still waits for dialback.
    other = start_heron(
        "unverified-too.example",
        tls=federation_ca.issue("other.example"),
        settings=ONE_STREAM_EACH_WAY,
    )
    async with on_peers((unverified_peer, "erin"), (other, "erin"), check_hostname=False) as (
        first_user,
        second_user,
    ):
        pairs = ((first_user, second_user), (second_user, first_user))
        for sender, receiver in pairs:
            sender.send_message(mto=receiver.boundjid.bare, mbody="at once", mtype="chat")
        for sender, receiver in pairs:
            assert (await receiver.next_message("at once"))["from"] == sender.boundjid
    both = {("in", "dialback"), ("out", "dialback")}
    assert heron_streams(unverified_peer, other.domain) == both
    assert heron_streams(other, unverified_peer.domain) == both


async def test_rfc6120_stanzas_waiting_for_new_streams_leave_in_order_and_intact(
    unverified_peer: ReferenceServer, second_peer: ReferenceServer
) -> None:
    # Neither heron has a stream to the other yet, and dialback makes the first one slow: each
    # side's burst waits in its queue, then leaves in order with its escapes and payloads.
    payload = ElementTree.fromstring(
        '<x><html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/'
        '1999/xhtml"><p>hi <em>there</em></p></body></html><data xmlns="urn:example:test">'
        "<item>x</item><empty/></data></x>"
    )
    expected = [ElementTree.tostring(element) for element in payload]
    text = "a <b> & 'c' \"d\" \u00e9 \U0001f600 ]]> end"
    count = 40
    async with (
        on_peers((unverified_peer, "alice"), check_hostname=False) as (first,),
        on_peers((second_peer, "carol")) as (second,),
    ):
        for sender, receiver in ((first, second), (second, first)):
            for number in range(count):
                message = sender.make_message(
                    mto=receiver.boundjid.bare, mbody=f"{number} {text}", mtype="chat"
                )
                message.xml.extend(payload)
                message.send()
        for sender, receiver in ((first, second), (second, first)):
            received = [await receiver.next_message() for _ in range(count)]
            assert [m["body"] for m in received] == [f"{n} {text}" for n in range(count)]
            assert {m["from"] for m in received} == {sender.boundjid}
            for message in received:
                # The receiving account's archive id (XEP-0359) is heron's own addition.
                added = ("{jabber:client}body", "{urn:xmpp:sid:0}stanza-id")
                extras = [e for e in message.xml if e.tag not in added]
                assert [ElementTree.tostring(e) for e in extras] == expected
                stanza_id = message.xml.find(added[1])
                assert stanza_id is not None and stanza_id.get("by") == receiver.boundjid.bare


async def test_secure_auth_refuses_a_heron_whose_certificate_names_another_domain(
    heron_peer: ReferenceServer, start_heron: StartPeer, unverified_peer: ReferenceServer
) -> None:
    strict = start_heron("strict.example", secure_auth=True, settings=ONE_STREAM_EACH_WAY)
    # A peer with a valid certificate is welcome (XEP-0178 EXTERNAL both ways).
    async with on_peers((strict, "erin"), (heron_peer, "dave")) as (strict_user, valid_user):
        await chat_both_ways(strict_user, valid_user)
    assert heron_streams(strict, heron_peer.domain) == {("in", "external"), ("out", "external")}
    async with (
        on_peers((unverified_peer, "dave"), check_hostname=False) as (unverified_user,),
        on_peers((strict, "dave")) as (strict_user,),
    ):
        # Neither way: the strict heron neither accepts the unverified one's stream nor
        # sends over one to it; each sender gets its message back as an error.
        for first, second in ((unverified_user, strict_user), (strict_user, unverified_user)):
            first.send_message(mto=second.boundjid.bare, mbody="let me in", mtype="chat")
            bounce = await asyncio.wait_for(first.errors.get(), TIMEOUT)
            assert bounce["from"].bare == second.boundjid.bare
            assert bounce["error"]["condition"] == "remote-server-timeout"
        assert unverified_user.messages.empty() and strict_user.messages.empty()
    assert not {("in", "dialback"), ("out", "external")} & heron_streams(
        strict, unverified_peer.domain
    )


async def test_xep0368_direct_tls_to_a_domain_publishing_xmpps_server(
    heron_peer: ReferenceServer, start_heron: StartPeer, federation_resolver: FederationDns
) -> None:
    direct = start_heron("direct.example", direct_tls=True, settings=ONE_STREAM_EACH_WAY)
    # Only the direct-TLS record is left: reaching direct.example proves heron used it.
    federation_resolver.stub.remove(f"_xmpp-server._tcp.{direct.domain}", "SRV")
    async with on_peers((heron_peer, "erin"), (direct, "erin")) as (first_user, direct_user):
        await chat_both_ways(first_user, direct_user)
    assert "SRV" in federation_resolver.stub.asked(f"_xmpps-server._tcp.{direct.domain}")
    outgoing = [
        (row["Auth"], row["TLS"][:4])
        for row in heron_s2s(heron_peer)
        if row["Dir"] == "out" and row["Remote"] == direct.domain
    ]
    assert outgoing == [("external", "TLSv")]
