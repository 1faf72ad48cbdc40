"""The final table: figure | heron | coturn | heron/coturn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.turn.measure import BurstResult, RelayResult

__all__ = ["ServerFigures", "table"]


@dataclass(slots=True)
class ServerFigures:
    """One server's results; a missing load leaves None and says why in ``notes``."""

    relay: RelayResult | None = None
    burst: BurstResult | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    value: Callable[[ServerFigures], float | None]
    style: str


def _relay_rate(figures: ServerFigures) -> float | None:
    return figures.relay.packets_per_second if figures.relay else None


def _relay_cpu(figures: ServerFigures) -> float | None:
    return figures.relay.cpu_ms_per_1000 if figures.relay else None


def _burst_rate(figures: ServerFigures) -> float | None:
    return figures.burst.allocations_per_second if figures.burst else None


def _burst_cpu(figures: ServerFigures) -> float | None:
    return figures.burst.cpu_ms_per_100 if figures.burst else None


_ROWS = (
    _Row("relayed packets/s", _relay_rate, "{:,.0f}"),
    _Row("allocations/s", _burst_rate, "{:,.0f}"),
    _Row("server CPU ms per 1,000 relayed packets", _relay_cpu, "{:.3f}"),
    _Row("server CPU ms per 100 allocations", _burst_cpu, "{:.2f}"),
)

LEGEND = (
    "rates: more is better; CPU: utime+stime of the server's whole process tree, less is better.\n"
    "A relayed packet is one echo received by a client (the server forwarded it twice:\n"
    "to the peer and back). An allocation is made and released (Refresh LIFETIME 0)."
)


def _cell(value: float | None, style: str) -> str:
    return "skipped" if value is None else style.format(value)


def _ratio(heron: float | None, coturn: float | None) -> str:
    if heron is None or coturn is None or coturn == 0:
        return "-"
    return f"{heron / coturn:.2f}"


def table(heron: ServerFigures, coturn: ServerFigures) -> str:
    """The four figures side by side, as fixed-width text with a legend below."""
    header = ("figure", "heron", "coturn", "heron/coturn")
    rows = [header]
    for row in _ROWS:
        h, c = row.value(heron), row.value(coturn)
        rows.append((row.label, _cell(h, row.style), _cell(c, row.style), _ratio(h, c)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:]), "", LEGEND])
