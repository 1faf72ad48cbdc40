"""What heron is built from: the one place that chooses its stores and its services.

Each protocol package states what it needs from storage as Protocols beside its
model (``sip.registrar.LocationStore``, ``xmpp.features.roster.RosterStore`` ...)
and never imports :mod:`heron.store`. Here the SQL implementations are built on
the one database and bound to the builders, so tests and tools can hand the same
components :mod:`heron.store.memory` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from heron.accounts.model import AccountStore
from heron.component import Component, Services
from heron.config import Config
from heron.mux.server import build_mux
from heron.sip.registrar import LocationStore
from heron.sip.server import build_sip
from heron.store import Database, SqlAccountStore, SqlLocationStore
from heron.store.im import SqlLoginStore, SqlOfflineStore, SqlRosterStore
from heron.store.pep import SqlPepStore
from heron.store.rooms import SqlRoomStore
from heron.store.xmpp_services import SqlBlocklistStore, SqlVCardStore
from heron.turn.server import build_turn, build_turn_worker
from heron.web.server import build_web
from heron.xmpp.server import XmppStores, build_xmpp

__all__ = ["Builder", "Stores", "builders", "sql_stores", "turn_worker_builders"]

Builder = Callable[[Services], Component | None]


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store heron uses, by the service that owns it."""

    accounts: AccountStore
    location: LocationStore
    xmpp: XmppStores


def sql_stores(database: Database, config: Config) -> Stores:
    """The stores on ``database``, the one heron serves from."""
    return Stores(
        accounts=SqlAccountStore(database),
        location=SqlLocationStore(database),
        xmpp=XmppStores(
            roster=SqlRosterStore(database),
            offline=SqlOfflineStore(database, limit=config.xmpp.offline_limit),
            login=SqlLoginStore(database),
            blocklists=SqlBlocklistStore(database),
            vcards=SqlVCardStore(database),
            rooms=SqlRoomStore(database),
            pep=SqlPepStore(database),
        ),
    )


def builders(stores: Stores) -> tuple[Builder, ...]:
    """Every service in start order (the web component serves routes the others add),
    each given its own stores."""
    return (
        build_turn,
        partial(build_sip, location=stores.location),
        partial(build_xmpp, stores=stores.xmpp),
        build_web,
        build_mux,  # last: it hands connections to the services started before it
    )


def turn_worker_builders(stores: Stores) -> tuple[Builder, ...]:
    """A ``heron serve --turn-worker`` process: TURN alone, which keeps no store of its own."""
    return (build_turn_worker,)
