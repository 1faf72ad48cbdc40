"""The final tables: figure | heron | kamailio | heron/kamailio.

The first gives each server's best: the fastest hold it passed, and its CPU
per unit of work. The second holds both servers at one rate, the one the
slower server sustained, so that the two are compared on the same load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench import report
from bench.sip.measure import LoadResult, Step

__all__ = ["ServerFigures", "matched_table", "table"]


@dataclass(slots=True)
class ServerFigures:
    """One server's results; a missing load leaves None and says why in ``notes``."""

    register: LoadResult | None = None
    calls: LoadResult | None = None
    matched: dict[str, Step] = field(default_factory=dict)
    """The hold at the common rate, by load ("register", "calls")."""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    load: Callable[[ServerFigures], LoadResult | None]
    value: Callable[[LoadResult], float | None]
    style: str
    marks_hold: bool


def _register(figures: ServerFigures) -> LoadResult | None:
    return figures.register


def _calls(figures: ServerFigures) -> LoadResult | None:
    return figures.calls


def _rate(result: LoadResult) -> float | None:
    return result.rate


_ROWS = (
    _Row("registrations/s, <1% failed", _register, _rate, "{:,.0f}", True),
    _Row("calls/s, <1% failed", _calls, _rate, "{:,.0f}", True),
    _Row(
        "server CPU ms per 1,000 registrations",
        _register,
        lambda result: result.cpu_ms_per(1000),
        "{:,.0f}",
        False,
    ),
    _Row(
        "server CPU ms per 100 calls",
        _calls,
        lambda result: result.cpu_ms_per(100),
        "{:,.0f}",
        False,
    ),
)

LEGEND = (
    "rates: more is better; calls completed per second with under 1% failed or unfinished in\n"
    "the fastest hold that passed ({hold}).\n"
    "* : no hold passed; the figure is the ramp's peak (one short step), which the server\n"
    "did not sustain: see its lines above.\n"
    "CPU: utime+stime of the server's whole process tree over those steps, less is better.\n"
    "A registration is REGISTER, 401, REGISTER with digest, 200. A call is INVITE, 407, ACK,\n"
    "INVITE with digest, 200, ACK, BYE, 200 between two sipp instances through the server."
)


def _figure(row: _Row, figures: ServerFigures) -> tuple[float | None, str]:
    """The value and its cell: "skipped" without the load, "failed" without a passing step."""
    result = row.load(figures)
    if result is None:
        return None, "skipped"
    value = row.value(result)
    if value is None:
        return None, "failed"
    mark = "*" if row.marks_hold and result.sustained is False else ""
    return value, row.style.format(value) + mark


def table(heron: ServerFigures, kamailio: ServerFigures, hold_seconds: float) -> str:
    """The four figures side by side, as fixed-width text with a legend below."""
    rows: list[report.Row] = []
    cells: dict[int, tuple[str, str]] = {}
    for index, row in enumerate(_ROWS):
        (h, h_cell), (k, k_cell) = _figure(row, heron), _figure(row, kamailio)
        rows.append((row.label, h, k, row.style))
        cells[index] = (h_cell, k_cell)
    hold = (
        f"{hold_seconds:g} s on a restarted server"
        if hold_seconds > 0
        else "none in this run: the ramp's peak"
    )
    return report.table("kamailio", rows, LEGEND.format(hold=hold), cells)


_MATCHED = (
    ("register", "registrations", 1000),
    ("calls", "calls", 100),
)

MATCHED_LEGEND = (
    "Both servers restarted and held at the same offered rate, the lower of their sustained\n"
    "rates (less a margin): completed per second, the share failed or unfinished, and the CPU\n"
    "per unit of work at that same load."
)


def matched_table(heron: ServerFigures, kamailio: ServerFigures) -> str | None:
    """The holds at a common rate side by side; None when no load had one for both."""
    rows: list[report.Row] = []
    for kind, name, units in _MATCHED:
        h, k = heron.matched.get(kind), kamailio.matched.get(kind)
        if h is None or k is None:
            continue
        rows.append((f"{name}/s held at {h.target:,}/s offered", h.achieved, k.achieved, "{:,.0f}"))
        rows.append((f"  {name} failed or unfinished", h.failure, k.failure, "{:.2%}"))
        rows.append(
            (
                f"  server CPU ms per {units:,} {name}",
                h.server_cpu * 1000 * units / max(h.counts.ok, 1),
                k.server_cpu * 1000 * units / max(k.counts.ok, 1),
                "{:,.0f}",
            )
        )
    if not rows:
        return None
    return report.table("kamailio", rows, MATCHED_LEGEND)
