"""Benchmark: heron's port-443 mux against direct connections and sslh (``python -m bench.mux``).

One heron serves its web component on ``web.listen`` (direct) and on ``mux.listen``
(classified by the mux, then handed to the web component in the same process); sslh
listens on a third port and forwards TLS to ``web.listen``. The same TLS clients
(ALPN ``http/1.1``, ``GET /healthz``) take each route in turn, round after round,
so that what else the shared machine does falls on all three alike. Figures are
connections and requests per second, the CPU time of heron (and of sslh on its route)
per unit of work from ``/proc``, and latency percentiles.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ROUTES", "Route"]

Route = Literal["direct", "mux", "sslh"]
ROUTES: tuple[Route, ...] = ("direct", "mux", "sslh")
"""Every way to heron's web component, in table order; ``direct`` is the baseline."""
