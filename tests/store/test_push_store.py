"""Push registrations (XEP-0357) round-trip on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from heron.store import Database
from heron.store.push import SqlPushStore
from heron.xmpp.features.push import PushStore
from heron.xmpp.jid import parse_jid
from heron.xmpp.push import MAX_NODE, Registration

pytestmark = pytest.mark.database

ROLAND = "roland@falcot.com"
LUCY = "lucy@falcot.com"
APP = parse_jid("push.example.net")
OTHER = parse_jid("p2.siacs.eu")


@pytest.fixture
def store(database: Database) -> PushStore:
    return SqlPushStore(database)


async def test_xep0357_s5_enable_keeps_service_node_and_options_in_order(
    store: PushStore,
) -> None:
    first = Registration(APP, "n1", (("secret", "ünïcode-s3cret"), ("endpoint", "x")))
    second = Registration(OTHER, "n" * MAX_NODE)
    assert await store.enable_push(ROLAND, first, 5)
    assert await store.enable_push(ROLAND, second, 5)
    assert await store.push_services(ROLAND) == [first, second]
    assert await store.push_services(LUCY) == []


async def test_enabling_again_replaces_and_the_limit_counts_others(store: PushStore) -> None:
    assert await store.enable_push(ROLAND, Registration(APP, "n1"), 2)
    assert await store.enable_push(ROLAND, Registration(APP, "n2"), 2)
    renewed = Registration(APP, "n1", (("secret", "new"),))
    assert await store.enable_push(ROLAND, renewed, 2)
    assert not await store.enable_push(ROLAND, Registration(APP, "n3"), 2)
    assert await store.push_services(ROLAND) == [Registration(APP, "n2"), renewed]
    assert await store.enable_push(LUCY, Registration(APP, "n3"), 2)  # per account


async def test_xep0357_s6_disable_one_node_or_the_whole_service(store: PushStore) -> None:
    for registration in (
        Registration(APP, "n1"),
        Registration(APP, "n2"),
        Registration(OTHER, "n1"),
    ):
        await store.enable_push(ROLAND, registration, 5)
    await store.enable_push(LUCY, Registration(APP, "n1"), 5)
    assert await store.disable_push(ROLAND, str(APP), "n1") == 1
    assert await store.disable_push(ROLAND, str(APP), None) == 1
    assert await store.push_services(ROLAND) == [Registration(OTHER, "n1")]
    assert await store.push_services(LUCY) == [Registration(APP, "n1")]
