"""``heron user del`` on a running heron: the account's session ends, the files it
uploaded (XEP-0363) are no longer served, and an account later made with the same name
finds none of its vCard or PEP data (the rows went with the account), and inherits
neither its blocklist nor its avatar's hash on presence (what the server remembered)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004.stanza import Form

from tests.interop.xmpp.avatars import AVATAR_PLUGINS, publish_avatar
from tests.interop.xmpp.support import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    Client,
    XmppServer,
    client_context,
    connect,
    log_out,
)
from tests.support.heron import heron_cli

PLUGINS = (*AVATAR_PLUGINS, "xep_0054", "xep_0191", "xep_0363")
NODE = "urn:example:notes"
NILS = JID(f"nils@{DOMAIN}")
NOBODY = JID(f"nobody@{DOMAIN}")
PHOTO = "{vcard-temp:x:update}x/{vcard-temp:x:update}photo"


async def _refusal(client: Client) -> slixmpp.Message:
    """The error a message to ``NOBODY`` (blocked, or no such account) comes back with."""
    client.send_message(mto=NOBODY, mbody="anyone?", mtype="chat")
    return await asyncio.wait_for(client.errors.get(), TIMEOUT)


async def _own_presence(client: Client, status: str) -> slixmpp.Presence:
    """``client``'s available presence with ``status``, as heron echoes it back (RFC 6121
    §4.2.2: the user's own resources get it too)."""
    client.send_presence(pstatus=status)
    while (presence := await client.presence_from(str(client.boundjid)))["status"] != status:
        pass
    return presence


async def _status(server: XmppServer, url: str) -> int:
    connector = aiohttp.TCPConnector(ssl=client_context(server))
    async with aiohttp.ClientSession(connector=connector) as http:
        response = await http.get(url)
        return response.status


async def _cli(server: XmppServer, *args: str, stdin: str | None = None) -> None:
    done = await asyncio.to_thread(heron_cli, server.heron.config, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr


async def test_a_deleted_accounts_uploads_vcard_and_pep_data_go_with_it(
    trusting_heron: XmppServer, tmp_path: Path
) -> None:
    server = trusting_heron
    note = tmp_path / "note.txt"
    note.write_bytes(b"soon gone\n" * 50)
    client = await connect(server, "nils", plugins=PLUGINS)
    try:
        url = await client.plugin["xep_0363"].upload_file(note, timeout=TIMEOUT)
        card = client.plugin["xep_0054"].make_vcard()
        card["FN"] = "Nils"
        await client.plugin["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
        payload = Form()
        await client.plugin["xep_0060"].publish(
            None, NODE, id="current", payload=payload, timeout=TIMEOUT
        )
        assert await _status(server, url) == 200
        avatar = await publish_avatar(client, b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        assert (await _own_presence(client, "before")).xml.findtext(PHOTO) == avatar
        await client.plugin["xep_0191"].block(NOBODY, timeout=TIMEOUT)
        assert (await _refusal(client))["error"]["condition"] == "not-acceptable"

        await _cli(server, "user", "del", str(NILS))
        await asyncio.wait_for(client.ended.wait(), TIMEOUT)  # heron heard of the deletion
        assert await _status(server, url) == 404
    finally:
        await log_out([client])

    await _cli(server, "user", "add", str(NILS), "--password-stdin", stdin=PASSWORD + "\n")
    again = await connect(server, "nils", resource="again", plugins=PLUGINS)
    try:
        assert (await _own_presence(again, "after")).xml.find(PHOTO) is None
        assert (await _refusal(again))["error"]["condition"] == "service-unavailable"
        for ask in (
            again.plugin["xep_0054"].get_vcard(NILS, timeout=TIMEOUT),
            again.plugin["xep_0060"].get_items(NILS, NODE, timeout=TIMEOUT),
        ):
            try:
                await ask
            except IqError as error:
                assert error.condition == "item-not-found"
            else:
                raise AssertionError("the new account found the deleted one's data")
    finally:
        await log_out([again])
