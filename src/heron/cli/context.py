"""What every subcommand shares: the configuration, loaded once and only when needed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import uvloop

from heron.accounts import AccountChange, AccountService
from heron.app import ACCOUNTS_CHANGED, account_policy
from heron.config import Config, config_file, load_config, parse_address, system_service
from heron.control import notify
from heron.errors import InvalidInput
from heron.store import Database
from heron.wiring import sql_stores

__all__ = ["CliContext", "address_argument", "open_accounts", "pass_context", "run"]

T = TypeVar("T")


@dataclass
class CliContext:
    """``config_path`` is the file actually read: the one given, or Debian's when heron
    runs as the system's service (:func:`heron.config.system_service`)."""

    config_path: Path | None
    data_dir: Path | None
    system: bool = field(default_factory=system_service)
    _config: Config | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.config_path = config_file(self.config_path, self.system)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, self.data_dir, system=self.system)
        return self._config


pass_context = click.make_pass_decorator(CliContext)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop, the loop heron serves with."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def address_argument(value: str) -> tuple[str, str]:
    try:
        return parse_address(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@asynccontextmanager
async def open_accounts(config: Config) -> AsyncIterator[AccountService]:
    """The account service on the configured database; password changes and removals made
    through it are then told to the server running on the same data directory, if any, so
    that it drops cached secrets and the account's sessions."""
    database = Database(config.database_url)
    await database.open()
    changes: list[tuple[str, str, AccountChange]] = []
    try:
        accounts = AccountService(sql_stores(database, config).accounts, account_policy(config))
        accounts.subscribe(lambda *change: changes.append(change))
        yield accounts
    finally:
        await database.close()
    for local, domain, change in changes:
        if not await notify(config.data_dir, ACCOUNTS_CHANGED, f"{change} {local}@{domain}"):
            break  # no server runs on this data directory: nothing to tell
