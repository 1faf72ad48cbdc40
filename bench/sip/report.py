"""The final table: figure | heron | kamailio | heron/kamailio."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.sip.measure import LoadResult

__all__ = ["ServerFigures", "table"]


@dataclass(slots=True)
class ServerFigures:
    """One server's results; a missing load leaves None and says why in ``notes``."""

    register: LoadResult | None = None
    calls: LoadResult | None = None
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


def _ratio(heron: float | None, kamailio: float | None) -> str:
    if heron is None or kamailio is None or kamailio == 0:
        return "-"
    return f"{heron / kamailio:.2f}"


def table(heron: ServerFigures, kamailio: ServerFigures, hold_seconds: float) -> str:
    """The four figures side by side, as fixed-width text with a legend below."""
    header = ("figure", "heron", "kamailio", "heron/kamailio")
    rows = [header]
    for row in _ROWS:
        (h, h_cell), (k, k_cell) = _figure(row, heron), _figure(row, kamailio)
        rows.append((row.label, h_cell, k_cell, _ratio(h, k)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    rule = "-+-".join("-" * width for width in widths)
    hold = (
        f"{hold_seconds:g} s on a restarted server"
        if hold_seconds > 0
        else "none in this run: the ramp's peak"
    )
    legend = LEGEND.format(hold=hold)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:]), "", legend])
