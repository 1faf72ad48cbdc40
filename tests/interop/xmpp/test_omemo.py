"""OMEMO (XEP-0384) over heron's PEP with slixmpp-omemo: two accounts, two devices each.

Every device publishes its bundle and joins its account's device list (open access
model, publish-options, precondition-not-met then node configuration when they differ);
a message encrypted on one device is decrypted by the three others: the contact's two
devices, which fetch the sender's device list and bundle from PEP, and the sender's other
device through its carbon (XEP-0280). Then the contact answers the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import slixmpp
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import JSONType
from slixmpp import JID
from slixmpp.plugins.base import register_plugin
from slixmpp_omemo import XEP_0384

from tests.interop.xmpp.support import (
    DOMAIN,
    TIMEOUT,
    Client,
    XmppServer,
    connect,
    log_out,
    subscribe_each_other,
)

PLUGINS = ("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0280", "xep_0334")
OLDMEMO = "eu.siacs.conversations.axolotl"
SETUP_TIMEOUT = 60.0  # key generation in pure Python, two OMEMO versions, on a busy machine


class MemoryStorage(Storage):
    """python-omemo's key-value storage, in a dict: each device starts fresh."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, JSONType] = {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = value

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)


class Omemo(XEP_0384):  # type: ignore[misc]
    """slixmpp-omemo with blind trust before verification, as a test device needs."""

    def plugin_init(self) -> None:
        self._storage = MemoryStorage()
        self.ready = asyncio.Event()
        self.xmpp.add_event_handler("omemo_initialized", lambda *_: self.ready.set())
        super().plugin_init()

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(self, blindly_trusted: Any, identifier: Any) -> None:
        return None

    async def _prompt_manual_trust(self, manually_trusted: Any, identifier: Any) -> None:
        raise AssertionError("blind trust needs no prompt")


register_plugin(Omemo)


@dataclass
class Device:
    client: Client
    device_lists: asyncio.Queue[slixmpp.Message]
    """Device list notifications (XEP-0163 §4.3) of the legacy OMEMO node."""

    async def device_list_from(self, jid: str, device_id: int | None = None) -> None:
        """Wait for a notification of ``jid``'s device list (naming ``device_id``)."""
        while True:
            event = await asyncio.wait_for(self.device_lists.get(), TIMEOUT)
            listed = event["pubsub_event"]["items"]["item"].xml.iter(f"{{{OLDMEMO}}}device")
            ids = {int(device.get("id", "0")) for device in listed}
            if event["from"] == JID(jid) and (device_id is None or device_id in ids):
                return

    async def device_id(self) -> int:
        manager = await self.client.plugin["xep_0384"].get_session_manager()
        return int((await manager.get_own_device_information())[0].device_id)


async def _device(server: XmppServer, user: str, resource: str) -> Device:
    client = await connect(server, user, resource=resource, plugins=(*PLUGINS, "xep_0384"))
    device_lists: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
    client.add_event_handler("oldmemo_device_list_publish", device_lists.put_nowait)
    await asyncio.wait_for(client.plugin["xep_0384"].ready.wait(), SETUP_TIMEOUT)
    await client.plugin["xep_0280"].enable(timeout=TIMEOUT)
    # slixmpp announced a caps hash while its plugins were still adding +notify features,
    # and answers its disco#info with the later list: heron rightly distrusts that hash.
    # A presence with the settled hash; the last device list proves heron verified it.
    await client.plugin["xep_0115"].update_caps(broadcast=True)
    device = Device(client, device_lists)
    await device.device_list_from(str(client.boundjid.bare))
    return device


async def _send(sender: Client, to: str, text: str) -> None:
    stanza = sender.make_message(mto=JID(to), mtype="chat")
    stanza["body"] = text
    omemo = sender.plugin["xep_0384"]
    encrypted, errors = await omemo.encrypt_message(stanza, JID(to))
    assert encrypted is not None and not errors, errors
    encrypted.send()


async def _decrypted(client: Client, queue: asyncio.Queue[slixmpp.Message], text: str) -> None:
    """The next OMEMO message with a body in ``queue`` decrypts to ``text`` on ``client``."""
    omemo = client.plugin["xep_0384"]
    while True:
        message = await asyncio.wait_for(queue.get(), TIMEOUT)
        if message["body"] and omemo.is_encrypted(message):
            plain, _device_info = await omemo.decrypt_message(message)
            assert plain["body"] == text
            return


def _sent_carbons(client: Client) -> asyncio.Queue[slixmpp.Message]:
    queue: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
    client.add_event_handler("carbon_sent", lambda c: queue.put_nowait(c["carbon_sent"]))
    return queue


async def test_xep0384_slixmpp_omemo_two_accounts_two_devices_each(
    shared_xmpp: XmppServer,
) -> None:
    alice, bob = f"felix@{DOMAIN}", f"gus@{DOMAIN}"
    devices: list[Device] = []
    try:
        # One device at a time: each adds itself to the device list the previous ones left,
        # and the account's devices already there are notified of the new list.
        for user, resource in (
            ("felix", "a1"),
            ("felix", "a2"),
            ("gus", "b1"),
            ("gus", "b2"),
        ):
            devices.append(await _device(shared_xmpp, user, resource))
            if resource.endswith("2"):
                await devices[-2].device_list_from(
                    f"{user}@{DOMAIN}", await devices[-1].device_id()
                )
        a1, a2, b1, b2 = (device.client for device in devices)
        await subscribe_each_other(a1, b1)
        carbons = {client: _sent_carbons(client) for client in (a1, a2, b1, b2)}
        for client in (a1, a2, b1, b2):
            # python-omemo takes its own account's list from notifications only; the one
            # just awaited may still be in its handler: read it from PEP instead.
            manager = await client.plugin["xep_0384"].get_session_manager()
            for namespace in (OLDMEMO, "urn:xmpp:omemo:2"):
                await manager.refresh_device_list(namespace, client.boundjid.bare)
            await client.plugin["xep_0384"].refresh_device_lists(
                {JID(alice), JID(bob)}, force_download=True
            )

        await _send(a1, bob, "the falcot.com rack is ready")
        await _decrypted(b1, b1.messages, "the falcot.com rack is ready")
        await _decrypted(b2, b2.messages, "the falcot.com rack is ready")
        await _decrypted(a2, carbons[a2], "the falcot.com rack is ready")

        await _send(b2, alice, "thanks — ünïcode too")
        await _decrypted(a1, a1.messages, "thanks — ünïcode too")
        await _decrypted(a2, a2.messages, "thanks — ünïcode too")
        await _decrypted(b1, carbons[b1], "thanks — ünïcode too")
    finally:
        await log_out([device.client for device in devices])
