"""XMPP Ping (XEP-0199): the server answers, so clients can check their stream is alive."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["PingHandler"]

_PING = qname(NS.PING, "ping")


class PingHandler:
    """XEP-0199 §4.2 (client-to-server) and §4.3: a ping to the server or to an
    account's bare JID, which the server answers on the account's behalf.
    """

    namespace: str = NS.PING
    disco_features: tuple[str, ...] = (NS.PING,)

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        # §4.2: "an IQ-get containing a <ping/> element"; a set is not defined.
        if iq.get("type") != "get" or iq.find(_PING) is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get with <ping/>")
        return iq_result(iq)
