"""The final table: figure | direct | mux | sslh | mux/direct | sslh/direct, and the verdict."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.mux import ROUTES, Route
from bench.mux.measure import RouteLoad
from bench.report import ratio

__all__ = ["Results", "table", "verdict"]


@dataclass(slots=True)
class Results:
    """Every load's totals per route; a route missing from a load was skipped."""

    connect: dict[Route, RouteLoad] = field(default_factory=dict)
    alone: dict[Route, RouteLoad] = field(default_factory=dict)
    requests: dict[Route, RouteLoad] = field(default_factory=dict)


Figure = Callable[[Results, Route], float | None]


def _from(load: str, value: Callable[[RouteLoad], float | None]) -> Figure:
    def figure(results: Results, route: Route) -> float | None:
        totals: Mapping[Route, RouteLoad] = getattr(results, load)
        return value(totals[route]) if route in totals else None

    return figure


def _ms(fraction: float) -> Callable[[RouteLoad], float | None]:
    def latency(load: RouteLoad) -> float | None:
        value = load.latency(fraction)
        return None if value is None else value * 1e3

    return latency


def _cpu(units: int, scale: float) -> Callable[[RouteLoad], float | None]:
    def cpu(load: RouteLoad) -> float | None:
        value = load.cpu_per(units)
        return None if value is None else value * scale

    return cpu


_ROWS: tuple[tuple[str, Figure, str], ...] = (
    ("TLS connections/s", _from("connect", lambda load: load.rate), "{:,.0f}"),
    ("server CPU ms per 100 connections", _from("connect", _cpu(100, 1e3)), "{:.1f}"),
    ("connection latency p50 under load, ms", _from("connect", _ms(0.5)), "{:.2f}"),
    ("connection latency p99 under load, ms", _from("connect", _ms(0.99)), "{:.2f}"),
    ("connection latency p50 alone, ms", _from("alone", _ms(0.5)), "{:.2f}"),
    ("connection latency p99 alone, ms", _from("alone", _ms(0.99)), "{:.2f}"),
    ("requests/s on kept-alive connections", _from("requests", lambda load: load.rate), "{:,.0f}"),
    ("server CPU us per request", _from("requests", _cpu(1, 1e6)), "{:.1f}"),
    ("request latency p50, ms", _from("requests", _ms(0.5)), "{:.3f}"),
    ("request latency p99, ms", _from("requests", _ms(0.99)), "{:.3f}"),
)

LEGEND = """\
A connection: TCP connect, full TLS handshake (ALPN http/1.1), GET /healthz with
Connection: close, the whole answer. Server CPU: utime+stime of heron's process tree, plus
sslh's on the sslh route, over the load; less is better. Under load: every connect loop at
once; alone: one connection at a time. A request: GET /healthz on a kept-alive connection
opened before the measured window (after the mux's hand-off). A ! marks a route that had
errors (the run's lines above say which)."""


def _errors(results: Results, route: Route) -> bool:
    loads: list[dict[Route, RouteLoad]] = [results.connect, results.alone, results.requests]
    return any(route in load and load[route].errors for load in loads)


def table(results: Results, skipped: Mapping[Route, str]) -> str:
    """Fixed-width text with the legend below; a skipped route's column says so."""
    names = [f"{route}{' !' if _errors(results, route) else ''}" for route in ROUTES]
    lines = [("figure", *names, "mux/direct", "sslh/direct")]
    for label, figure, style in _ROWS:
        values = {route: figure(results, route) for route in ROUTES}
        cells = [
            "skipped" if route in skipped else "-" if value is None else style.format(value)
            for route, value in values.items()
        ]
        ratios = [ratio(values[other], values["direct"]) for other in ("mux", "sslh")]
        lines.append((label, *cells, *ratios))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def line(row: tuple[str, ...]) -> str:
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return " | ".join([row[0].ljust(widths[0]), *rest])

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(lines[0]), rule, *(line(row) for row in lines[1:]), "", LEGEND])


def _spread(load: RouteLoad, scale: float) -> str:
    """The median of the per-round figures and their range: a round that the rest of
    the machine starved moves the range, much less the median."""
    if not load.per_round:
        return "-"
    ordered = sorted(value * scale for value in load.per_round)
    median = ordered[len(ordered) // 2]
    if len(ordered) == 1:
        return f"{median:.1f}"
    return f"{median:.1f} ({ordered[0]:.1f}-{ordered[-1]:.1f})"


def verdict(results: Results) -> list[str]:
    """The issue's goal, in two lines: what the mux adds per connection and per request."""
    lines = []
    checks = (
        ("connect", 100, 1e3, "ms per 100 connections", "under 10%"),
        ("requests", 1, 1e6, "us per request", "nothing measurable"),
    )
    for load, units, scale, unit, goal in checks:
        totals: dict[Route, RouteLoad] = getattr(results, load)
        if "direct" not in totals or "mux" not in totals:
            lines.append(f"mux vs direct ({unit}): not measured (goal: {goal})")
            continue
        direct, mux = totals["direct"].cpu_per(units), totals["mux"].cpu_per(units)
        if direct is None or mux is None or direct == 0:
            lines.append(f"mux vs direct ({unit}): no completed work (goal: {goal})")
            continue
        rounds = {route: _spread(totals[route], units * scale) for route in ("direct", "mux")}
        lines.append(
            f"mux adds {(mux / direct - 1) * 100:+.1f}% server CPU {unit.split(' ', 1)[1]} "
            f"(goal: {goal}); median (range) of the rounds, {unit}: direct {rounds['direct']}, "
            f"mux {rounds['mux']}"
        )
    return lines
