"""Building heron from its configuration, and its life from start to signal.

Each service is a :class:`Component` built by one function from the shared
:class:`Services` and the stores :mod:`heron.wiring` binds to it; components
never know about each other, so adding the port-443 mux is one builder more in
:func:`heron.wiring.builders` and nothing elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import secrets
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

from heron.accounts import AccountChange, AccountPolicy, AccountService
from heron.cluster import Shared
from heron.collector import settle
from heron.component import Component, Services
from heron.config import Config
from heron.control import SOCKET_NAME, Command, ControlServer
from heron.credentials import WebPhoneCredentials, load_or_create_secret
from heron.errors import HeronError, StoreError
from heron.guards import Guards
from heron.guesses import account_key
from heron.inherit import follow_parent, tell_ready
from heron.permissions import loose_permissions
from heron.reload import RELOAD_COMMAND, Reloader
from heron.store import Database
from heron.systemd import Notifier
from heron.wiring import Builder, Stores, builders, sql_stores
from heron.workers import Workers

__all__ = ["ACCOUNTS_CHANGED", "account_policy", "serve"]

log = logging.getLogger(__name__)


def account_policy(config: Config) -> AccountPolicy:
    return AccountPolicy(
        domain=config.domain,
        sip_domain=config.sip_domain,
        turn_realm=config.turn_realm,
        account_domains=tuple(config.account_domains),
        admins=frozenset(config.admins),
    )


ACCOUNTS_CHANGED = "accounts.changed"
"""Control command by which ``heron user del|passwd`` tell the server: "CHANGE user@domain"."""


def _accounts_changed(accounts: AccountService) -> Command:
    def command(argument: str) -> None:
        change, _, address = argument.partition(" ")
        local, at, domain = address.partition("@")
        if not (local and at and domain):
            raise ValueError(f"expected CHANGE user@domain, not {argument!r}")
        accounts.announce(local, domain, AccountChange(change))

    return command


def _revoke_proofs(services: Services) -> Callable[[str, str, AccountChange], None]:
    """A new password (or no account) makes the networks that proved the old one
    strangers, and ends the web phone credentials issued on it."""

    def listener(local: str, domain: str, change: AccountChange) -> None:
        if change.ends_proofs:
            services.guards.guesses.forget_account(account_key(local, domain))
            services.web_phone.revoke_user(services.accounts.identity(local, domain).sip_user)

    return listener


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one, as coturn and Prosody do: every
    connection is a file descriptor, and 1,024 is a few hundred users. The limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d: %s", soft, exc)
    return soft


async def _stop_all(components: Sequence[Component]) -> None:
    for component in reversed(components):
        try:
            await component.stop()
        except Exception:
            log.exception("error while stopping %s", type(component).__name__)


async def serve(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    worker_command: Sequence[str] = (),
    sip_worker_command: Sequence[str] = (),
    builders_of: Callable[[Stores], Sequence[Builder]] = builders,
    control_socket: bool = True,
    load: Callable[[], Config] | None = None,
    node: str | None = None,
) -> None:
    """Run every enabled component until SIGINT/SIGTERM (or ``stop``), then close cleanly;
    SIGHUP (or ``heron reload``) applies what ``load`` reads (default: ``config`` again).

    ``worker_command`` starts one extra TURN worker (``heron serve --turn-worker``),
    ``sip_worker_command`` one extra SIP worker, given ``--sip-node`` and this node's
    identity; a worker itself runs with ``builders_of``
    :func:`heron.wiring.turn_worker_builders` (or ``sip_worker_builders``), its main
    process's ``node`` and no control socket.
    """
    follow_parent()
    stop = stop or asyncio.Event()
    manager = Notifier.from_environment()
    log.info("open files limit: %d", raise_open_files_limit())
    for finding in loose_permissions(config):
        log.warning("%s", finding)
    database = Database(config.database_url)
    await database.open()
    log.info("database %s ready", database.display_url)
    shared = None
    if config.redis.url is not None:
        try:
            shared = await Shared.open(config.redis)
        except StoreError:
            await database.close()
            raise
    stores = sql_stores(database, config)
    services = Services(
        config,
        AccountService(stores.accounts, account_policy(config)),
        Guards.from_settings(config.limits),
        WebPhoneCredentials(load_or_create_secret(config.sip_secret_path)),
        shared=shared,
        node=node or secrets.token_hex(4),
    )
    services.accounts.subscribe(_revoke_proofs(services))
    started: list[Component] = []
    control: ControlServer | None = None
    workers: list[Workers] = []
    loop = asyncio.get_running_loop()
    try:
        for build in builders_of(stores):
            component = build(services)
            if component is None:
                continue
            started.append(component)  # stopped even if it fails half-started
            listeners = await component.start()
            services.views.update(component.views())
            for listener in listeners:
                log.info("%s listening on %s", listener.service, listener.url)
        reloader = Reloader(
            load or (lambda: config), services, started, on_applied=lambda: _reload_all(workers)
        )
        reload = _reload_command(reloader, manager)
        if control_socket:
            control = ControlServer(
                config.data_dir / SOCKET_NAME,
                services.views,
                {
                    ACCOUNTS_CHANGED: _accounts_changed(services.accounts),
                    RELOAD_COMMAND: reload,
                    **services.commands,
                },
            )
            await control.start()
        if config.turn.enabled and config.turn.workers > 1 and worker_command:
            workers.append(
                Workers("turn", worker_command, config.turn.workers - 1, services.worker_sockets)
            )
        if config.sip.enabled and config.sip_workers > 1 and sip_worker_command:
            command = [*sip_worker_command, "--sip-node", services.node]
            workers.append(
                Workers("sip", command, config.sip_workers - 1, services.sip_worker_sockets)
            )
        for group in workers:
            await group.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _on_hangup, reload)
        settle()
        log.info("heron serving %s", config.domain)
        tell_ready()
        manager.ready()
        await stop.wait()
        log.info("stopping")
        manager.stopping()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for group in workers:
            await group.stop()
        _close(services.worker_sockets)
        _close(services.sip_worker_sockets)
        if control is not None:
            await control.stop()
        await _stop_all(started)
        services.guards.close()
        if services.shared is not None:
            await services.shared.close()
        await database.close()
    log.info("stopped")


def _reload_command(reloader: Reloader, manager: Notifier) -> Command:
    """``heron reload``: the keys that need a restart; a refusal is the error line."""

    def command(_argument: str) -> list[dict[str, Any]]:
        manager.reloading()
        try:
            restart = reloader.reload()
        except HeronError as exc:
            log.error("reload refused, still serving the previous configuration: %s", exc)
            raise
        finally:
            manager.ready()
        return [{"restart_needed": restart}]

    return command


def _reload_all(workers: Sequence[Workers]) -> None:
    for group in workers:
        group.reload()


def _on_hangup(reload: Command) -> None:
    """SIGHUP, as systemd's ``kill -HUP``: the same reload, its refusal only logged."""
    try:
        reload("")
    except HeronError:
        pass  # logged by the command


def _close(sockets: list[dict[str, socket.socket]]) -> None:
    """Worker sockets no worker took (no ``worker_command``)."""
    for own in sockets:
        for sock in own.values():
            sock.close()
    sockets.clear()
