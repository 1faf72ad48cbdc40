"""Coroutines started at once, up to their first wait; a task only for those that wait.

Most SIP requests never wait: the account is in the cache, the bindings are in
memory, the answer goes out at once. A task per request costs its creation and
a turn of the event loop before its first line runs, for nothing. What Python
3.12's ``asyncio.eager_task_factory`` does for every task, for the one place
heron starts a coroutine per message (heron supports 3.11).

The part after the first wait runs in a task as before: :func:`start` returns
it, for the owner to keep and cancel like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["start"]


def start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coroutine`` now until it finishes (None) or waits (the task that goes on).

    An exception it raises before its first wait is raised here.
    """
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    task = asyncio.get_running_loop().create_task(_resume(coroutine, waiting))
    # Cancelled before its first step, the task never reaches the coroutine: closing it
    # runs its ``finally`` blocks (a no-op once it has finished).
    task.add_done_callback(lambda _: coroutine.close())
    return task


async def _resume(coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive ``coroutine`` on from where :func:`start` left it, as a task's steps would.

    ``waiting`` is what it yielded: the future it awaits, or None for a bare
    yield (``asyncio.sleep(0)``). The coroutine reads the future's outcome itself
    when resumed; cancelling this task is thrown into it at its wait.
    """
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            elif not waiting.done():
                await asyncio.wait((waiting,))
        except asyncio.CancelledError as cancelled:
            try:
                waiting = coroutine.throw(cancelled)
            except StopIteration:
                return
            continue
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return
