"""What every benchmark's ``__main__`` shares: its common options, its plan, its output.

Each benchmark compares heron with the server it replaces and ends on one
table, ``figure | heron | <reference> | heron/<reference>``; the options
``--quick``, ``--servers`` and ``--keep`` mean the same everywhere, and a
frozen ``Plan`` dataclass holds the loads, any field of which a command-line
option of the same name overrides.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Row",
    "common_options",
    "emit",
    "plan_from",
    "plan_options",
    "ratio",
    "run_directory",
    "server_order",
    "table",
]

_P = TypeVar("_P", bound="DataclassInstance")

Row = tuple[str, float | None, float | None, str]
"""A figure: its label, heron's and the reference's value (None: no value), its format."""


def emit(text: str = "") -> None:
    """Results go to stdout as they come, so a long run shows progress."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def common_options(
    parser: argparse.ArgumentParser, *, quick: str, reference: str
) -> argparse.ArgumentParser:
    """``--quick`` (its help says what it does), ``--servers`` and ``--keep``."""
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--servers",
        default=f"{reference},heron",
        help=f"which to run, in order (default {reference},heron)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    return parser


def server_order(args: argparse.Namespace, reference: str) -> list[str]:
    """The ``--servers`` list; exits with a usage message for an unknown name."""
    order = [name.strip() for name in args.servers.split(",") if name.strip()]
    if not order or not set(order) <= {"heron", reference}:
        raise SystemExit(f"--servers takes heron and/or {reference}")
    return order


def plan_options(parser: argparse.ArgumentParser, plan: DataclassInstance) -> None:
    """``--field-name`` for every field of ``plan`` (its type that of the value), default None."""
    for spec in fields(plan):
        kind = type(getattr(plan, spec.name))
        option = "--" + spec.name.replace("_", "-")
        parser.add_argument(option, type=kind, help=f"override the plan's {spec.name}")


def plan_from(args: argparse.Namespace, quick: _P, default: _P) -> _P:
    """The quick or default plan, with every field given on the command line applied."""
    base = quick if args.quick else default
    changes = {
        f.name: getattr(args, f.name)
        for f in fields(base)
        if getattr(args, f.name, None) is not None
    }
    return replace(base, **changes)


@contextmanager
def run_directory(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh directory for the run's files, removed after unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            emit(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def ratio(heron: float | None, reference: float | None) -> str:
    if heron is None or reference is None or reference == 0:
        return "-"
    return f"{heron / reference:.2f}"


def table(
    reference: str,
    rows: Sequence[Row],
    legend: str = "",
    cells: Mapping[int, tuple[str, str]] | None = None,
) -> str:
    """Fixed-width text: one line per figure, the ratio last, then ``legend``.

    ``cells`` may map a row index to (heron cell, reference cell) text that
    replaces the formatted value, for "skipped", "failed" or a mark.
    """
    header = ("figure", "heron", reference, f"heron/{reference}")
    lines = [header]
    for index, (label, heron, other, style) in enumerate(rows):
        shown = (cells or {}).get(index)
        h_cell, r_cell = shown or (_cell(heron, style), _cell(other, style))
        lines.append((label, h_cell, r_cell, ratio(heron, other)))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    rule = "-+-".join("-" * width for width in widths)
    text = [line(lines[0]), rule, *(line(row) for row in lines[1:])]
    return "\n".join([*text, "", legend] if legend else text)


def _cell(value: float | None, style: str) -> str:
    return "skipped" if value is None else style.format(value)
