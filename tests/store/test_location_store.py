"""SIP location bindings round-trip on SQLite, PostgreSQL and MariaDB alike,
and outlive the process that wrote them (Kamailio's WITH_USRLOCDB).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from heron.sip import SipLocalError
from heron.sip.registrar import Binding, BindingSource, LocationStore, lookup_targets
from heron.store import Database, SqlLocationStore

pytestmark = pytest.mark.database

NOW = 1_767_323_045.25
AOR = "roland@falcot.com"
UDP = BindingSource("UDP", "198.51.100.7", 40123, "udp:198.51.100.7:40123")
TLS = BindingSource("TLS", "2001:db8::7", 51234, "tls:7f3a9c")


def binding(contact: str, aor: str = AOR, **changes: Any) -> Binding:
    fields: dict[str, Any] = {
        "aor": aor,
        "contact": contact,
        "expires_at": NOW + 3600,
        "q": None,
        "call_id": "843817637684230@998sdasdh09",
        "cseq": 1,
        "received": UDP,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Binding(**fields)


FULL = binding(
    "sip:roland@192.0.2.4:5060;transport=tls;ob",
    expires_at=1_767_326_645.123456,
    q=0.7,
    call_id="a84b4c76e66710@pc33.falcot.com",
    cseq=2**32 - 1,
    received=TLS,
    updated_at=1_767_323_045.987654,
    path=("<sip:edge.falcot.com;lr;ob>", '<sip:p1.falcot.com;lr>;x="a, b"'),
    instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>",
    reg_id=2**31 - 1,
    user_agent="Linphone/5.2 (Debian) — ünïcode",
)
PLAIN = binding("sip:roland@192.0.2.9")


@pytest.fixture
def store(database: Database) -> LocationStore:
    return SqlLocationStore(database)


async def test_bindings_round_trip_with_every_field(store: LocationStore) -> None:
    await store.replace(AOR, [FULL, PLAIN])
    assert await store.get(AOR) == [FULL, PLAIN]
    assert await store.get("nobody@falcot.com") == []


async def test_long_values_fit(store: LocationStore) -> None:
    # Push-notification parameters make Contact URIs long (RFC 8599).
    long = binding(
        "sip:roland@192.0.2.4;pn-prid=" + "a" * 3000,
        call_id="c" * 500,
        path=tuple(f"<sip:proxy{n}.falcot.com;lr>" for n in range(40)),
        user_agent="u" * 1000,
    )
    await store.replace(AOR, [long])
    assert await store.get(AOR) == [long]


async def test_replace_swaps_the_whole_set(store: LocationStore) -> None:
    lucy = binding("sip:lucy@192.0.2.5", aor="lucy@falcot.com")
    await store.replace("lucy@falcot.com", [lucy])
    await store.replace(AOR, [FULL, PLAIN])
    third = binding("sip:roland@203.0.113.5", call_id="other")
    await store.replace(AOR, [third])
    assert await store.get(AOR) == [third]
    await store.replace(AOR, [])
    assert await store.get(AOR) == []
    assert await store.get("lucy@falcot.com") == [lucy]


async def test_replace_all_swaps_every_aors_set_and_leaves_the_others(
    store: LocationStore,
) -> None:
    lucy = binding("sip:lucy@192.0.2.5", aor="lucy@falcot.com")
    sam = binding("sip:sam@192.0.2.6", aor="sam@falcot.com")
    await store.replace_all({AOR: [FULL], "lucy@falcot.com": [lucy], "sam@falcot.com": [sam]})
    third = binding("sip:roland@203.0.113.5", call_id="other")
    await store.replace_all({AOR: [third, PLAIN], "lucy@falcot.com": []})
    assert await store.get(AOR) == [third, PLAIN]
    assert await store.get("lucy@falcot.com") == []
    assert await store.get("sam@falcot.com") == [sam]
    await store.replace_all({})
    assert await store.get("sam@falcot.com") == [sam]


async def test_replace_all_takes_more_aors_than_one_statement_lists(store: LocationStore) -> None:
    sets = {
        f"user{n}@falcot.com": [binding(f"sip:u{n}@192.0.2.1", aor=f"user{n}@falcot.com")]
        for n in range(1200)
    }
    await store.replace_all(sets)
    await store.replace_all({aor: [] for aor in list(sets)[:1100]})
    assert len(await store.all(NOW)) == 100
    assert await store.get("user1199@falcot.com") == sets["user1199@falcot.com"]


async def test_replace_all_refuses_another_aors_binding(store: LocationStore) -> None:
    with pytest.raises(SipLocalError):
        await store.replace_all({"lucy@falcot.com": [PLAIN]})


async def test_replace_is_atomic_under_concurrent_writers(store: LocationStore) -> None:
    sets = [
        [binding(f"sip:roland@192.0.2.{n}", call_id=f"writer-{n}", cseq=c) for c in range(1, 4)]
        for n in range(1, 9)
    ]
    for _ in range(3):
        await asyncio.gather(*(store.replace(AOR, bindings) for bindings in sets))
        assert await store.get(AOR) in sets


async def test_replace_refuses_another_aors_binding(store: LocationStore) -> None:
    await store.replace(AOR, [PLAIN])
    with pytest.raises(SipLocalError):
        await store.replace("lucy@falcot.com", [PLAIN])
    assert await store.get(AOR) == [PLAIN]


async def test_all_lists_live_bindings_by_aor(store: LocationStore) -> None:
    lucy = binding("sip:lucy@192.0.2.5", aor="lucy@falcot.com", expires_at=NOW + 60)
    brief = binding("sip:roland@192.0.2.8", expires_at=NOW + 30)
    await store.replace(AOR, [PLAIN, brief])
    await store.replace("lucy@falcot.com", [lucy])
    assert await store.all(NOW) == [lucy, PLAIN, brief]
    assert await store.all(NOW + 30) == [lucy, PLAIN]
    assert await store.all(NOW + 3600) == []


async def test_sweep_deletes_expired_bindings(store: LocationStore) -> None:
    lucy = binding("sip:lucy@192.0.2.5", aor="lucy@falcot.com", expires_at=NOW + 60)
    brief = binding("sip:roland@192.0.2.8", expires_at=NOW + 30)
    await store.replace(AOR, [PLAIN, brief])
    await store.replace("lucy@falcot.com", [lucy])
    assert await store.sweep(NOW) == 0
    assert await store.sweep(NOW + 60) == 2
    assert await store.get(AOR) == [PLAIN]
    assert await store.get("lucy@falcot.com") == []
    assert await store.sweep(NOW + 60) == 0


async def test_bindings_survive_a_restart(database_url: str) -> None:
    first = Database(database_url)
    await first.open()
    await SqlLocationStore(first).replace(AOR, [FULL, PLAIN])
    await first.close()

    second = Database(database_url)
    await second.open()
    try:
        restored = await SqlLocationStore(second).get(AOR)
        assert restored == [FULL, PLAIN]
        assert [b.contact for b in lookup_targets(restored, NOW)] == [PLAIN.contact, FULL.contact]
    finally:
        await second.close()
