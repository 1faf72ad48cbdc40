"""The media bridge as a heron component: built from ``[media]``, swept once a second,
listed by ``heron media calls`` and counted in ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from heron.component import Listener, Services
from heron.config import Config
from heron.control import View
from heron.destinations import Destinations, own_addresses
from heron.media.bridge import Bridge
from heron.media.call import Address, Drop, Policy
from heron.media.dtls import Certificate
from heron.sip.media import Side

__all__ = ["COUNTERS", "MediaComponent", "build_media", "media_policy"]


COUNTERS = "media.counters"
CALLS = "media.calls"
DROPPED = "packets_dropped_"
"""Prefix of the drop counters: ``heron_media_packets_dropped_total{reason=...}``."""
_SWEEP = 1.0
"""Seconds between timer runs: DTLS retransmissions, ICE consent and silent calls."""


def media_policy(destinations: Destinations, turn_relays: range | None) -> Policy:
    """Media may go to and come from addresses that are not internal, or that
    ``media.allowed_destinations`` allows; and heron's own addresses on TURN relay ports:
    a web phone behind a firewall reaches the bridge through heron's own TURN relay,
    which checked its permissions already."""

    def allowed(address: Address) -> bool:
        host, port = address
        if not destinations.internal(host):
            return True
        return turn_relays is not None and port in turn_relays and destinations.is_own(host)

    return allowed


def build_media(services: Services) -> MediaComponent | None:
    return MediaComponent(services) if services.config.media.enabled else None


class MediaComponent:
    """Owns the :class:`Bridge` the SIP proxy steers (``bridge``)."""

    def __init__(self, services: Services) -> None:
        config = services.config
        settings = config.media
        self._destinations = Destinations(allowed=settings.allowed_destinations)
        turn = config.turn
        relays = range(turn.relay_port_min, turn.relay_port_max + 1) if turn.enabled else None
        self.bridge = Bridge(
            settings,
            config.media_advertise,
            media_policy(self._destinations, relays),
            Certificate.generate(datetime.datetime.now(datetime.UTC), secrets.randbits(63)),
        )
        self._host_name = config.host_name
        self._advertise = str(config.media_advertise)
        self._where = (
            f"udp://{settings.address} ports {settings.port_min}-{settings.port_max} "
            f"(per call; SDP names {self._advertise})"
        )
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> Sequence[Listener]:
        own = await own_addresses(self._host_name, also=[self._advertise])
        self._destinations.add_own(own)
        self._sweeper = asyncio.create_task(self._sweep())
        # Ports are bound per call, not here: this line tells where they will be.
        return (Listener("media", self._where),)

    def apply(self, config: Config) -> frozenset[str]:
        """Nothing: ``[media]`` binds ports and picks addresses at start; calls stay."""
        return frozenset()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.bridge.close()

    def views(self) -> Mapping[str, View]:
        return {COUNTERS: self._counter_rows, CALLS: self.bridge.rows}

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP)
            self.bridge.sweep()

    def _counter_rows(self) -> list[dict[str, Any]]:
        bridge, stats = self.bridge, self.bridge.stats
        row: dict[str, Any] = {
            "calls": bridge.calls,
            "ports": bridge.ports,
            "calls_total": bridge.calls_total,
            "calls_refused": bridge.refused,
            "timeouts": bridge.timeouts,
        }
        for side in Side:
            row[f"packets_from_{side.value}"] = stats.packets[side]
            row[f"bytes_from_{side.value}"] = stats.bytes[side]
        for reason in Drop:
            row[f"{DROPPED}{reason.value}"] = stats.drops[reason]
        return [row]
