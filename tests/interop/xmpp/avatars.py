"""XEP-0084 avatars with slixmpp, for the PEP and vCard interop tests: publish one, and
bring up a contact's device whose caps ask for them, which gets the last one (XEP-0163
§6.2) once heron verified its caps: nothing sleeps."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import slixmpp
from slixmpp import JID

from tests.interop.xmpp.support import TIMEOUT, Client, XmppServer, connect

AVATAR_PLUGINS = ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084")


async def publish_avatar(client: Client, data: bytes) -> str:
    """Publish ``data`` as ``client``'s avatar (XEP-0084 §4.1, then §4.2); its id."""
    avatar = client.plugin["xep_0084"]
    await avatar.publish_avatar(data, timeout=TIMEOUT)
    item_id = hashlib.sha1(data).hexdigest()
    info = {"id": item_id, "type": "image/png", "bytes": len(data)}
    await avatar.publish_avatar_metadata(info, timeout=TIMEOUT)
    return item_id


@dataclass
class AvatarDevice:
    """A logged-in client whose caps say ``urn:xmpp:avatar:metadata+notify``."""

    client: Client
    events: asyncio.Queue[slixmpp.Message]

    async def next_avatar(self, owner: JID) -> tuple[str, bytes]:
        """The id of the next avatar notified from ``owner``, and its data fetched by it."""
        event = await asyncio.wait_for(self.events.get(), TIMEOUT)
        assert event["from"] == owner
        item_id = str(event["pubsub_event"]["items"]["item"]["id"])
        data = await self.client.plugin["xep_0084"].retrieve_avatar(owner, item_id, timeout=TIMEOUT)
        value: bytes = data["pubsub"]["items"]["item"]["avatar_data"]["value"]
        return item_id, value


async def avatar_device(server: XmppServer, user: str, resource: str) -> AvatarDevice:
    """Log ``user``/``resource`` in and announce caps that ask for avatars."""
    client = await connect(server, user, resource=resource, plugins=AVATAR_PLUGINS)
    events: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
    client.add_event_handler("avatar_metadata_publish", events.put_nowait)
    await client.plugin["xep_0115"].update_caps(broadcast=True)
    return AvatarDevice(client, events)
