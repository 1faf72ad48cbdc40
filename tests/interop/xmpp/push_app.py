"""A push app server (XEP-0357) for the interop tests, and the phone's <enable/>.

slixmpp has no XEP-0357 plugin: the app server is a slixmpp session that answers the
pubsub publishes heron sends it, and the phone sends the <enable/> of §5 itself.
"""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element, SubElement

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.interop.xmpp.support import TIMEOUT, Client

PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"


class AppServer:
    """A push app server: every pubsub publish it gets is queued and answered with a result."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.publishes: asyncio.Queue[slixmpp.Iq] = asyncio.Queue()
        self.sources: list[str] = []
        """Who sent each publish, in order."""
        client.register_handler(
            Callback(
                "push publish",
                MatchXPath(f"{{jabber:client}}iq/{{{PUBSUB}}}pubsub"),
                self._publish,
            )
        )

    def _publish(self, iq: slixmpp.Iq) -> None:
        self.publishes.put_nowait(iq)
        self.sources.append(str(iq["from"]))
        iq.reply(clear=True).send()

    async def next_summary(self) -> tuple[str, dict[str, str]]:
        """The node and the summary fields of the next publish."""
        iq = await asyncio.wait_for(self.publishes.get(), TIMEOUT)
        publish = iq.xml.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
        assert publish is not None
        form = publish.find(f"{{{PUBSUB}}}item/{{{PUSH}}}notification/{{{DATA}}}x")
        assert form is not None
        fields = {
            f.get("var", ""): f.findtext(f"{{{DATA}}}value", "")
            for f in form.iter(f"{{{DATA}}}field")
        }
        return publish.get("node", ""), fields


async def enable_push(phone: Client, service: str, node: str, to: str | None = None) -> slixmpp.Iq:
    """XEP-0357 §5, with a publish-options form as Conversations sends its secret."""
    iq = phone.make_iq_set(ito=to)
    enable = Element(f"{{{PUSH}}}enable", {"jid": service, "node": node})
    x = SubElement(enable, f"{{{DATA}}}x", {"type": "submit"})
    for var, value in (
        ("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
        ("secret", "s3cr3t"),
    ):
        SubElement(SubElement(x, f"{{{DATA}}}field", {"var": var}), f"{{{DATA}}}value").text = value
    iq.append(enable)
    return await iq.send(timeout=TIMEOUT)
