"""Building heron from its configuration, and its life from start to signal.

Each service is a :class:`Component` built by one function in
:data:`BUILDERS` from the configuration and the shared :class:`Services`;
components never know about each other, so adding TURN, SIP, XMPP or the
port-443 mux is one builder more here and nothing elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from heron.accounts import AccountPolicy, AccountService
from heron.component import Component, Services
from heron.config import Config
from heron.control import SOCKET_NAME, ControlServer
from heron.store import Database, SqlAccountStore
from heron.turn.server import build_turn
from heron.web.server import build_web

__all__ = ["BUILDERS", "account_policy", "serve"]

log = logging.getLogger(__name__)


Builder = Callable[[Services], Component | None]

BUILDERS: tuple[Builder, ...] = (build_turn, build_web)


def account_policy(config: Config) -> AccountPolicy:
    return AccountPolicy(
        domain=config.domain,
        sip_domain=config.sip_domain,
        turn_realm=config.turn_realm,
        account_domains=tuple(config.account_domains),
        admins=frozenset(config.admins),
    )


async def _stop_all(components: Sequence[Component]) -> None:
    for component in reversed(components):
        try:
            await component.stop()
        except Exception:
            log.exception("error while stopping %s", type(component).__name__)


async def serve(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run every enabled component until SIGINT/SIGTERM (or ``stop``), then close cleanly."""
    stop = stop or asyncio.Event()
    database = Database(config.database_url)
    await database.open()
    log.info("database %s ready", database.display_url)
    services = Services(
        config, database, AccountService(SqlAccountStore(database), account_policy(config))
    )
    started: list[Component] = []
    control: ControlServer | None = None
    loop = asyncio.get_running_loop()
    try:
        for build in BUILDERS:
            component = build(services)
            if component is None:
                continue
            started.append(component)  # stopped even if it fails half-started
            listeners = await component.start()
            for listener in listeners:
                log.info("%s listening on %s", listener.service, listener.url)
        control = ControlServer(
            config.data_dir / SOCKET_NAME,
            {name: view for component in started for name, view in component.views().items()},
        )
        await control.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info("heron serving %s", config.domain)
        await stop.wait()
        log.info("stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if control is not None:
            await control.stop()
        await _stop_all(started)
        await database.close()
    log.info("stopped")
