"""USERNAME to long-term keys for the TURN server, and the account a USERNAME names."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache

from heron.accounts import Account, AccountCache, Missing
from heron.credentials import TurnSecret
from heron.errors import HeronError
from heron.guesses import account_key
from heron.turn.auth import Credentials

__all__ = ["VISITOR_PREFIX", "TurnKeys", "known", "turn_account"]

log = logging.getLogger(__name__)


def known(credentials: Credentials | None | Missing) -> Credentials | None:
    """Keys to check against: none when they were not looked up (the core needs none)."""
    return None if isinstance(credentials, Missing) else credentials


VISITOR_PREFIX = "anonymous-"
"""Click-to-call's REST users (``expiry:anonymous-<random>``): one per visit, no account."""


@lru_cache(maxsize=4096)
def turn_account(username: str, domain: str) -> str | None:
    """The account a USERNAME names, as the guess throttle and the quotas count it.

    ``roland``, ``Roland@falcot.com`` and REST names ``expiry:roland`` all name
    ``roland@falcot.com`` (the main ``domain`` when none is given); None for a
    click-to-call visitor's REST name, which counts by the visitor's network.
    Remembered: the server asks it for every signed request, mostly about the same
    few names.
    """
    _, sep, user = username.partition(":")
    if sep:
        if user.startswith(VISITOR_PREFIX):
            return None
        username = user
    local, _, where = username.partition("@")
    return account_key(local, where or domain)


class TurnKeys:
    """USERNAME -> long-term keys: REST-API names by HMAC, accounts from the accounts every
    protocol shares (:class:`heron.accounts.AccountCache`).

    Account keys were derived for one realm when the password was set; after
    a realm change they no longer match and the user is treated as unknown
    until the password is set again.
    """

    def __init__(
        self,
        accounts: AccountCache,
        domain: str,
        realm: str,
        secret: TurnSecret,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._domain = domain
        self._realm = realm
        self._secret = secret
        self._clock = clock

    @property
    def lookups(self) -> int:
        """Queries made to the account store (by every protocol: they share the cache)."""
        return self._accounts.lookups

    def cached(self, username: str) -> Credentials | None | Missing:
        if ":" in username:
            keys = self._secret.long_term_keys(username, self._realm, now=self._clock())
            return None if keys is None else Credentials(username, *keys)
        local, _, domain = username.partition("@")
        found = self._accounts.cached(local.lower(), (domain or self._domain).lower())
        return found if isinstance(found, Missing) else self._keys(username, found)

    def starts_query(self, username: str) -> bool:
        """Whether keys for ``username`` would take a new store query (not cached, and no
        lookup of it under way)."""
        if ":" in username:
            return False
        local, _, domain = username.partition("@")
        return self._accounts.starts_query(local.lower(), (domain or self._domain).lower())

    async def fetch(self, username: str) -> Credentials | None:
        """The keys, from the store; one query for any number of callers at a time."""
        local, _, domain = username.partition("@")
        try:
            account = await self._accounts.get(local.lower(), (domain or self._domain).lower())
        except HeronError as exc:
            log.warning("cannot look up TURN user %r: %s", username, exc)
            return None
        return self._keys(username, account)

    def _keys(self, username: str, account: Account | None) -> Credentials | None:
        if account is None or account.secrets.turn_realm != self._realm:
            return None
        return Credentials(username, account.secrets.turn_key_md5, account.secrets.turn_key_sha256)
