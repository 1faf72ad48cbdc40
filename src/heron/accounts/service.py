"""Account operations the CLI, the web admin and the protocols share."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from heron.accounts.model import Account, AccountStore
from heron.accounts.secrets import (
    SCRAM_ITERATIONS,
    Identity,
    Secrets,
    complete_secrets,
    derive_secrets,
)
from heron.errors import AccountExists, AccountNotFound, InvalidInput, StoreError

__all__ = ["AccountChange", "AccountListener", "AccountPolicy", "AccountService", "Merged"]

log = logging.getLogger(__name__)


class AccountChange(StrEnum):
    """What happened to an account, for the services holding its secrets or sessions."""

    PASSWORD = "password"
    REMOVED = "removed"
    ADMIN = "admin"
    """The admin flag was set or cleared (``heron admin add``/``remove``)."""
    ADDED = "added"
    """A new account (``heron user add``/``import``): caches forget the name was unknown."""
    COMPLETED = "completed"
    """Secrets an imported account missed were added (``heron import``, or derived at a
    login that gave the password); those it had, and what they proved, stay."""

    @property
    def ends_proofs(self) -> bool:
        """Whether what the old secrets proved (sessions, allocations, known devices,
        web phone grants) ends: a new password or no account."""
        return self in (AccountChange.PASSWORD, AccountChange.REMOVED)


AccountListener = Callable[[str, str, AccountChange], None]
"""Called with (local, domain, change) after the store has the change."""


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """The slice of configuration that decides account names and rights."""

    domain: str
    sip_domain: str
    turn_realm: str
    account_domains: tuple[str, ...]
    admins: frozenset[str]

    def identity(self, local: str, domain: str) -> Identity:
        """Names used in SIP and TURN keys.

        Users of the main domain go by their bare name, as ``kamctl add`` and
        ``turnadmin -a`` users do; users of other hosted domains by their
        full address, so two domains' "roland" never share a key.
        """
        if domain == self.domain:
            return Identity(local, self.sip_domain, local, self.turn_realm)
        address = f"{local}@{domain}"
        return Identity(address, domain, address, self.turn_realm)

    def check_domain(self, domain: str) -> None:
        if domain not in self.account_domains:
            served = ", ".join(self.account_domains)
            raise InvalidInput(f"domain {domain} is not served here (configured: {served})")


class Merged(StrEnum):
    """What :meth:`AccountService.merge` did (or would do) with an imported account."""

    ADDED = "added"
    COMPLETED = "completed"
    """It existed without some secrets, and the import had them."""
    UNCHANGED = "unchanged"
    """It existed with every secret the import had: a re-run changes nothing."""


class AccountService:
    """Creates, changes and removes accounts, deriving every secret from the password."""

    def __init__(
        self,
        store: AccountStore,
        policy: AccountPolicy,
        *,
        salt_factory: Callable[[], bytes] = lambda: os.urandom(16),
        iterations: int = SCRAM_ITERATIONS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0),
    ) -> None:
        self._store = store
        self._policy = policy
        self._salt = salt_factory
        self._iterations = iterations
        self._clock = clock
        self._listeners: list[AccountListener] = []

    def subscribe(self, listener: AccountListener) -> None:
        """Hear of password changes, removals and admin flag changes, to drop cached
        secrets, rights and sessions."""
        self._listeners.append(listener)

    def announce(self, local: str, domain: str, change: AccountChange) -> None:
        """Tell the listeners; also called for changes another ``heron`` process made."""
        for listener in self._listeners:
            listener(local, domain, change)

    def identity(self, local: str, domain: str) -> Identity:
        """The names the account goes by in SIP and TURN."""
        return self._policy.identity(local, domain)

    def is_admin(self, account: Account) -> bool:
        return account.admin or account.address in self._policy.admins

    @property
    def policy(self) -> AccountPolicy:
        return self._policy

    def set_admins(self, admins: frozenset[str]) -> None:
        """The configuration's ``admins`` changed (a reload): each account that gained or
        lost the rights is announced as ``heron admin add|remove`` announces it."""
        changed = admins ^ self._policy.admins
        self._policy = replace(self._policy, admins=admins)
        for address in sorted(changed):
            local, _, domain = address.partition("@")
            self.announce(local, domain, AccountChange.ADMIN)

    async def exists(self, local: str, domain: str) -> bool:
        return await self._store.get(local, domain) is not None

    def salt(self) -> bytes:
        """A fresh SCRAM salt, for secrets derived outside :meth:`add` (bulk imports)."""
        return self._salt()

    @property
    def iterations(self) -> int:
        return self._iterations

    async def add(self, local: str, domain: str, password: str, *, admin: bool = False) -> Account:
        self._policy.check_domain(domain)
        if await self._store.get(local, domain) is not None:
            raise AccountExists(f"{local}@{domain} already exists")
        return await self.add_derived(
            local, domain, self._derive(local, domain, password), admin=admin
        )

    async def add_derived(
        self, local: str, domain: str, secrets: Secrets, *, admin: bool = False
    ) -> Account:
        """Add an account whose secrets were derived (or imported) already, for
        :func:`heron.accounts.derive_many` to spend every core on a batch."""
        self._policy.check_domain(domain)
        account = Account(local, domain, admin, secrets, self._clock())
        await self._store.add(account)
        self.announce(local, domain, AccountChange.ADDED)
        return account

    async def merge(
        self,
        local: str,
        domain: str,
        secrets: Secrets,
        *,
        admin: bool = False,
        dry_run: bool = False,
    ) -> Merged:
        """Add an imported account, or give an existing one the secrets it misses and
        ``secrets`` has. ``admin`` only applies to an account this adds: another
        server's administrator named like an existing heron user gains no rights here.
        Idempotent: importing the same source again changes nothing. With ``dry_run``,
        say what would happen."""
        self._policy.check_domain(domain)
        existing = await self._store.get(local, domain)
        if existing is None:
            if not dry_run:
                await self.add_derived(local, domain, secrets, admin=admin)
            return Merged.ADDED
        completed = complete_secrets(existing.secrets, secrets)
        if completed.missing == existing.secrets.missing:
            return Merged.UNCHANGED
        if not dry_run:
            await self._store.replace_secrets(local, domain, completed)
            self.announce(local, domain, AccountChange.COMPLETED)
        return Merged.COMPLETED

    async def complete(self, account: Account, password: str) -> Account:
        """Derive what an imported ``account`` misses from ``password``, which a login
        has just proved (SASL PLAIN inside TLS, a web login). Its SCRAM keys keep their
        salt and count, so new ones get the same. The derivation (Argon2: tenths of a
        second) runs in a thread, off the loop. The account as stored now: unchanged if
        nothing was missing, or if the store failed (logged: the login stands, the next
        one tries again)."""
        if not account.secrets.missing:
            return account
        first = account.secrets.scram[0]
        try:
            derived = await asyncio.to_thread(
                derive_secrets,
                self._policy.identity(account.local, account.domain),
                password,
                salt=first.salt,
                iterations=first.iterations,
            )
            completed = complete_secrets(account.secrets, derived)
            if not await self._store.replace_secrets(account.local, account.domain, completed):
                return account
        except (ValueError, StoreError) as exc:
            log.warning("could not complete the secrets of %s: %s", account.address, exc)
            return account
        log.info("derived the secrets %s was imported without", account.address)
        self.announce(account.local, account.domain, AccountChange.COMPLETED)
        return replace(account, secrets=completed)

    async def get(self, local: str, domain: str) -> Account:
        account = await self._store.get(local, domain)
        if account is None:
            raise AccountNotFound(f"{local}@{domain} does not exist")
        return account

    async def list(self, domain: str | None = None) -> Sequence[Account]:
        return await self._store.list(domain)

    async def remove(self, local: str, domain: str) -> None:
        if not await self._store.delete(local, domain):
            raise AccountNotFound(f"{local}@{domain} does not exist")
        self.announce(local, domain, AccountChange.REMOVED)

    async def change_password(self, local: str, domain: str, password: str) -> None:
        secrets = self._derive(local, domain, password)
        if not await self._store.replace_secrets(local, domain, secrets):
            raise AccountNotFound(f"{local}@{domain} does not exist")
        self.announce(local, domain, AccountChange.PASSWORD)

    async def set_admin(self, local: str, domain: str, admin: bool) -> None:
        if not await self._store.set_admin(local, domain, admin):
            raise AccountNotFound(f"{local}@{domain} does not exist")
        self.announce(local, domain, AccountChange.ADMIN)

    def _derive(self, local: str, domain: str, password: str) -> Secrets:
        try:
            return derive_secrets(
                self._policy.identity(local, domain),
                password,
                salt=self._salt(),
                iterations=self._iterations,
            )
        except ValueError as exc:
            raise InvalidInput(f"unusable password: {exc}") from None
