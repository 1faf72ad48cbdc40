"""``/metrics`` in the Prometheus text format, read from the live views at scrape time.

Nothing is counted twice: each service keeps its own counters (the
``*.counters`` views) and a collector turns them into metric families when
Prometheus asks. Fields that go up and down are gauges (listed in
:data:`GAUGES`); the rest only grow and are counters. ``heron_view_rows``
gives the size of each live list: SIP registrations, TURN allocations, XMPP
sessions and rooms.

Who may scrape is ``web.metrics``: "localhost" (loopback clients: a
Prometheus on the same host, or an SSH tunnel; through a reverse proxy, only
where ``web.trusted_proxies`` names it and it says the client is local, see
:mod:`heron.web.proxy`), "admin" (an admin login session) or "off" (no route
at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import ip_address

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from heron import __version__
from heron.component import Services
from heron.web.api import COUNTER_VIEWS, LIVE_VIEWS
from heron.web.auth import WebSessions
from heron.web.proxy import client_of

__all__ = ["GAUGES", "LABELLED", "HeronCollector", "mount_metrics"]

GAUGES = {
    "sip": frozenset({"bindings", "transactions", "connections"}),
    "turn": frozenset({"allocations_active"}),
    "xmpp": frozenset({"sessions", "rooms", "occupants"}),
    "mux": frozenset({"pending"}),
    "media": frozenset({"calls", "ports"}),
}
"""Per service, the counter-view fields that are current values rather than totals."""

LABELLED = {
    "turn": {"packets_dropped_": ("packets_dropped", "reason")},
    "media": {
        "packets_dropped_": ("packets_dropped", "reason"),
        "packets_from_": ("packets", "side"),
        "bytes_from_": ("bytes", "side"),
    },
}
"""Per service, counter-view fields that make one labelled counter family: a field
``PREFIX + VALUE`` is the family's sample with label ``LABEL=VALUE``, so
``packets_dropped_no_allocation`` is
``heron_turn_packets_dropped_total{reason="no_allocation"}``."""

_NAME = re.compile(r"[^a-zA-Z0-9_]")
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HeronCollector(Collector):
    """Every service's counters and the live view sizes, as of the scrape."""

    def __init__(self, services: Services, sessions: WebSessions) -> None:
        self._services = services
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("heron_info", "heron version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        views = self._services.views
        for service, name in COUNTER_VIEWS.items():
            view = views.get(name)
            rows = view() if view is not None else []
            families: dict[str, CounterMetricFamily] = {}
            for field, value in (rows[0] if rows else {}).items():
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                labelled = next((p for p in LABELLED.get(service, {}) if field.startswith(p)), None)
                if labelled is not None:
                    name, label = LABELLED[service][labelled]
                    if name not in families:
                        families[name] = CounterMetricFamily(
                            f"heron_{service}_{name}",
                            f"{service} {name.replace('_', ' ')} by {label}",
                            labels=[label],
                        )
                    families[name].add_metric([field.removeprefix(labelled)], value)
                    continue
                metric = f"heron_{service}_{_NAME.sub('_', field)}"
                help_text = f"{service} {field.replace('_', ' ')}"
                if field in GAUGES.get(service, ()):
                    yield GaugeMetricFamily(metric, help_text, value=value)
                else:
                    yield CounterMetricFamily(metric, help_text, value=value)
            yield from families.values()
        sizes = GaugeMetricFamily(
            "heron_view_rows",
            "Live entries: SIP registrations, TURN allocations, XMPP sessions, rooms, s2s streams, "
            "media calls",
            labels=["view"],
        )
        for name in LIVE_VIEWS.values():
            if (view := views.get(name)) is not None:
                sizes.add_metric([name], len(view()))
        yield sizes
        yield GaugeMetricFamily(
            "heron_web_sessions", "Web login sessions held", value=len(self._sessions)
        )


def mount_metrics(app: web.Application, services: Services, sessions: WebSessions) -> None:
    access = services.config.web.metrics
    if access == "off":
        return
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HeronCollector(services, sessions))
    registry.register(ProcessCollector(registry=None))

    async def metrics(request: web.Request) -> web.Response:
        # The client, not a proxy's peer address: behind an untrusted proxy, no one.
        if access == "localhost" and not _loopback(client_of(request).address):
            raise web.HTTPForbidden(text="metrics are served to localhost only\n")
        if access == "admin":
            user = await sessions.current(request)
            if user is None or not user.admin:
                raise web.HTTPForbidden(text="metrics are served to administrators only\n")
        return web.Response(
            body=generate_latest(registry),
            headers={"Content-Type": _CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    app.router.add_get("/metrics", metrics)


def _loopback(remote: str | None) -> bool:
    try:
        address = ip_address(remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
