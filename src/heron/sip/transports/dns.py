"""The DNS side of RFC 3263: the shared resolver (:mod:`heron.dns.resolver`) answering
:mod:`heron.sip.locate`, the whole search of one request within a budget."""

from __future__ import annotations

import logging

from heron.dns.records import Pick
from heron.dns.resolver import SEARCH_BUDGET, Resolver, random_pick
from heron.sip.locate import Located, locate
from heron.sip.uri import SipUri

__all__ = ["SipLocator"]

log = logging.getLogger(__name__)


class SipLocator:
    """Targets for a SIP URI (RFC 3263 §4), looked up over DNS."""

    def __init__(
        self, resolver: Resolver, *, budget: float = SEARCH_BUDGET, pick: Pick = random_pick
    ) -> None:
        self._resolver = resolver
        self._budget = budget
        self._pick = pick

    async def locate(self, uri: SipUri) -> Located:
        """The targets, in order; a lookup that fails or outlasts the budget counts as failed."""
        located = await self._resolver.run(locate(uri, self._pick), self._budget)
        log.debug("sip: %s located at %s", uri, located)
        return located
