"""Reloading the configuration and the certificates into a running heron (SIGHUP, ``heron reload``).

Nothing is restarted: calls, allocations, bindings and sessions live in the running
components, which take from the new configuration what they can apply to the next
request (:meth:`heron.component.Component.apply`) and say which keys those were.
Every other key that changed is reported as needing a restart, and keeps its running
value until then, so that ``heron reload`` never claims more than it did (coturn
reloads only certificates, Kamailio needs a restart for most changes).

The new file is validated first, with the same one-line error as at start-up, and the
certificate and key are tried on a context of their own; either refusal leaves the
running configuration as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from heron.component import Component, Services
from heron.config import Config
from heron.errors import HeronError
from heron.guards import LIVE_LIMITS

__all__ = ["RELOAD_COMMAND", "Reloader", "changed_keys"]

log = logging.getLogger(__name__)

RELOAD_COMMAND = "reload"
"""Control command ``heron reload`` sends; it answers the keys that need a restart."""

LIVE_KEYS = frozenset({"log_level", "admins", "tls.certificate", "tls.key"}) | LIVE_LIMITS
"""What the app applies itself; the components say what they applied."""


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted keys (``sip.routes``) whose values differ, sections compared key by key."""
    return sorted(_differences(old, new, ""))


def _differences(old: BaseModel, new: BaseModel, prefix: str) -> Iterator[str]:
    for name in type(old).model_fields:
        before: Any = getattr(old, name)
        after: Any = getattr(new, name)
        if isinstance(before, BaseModel) and isinstance(after, BaseModel) and prefix == "":
            yield from _differences(before, after, f"{name}.")
        elif before != after:
            yield prefix + name


class Reloader:
    """Loads the configuration again and hands it to the app's parts and components."""

    def __init__(
        self,
        load: Callable[[], Config],
        services: Services,
        components: Sequence[Component],
        *,
        on_applied: Callable[[], None] = lambda: None,
    ) -> None:
        """``load`` reads and validates the file as at start-up (raising
        :class:`heron.errors.ConfigError`); ``on_applied`` passes the reload on (to the
        TURN workers)."""
        self._load = load
        self._services = services
        self._components = components
        self._on_applied = on_applied
        self._started = services.config
        self._current = services.config

    def reload(self) -> list[str]:
        """Apply what can be applied live; the changed keys that need a restart.

        Raises :class:`HeronError` (one line) and changes nothing if the file or the
        certificate is refused."""
        new = self._load()
        self._services.certificate.check(new.certificate_path, new.key_path)
        applied = set(LIVE_KEYS)
        done: list[Component] = []
        try:
            for component in self._components:
                applied |= component.apply(new)
                done.append(component)
            self._services.certificate.reload(new.certificate_path, new.key_path)
        except HeronError:
            for component in done:  # what they took from ``new`` goes back
                component.apply(self._current)
            raise
        self._apply_own(new)
        self._current = new
        self._on_applied()
        restart = [key for key in changed_keys(self._started, new) if key not in applied]
        log.info(
            "configuration reloaded%s",
            f"; restart needed for: {', '.join(restart)}" if restart else "",
        )
        return restart

    def _apply_own(self, new: Config) -> None:
        logging.getLogger().setLevel(new.log_level.upper())
        self._services.guards.apply(new.limits)
        self._services.accounts.set_admins(frozenset(new.admins))
