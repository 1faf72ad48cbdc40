"""An account: one user@domain for every protocol, and the store interface it lives behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from heron.accounts.secrets import Secrets

__all__ = ["Account", "AccountStore"]


@dataclass(frozen=True, slots=True)
class Account:
    local: str
    domain: str
    admin: bool
    """Set by ``heron admin add``; config ``admins`` grant the same rights."""
    secrets: Secrets
    created: datetime

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"


class AccountStore(Protocol):
    """Where accounts persist; :class:`heron.store.SqlAccountStore` is the default."""

    async def add(self, account: Account) -> None:
        """Insert ``account``; raise :class:`heron.errors.AccountExists` if taken."""

    async def get(self, local: str, domain: str) -> Account | None: ...

    async def list(self, domain: str | None = None) -> Sequence[Account]: ...

    async def delete(self, local: str, domain: str) -> bool:
        """Remove the account; False if there was none."""

    async def replace_secrets(self, local: str, domain: str, secrets: Secrets) -> bool:
        """Swap every derived secret at once; False if there is no such account."""

    async def set_admin(self, local: str, domain: str, admin: bool) -> bool:
        """Set the admin flag; False if there is no such account."""
