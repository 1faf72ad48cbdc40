"""Software Version (XEP-0092): name and version of the server, the OS only if asked for.

The operating system tells an attacker which exploits to try, so XEP-0092 §5
lets a server leave it out; heron does unless the operator passes ``os``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["VersionHandler", "heron_version"]

_QUERY = qname(NS.VERSION, "query")


def heron_version() -> str:
    """The installed distribution's version; "unknown" when run from an uninstalled tree."""
    try:
        return version("heron")
    except PackageNotFoundError:
        return "unknown"


class VersionHandler:
    """XEP-0092 §2: answers a get addressed to the server itself."""

    namespace: str = NS.VERSION
    disco_features: tuple[str, ...] = (NS.VERSION,)

    def __init__(self, *, name: str = "heron", version: str | None = None, os: str | None = None):
        self._name = name
        self._version = heron_version() if version is None else version
        self._os = os

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        if context.to.local:
            # RFC 6121 §8.5.1: an account's bare JID has no software; its
            # resources answer for themselves at their full JIDs.
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if iq.get("type") != "get" or iq.find(_QUERY) is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get with <query/>")
        query = Element(_QUERY)
        SubElement(query, qname(NS.VERSION, "name")).text = self._name
        SubElement(query, qname(NS.VERSION, "version")).text = self._version
        if self._os is not None:
            SubElement(query, qname(NS.VERSION, "os")).text = self._os
        return iq_result(iq, query)
