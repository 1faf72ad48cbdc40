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
from heron.acme import build_acme
from heron.component import Component, Services
from heron.config import Config
from heron.media import build_media
from heron.mux.server import build_mux
from heron.sip.media import MediaBridge
from heron.sip.registrar import LocationStore
from heron.sip.server import build_sip
from heron.store import Database, SqlAccountStore, SqlLocationStore
from heron.store.archive import SqlArchiveStore
from heron.store.im import SqlLoginStore, SqlOfflineStore, SqlRosterStore
from heron.store.pep import SqlPepStore
from heron.store.push import SqlPushStore
from heron.store.rooms import SqlRoomStore
from heron.store.xmpp_services import SqlBlocklistStore, SqlVCardStore
from heron.turn.server import build_turn, build_turn_worker
from heron.web.server import build_web
from heron.xmpp.server import XmppStores, build_xmpp

__all__ = [
    "Builder",
    "MediaSlot",
    "Stores",
    "builders",
    "sip_worker_builders",
    "sql_stores",
    "turn_worker_builders",
]

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
            archive=SqlArchiveStore(database),
            pep=SqlPepStore(database),
            push=SqlPushStore(database),
        ),
    )


class MediaSlot:
    """Builds the media component and keeps its bridge for the SIP proxy, built after it
    (``media.enabled`` false: None, and the proxy relays no media)."""

    def __init__(self) -> None:
        self.bridge: MediaBridge | None = None

    def build(self, services: Services) -> Component | None:
        component = build_media(services)
        self.bridge = component.bridge if component is not None else None
        return component


def builders(stores: Stores) -> tuple[Builder, ...]:
    """Every service in start order (the web component serves routes the others add),
    each given its own stores."""
    media = MediaSlot()
    return (
        build_turn,
        media.build,  # before SIP, which steers media.bridge
        lambda services: build_sip(services, stores.location, media=media.bridge),
        partial(build_xmpp, stores=stores.xmpp),
        build_web,
        build_mux,  # it hands connections to the services started before it
        build_acme,  # last: its first order needs the mux listening, to prove names on it
    )


def sip_worker_builders(stores: Stores) -> tuple[Builder, ...]:
    """A SIP worker process (``sip.workers``): SIP alone, on the bindings' store."""
    return (lambda services: build_sip(services, stores.location),)


def turn_worker_builders(stores: Stores) -> tuple[Builder, ...]:
    """A ``heron serve --turn-worker`` process: TURN alone, which keeps no store of its own."""
    return (build_turn_worker,)
