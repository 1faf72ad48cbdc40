"""The final table: figure | heron | coturn | heron/coturn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench import report
from bench.turn.measure import BurstResult, RelayResult

__all__ = ["ServerFigures", "table"]


@dataclass(slots=True)
class ServerFigures:
    """One server's results; a missing load leaves None and says why in ``notes``."""

    relay: RelayResult | None = None
    burst: BurstResult | None = None
    notes: list[str] = field(default_factory=list)


def _relay_rate(figures: ServerFigures) -> float | None:
    return figures.relay.packets_per_second if figures.relay else None


def _relay_cpu(figures: ServerFigures) -> float | None:
    return figures.relay.cpu_ms_per_1000 if figures.relay else None


def _burst_rate(figures: ServerFigures) -> float | None:
    return figures.burst.allocations_per_second if figures.burst else None


def _burst_cpu(figures: ServerFigures) -> float | None:
    return figures.burst.cpu_ms_per_100 if figures.burst else None


_ROWS: tuple[tuple[str, Callable[[ServerFigures], float | None], str], ...] = (
    ("relayed packets/s", _relay_rate, "{:,.0f}"),
    ("allocations/s", _burst_rate, "{:,.0f}"),
    ("server CPU ms per 1,000 relayed packets", _relay_cpu, "{:.3f}"),
    ("server CPU ms per 100 allocations", _burst_cpu, "{:.2f}"),
)

LEGEND = (
    "rates: more is better; CPU: utime+stime of the server's whole process tree, less is better.\n"
    "A relayed packet is one echo received by a client (the server forwarded it twice:\n"
    "to the peer and back). An allocation is made and released (Refresh LIFETIME 0)."
)


def table(heron: ServerFigures, coturn: ServerFigures) -> str:
    """The four figures side by side, as fixed-width text with a legend below."""
    rows = [(label, value(heron), value(coturn), style) for label, value, style in _ROWS]
    return report.table("coturn", rows, LEGEND)
