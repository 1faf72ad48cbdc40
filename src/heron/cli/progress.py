"""Progress bars on stderr for long commands (rich, drawn only on a terminal)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from heron.accounts.bulk import Derivation, derive_many
from heron.accounts.secrets import Secrets

__all__ = ["derive_with_progress", "progress_bar"]


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Progress]:
    """A bar of ``total`` steps: advance it with ``bar.advance(bar.task_ids[0])``."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        bar.add_task(label, total=total)
        yield bar


def derive_with_progress(jobs: Sequence[Derivation], label: str) -> list[Secrets | str]:
    """:func:`heron.accounts.bulk.derive_many` on every core, with a bar."""
    with progress_bar(label, len(jobs)) as bar:
        task = bar.task_ids[0]
        return list(derive_many(jobs, progress=lambda done: bar.update(task, completed=done)))
