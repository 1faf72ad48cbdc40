"""The in-memory stores keep the SQL stores' contract: every scenario of ``tests/store``
that needs only a store runs again on :mod:`heron.store.memory`, so the protocol tests
built on the memory stores test what the server does on a database.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest

from heron.store.memory import (
    MemoryAccountStore,
    MemoryArchiveStore,
    MemoryBlocklistStore,
    MemoryLocationStore,
    MemoryOfflineStore,
    MemoryPushStore,
    MemoryRoomStore,
    MemoryRosterStore,
    MemoryVCardStore,
)
from tests.store import (
    test_accounts_store,
    test_archive_store,
    test_im_store,
    test_location_store,
    test_push_store,
    test_room_store,
    test_xmpp_services_store,
)

STORES: dict[ModuleType, dict[str, Callable[[], object]]] = {
    test_accounts_store: {
        "service": lambda: test_accounts_store.account_service(MemoryAccountStore())
    },
    test_archive_store: {"store": MemoryArchiveStore},
    test_im_store: {"roster": MemoryRosterStore, "offline": lambda: MemoryOfflineStore(limit=3)},
    test_location_store: {"store": MemoryLocationStore},
    test_push_store: {"store": MemoryPushStore},
    test_room_store: {"store": MemoryRoomStore},
    test_xmpp_services_store: {"vcards": MemoryVCardStore, "blocklists": MemoryBlocklistStore},
}
"""The store fixtures of each module, made in memory; the SQL fixtures build the same
with a database."""

Scenario = Callable[..., Awaitable[None]]


def scenarios() -> list[Any]:
    """Each test of the modules that takes store fixtures only (restarts, damaged rows
    and transactions are the database's own, and stay in ``tests/store``)."""
    found = []
    for module, stores in STORES.items():
        for name, test in vars(module).items():
            if not (name.startswith("test_") and inspect.iscoroutinefunction(test)):
                continue
            parameters = set(inspect.signature(test).parameters)
            if parameters and parameters <= stores.keys():
                made = {parameter: stores[parameter] for parameter in parameters}
                found.append(pytest.param(test, made, id=f"{module.__name__}.{name}"))
    return found


SCENARIOS = scenarios()


def test_every_store_module_contributes() -> None:
    modules = {scenario.id.rpartition(".test_")[0] for scenario in SCENARIOS}
    assert modules == {module.__name__ for module in STORES}
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize(("test", "stores"), SCENARIOS)
async def test_memory_store_keeps_the_sql_contract(
    test: Scenario, stores: dict[str, Callable[[], object]]
) -> None:
    await test(**{parameter: make() for parameter, make in stores.items()})
