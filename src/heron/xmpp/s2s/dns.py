"""The DNS side of RFC 6120 §3.2: the shared resolver (:mod:`heron.dns.resolver`) answering
:mod:`heron.xmpp.s2s.locate`, then the outgoing-address rule (:mod:`heron.destinations`).

A remote domain's DNS is anyone's to write, so an address it names is dropped when it is
internal (loopback, private, link-local, heron's own) and ``xmpp.s2s_allowed_destinations``
does not allow it: federation must not become a way to reach what only heron should.
"""

from __future__ import annotations

import logging

from heron.config import Config
from heron.destinations import Destinations
from heron.dns.records import Pick
from heron.dns.resolver import SEARCH_BUDGET, Resolver, random_pick
from heron.xmpp.s2s.locate import ServerLocation, locate_server

__all__ = ["ServerLocator", "s2s_destinations"]

log = logging.getLogger(__name__)


def s2s_destinations(config: Config) -> Destinations:
    """The rule for s2s connections: ``xmpp.s2s_allowed_destinations`` may be reached, the
    XMPP listeners' addresses are heron's own (add the rest with
    :func:`heron.destinations.own_addresses` at start, as SIP does)."""
    xmpp = config.xmpp
    listeners = [*xmpp.listen, *xmpp.tls_listen, *xmpp.s2s_listen]
    return Destinations(xmpp.s2s_allowed_destinations, own=[a.host for a in listeners])


class ServerLocator:
    """Where to connect for a remote domain (RFC 6120 §3.2, XEP-0368), internal addresses
    left out."""

    def __init__(
        self,
        resolver: Resolver,
        destinations: Destinations,
        *,
        budget: float = SEARCH_BUDGET,
        pick: Pick = random_pick,
    ) -> None:
        self._resolver = resolver
        self._destinations = destinations
        self._budget = budget
        self._pick = pick
        self.refused = 0
        """Addresses left out so far for being internal (for the metrics)."""

    async def locate(self, domain: str) -> ServerLocation:
        """The targets for ``domain`` in the order to try them; none when the domain has no
        server, or only internal ones (``failed`` when a lookup failed instead)."""
        found = await self._resolver.run(locate_server(domain, self._pick), self._budget)
        allowed = tuple(t for t in found.targets if not self._destinations.internal(t.address))
        if len(allowed) < len(found.targets):
            self._refuse(domain, len(found.targets) - len(allowed))
        log.debug("xmpp: s2s %s located at %s", domain, allowed)
        return ServerLocation(allowed, found.failed)

    def _refuse(self, domain: str, count: int) -> None:
        before, self.refused = self.refused, self.refused + count
        if before == 0 or before // 10_000 != self.refused // 10_000:
            log.warning(
                "xmpp: s2s to %r: %d internal address(es) left out "
                "(xmpp.s2s_allowed_destinations); %d so far",
                domain,
                count,
                self.refused,
            )
