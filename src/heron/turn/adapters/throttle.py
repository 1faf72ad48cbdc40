"""The guess throttle as the TURN core sees it, in the main process and in a worker.

Guesses over every protocol are counted in the main process (:mod:`heron.guesses`);
a TURN worker process reaches that throttle, and hears of account changes, over the
control socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heron.control import query
from heron.errors import HeronError
from heron.guesses import GuessThrottle

__all__ = [
    "ASK_SECONDS",
    "CHANGES_COMMAND",
    "CHANGES_KEPT",
    "GUESS_TIMEOUT",
    "GUESS_COMMAND",
    "Report",
    "UnixTimeGuesses",
    "WorkerGuesses",
]

log = logging.getLogger(__name__)

_ANSWERS_KEPT = 10_000
"""Guess throttle answers a worker remembers (beyond, it forgets them all)."""
CHANGES_COMMAND = "turn.changes"
"""Control command by which TURN workers hear of password changes and removals:
``turn.changes N`` answers the changes after number N, as rows {"seq", "account"}."""
CHANGES_KEPT = 10_000
"""Account changes the main process keeps for workers that have not asked yet."""
GUESS_COMMAND = "turn.guess"
"""Control command by which TURN workers use the main process's guess throttle:
``turn.guess ["wait"|"failure"|"success", account or null, source address]``."""
GUESS_TIMEOUT = 5.0
ASK_SECONDS = 1.0
"""How long a worker trusts the main process's word that an (account, source) need not
wait (a failure's answer updates it at once)."""
_MAX_GUESS_REQUEST = 200
"""The control socket reads 256 bytes of a request; longer names count by source only."""


class UnixTimeGuesses:
    """The shared :class:`GuessThrottle` as the core's ``Guesses``: on Unix time, the clock
    every service counts guesses in."""

    __slots__ = ("_clock", "_throttle")

    def __init__(self, throttle: GuessThrottle, clock: Callable[[], float] = time.time) -> None:
        self._throttle = throttle
        self._clock = clock

    def wait(self, account: str | None, source: str) -> float:
        return self._throttle.wait(account, source, self._clock())

    def failure(self, account: str | None, source: str) -> None:
        self._throttle.failure(account, source, self._clock())

    def success(self, account: str, source: str) -> None:
        self._throttle.success(account, source, self._clock())


Report = tuple[str, str | None, str]
"""("failure" or "success", account, source) to tell the main process."""


class WorkerGuesses:
    """The core's ``Guesses`` in a TURN worker process: the main process's throttle.

    Guesses over every protocol are counted in the main process. A worker asks it
    how long an (account, source) must wait before checking a signed request, and
    trusts the answer for :data:`ASK_SECONDS`; a failure is told to the main
    process, whose answer (the new wait) comes back, before the client hears
    the 401, so guesses spread over workers count as in one process. Successes
    are told without waiting, once per pair and period.
    """

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self._data_dir = data_dir
        self._clock = clock
        self._known: dict[tuple[str | None, str], tuple[float, float]] = {}
        """(account, source) -> (wait until, asked at), as the main process last said."""
        self._told: dict[tuple[str, str], float] = {}
        """(account, source) -> when its last success was told."""
        self._reports: list[Report] = []
        self._failed = 0
        self._asking: dict[tuple[str | None, str], asyncio.Future[list[dict[str, Any]]]] = {}
        """The question under way for each pair, which later askers wait for too."""

    def fresh(self, account: str | None, source: str) -> bool:
        """Whether the main process was asked about this pair a moment ago."""
        known = self._known.get((account, source))
        return known is not None and self._clock() - known[1] < ASK_SECONDS

    def wait(self, account: str | None, source: str) -> float:
        known = self._known.get((account, source))
        return 0.0 if known is None else max(0.0, known[0] - self._clock())

    def failure(self, account: str | None, source: str) -> None:
        self._reports.append(("failure", account, source))

    def success(self, account: str, source: str) -> None:
        now = self._clock()
        if now - self._told.get((account, source), -ASK_SECONDS) >= ASK_SECONDS:
            self._remember(self._told, (account, source), now)
            self._reports.append(("success", account, source))

    def take(self) -> list[Report]:
        """The outcomes the core gave since the last call, to tell the main process."""
        reports, self._reports = self._reports, []
        return reports

    async def ask(self, account: str | None, source: str) -> None:
        """Learn the pair's wait from the main process, unless it said a moment ago.

        Asks about one pair share one question: when a pair's answer grows old, a
        client's burst of requests all arrive before the new one, and each asked on
        its own (a control connection each, in both processes).
        """
        if self.fresh(account, source):
            return
        pair = (account, source)
        asking = self._asking.get(pair)
        if asking is None:
            asking = asyncio.ensure_future(self._call("wait", account, source))
            self._asking[pair] = asking
            asking.add_done_callback(lambda done: self._answered(pair, done))
        await asyncio.shield(asking)

    def _answered(self, pair: tuple[str | None, str], done: asyncio.Future[Any]) -> None:
        """Runs before the askers resume (the first callback), so they find the answer."""
        del self._asking[pair]
        if not done.cancelled() and done.exception() is None:
            self._learn(pair[0], pair[1], done.result())

    async def tell(self, reports: list[Report]) -> None:
        for operation, account, source in reports:
            rows = await self._call(operation, account, source)
            if operation == "failure":
                self._learn(account, source, rows)

    def _learn(self, account: str | None, source: str, rows: list[dict[str, Any]]) -> None:
        wait = float(rows[0].get("wait", 0.0)) if rows else 0.0
        now = self._clock()
        self._remember(self._known, (account, source), (now + wait, now))

    def _remember(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if len(table) >= _ANSWERS_KEPT:
            table.clear()
        table[key] = value

    async def _call(self, operation: str, account: str | None, source: str) -> list[dict[str, Any]]:
        text = json.dumps([operation, account, source])
        if len(text) > _MAX_GUESS_REQUEST:
            text = json.dumps([operation, None, source])
        try:
            return await asyncio.wait_for(
                query(self._data_dir, f"{GUESS_COMMAND} {text}"), GUESS_TIMEOUT
            )
        except (HeronError, OSError, ValueError, TimeoutError) as exc:
            self._failed += 1
            if self._failed == 1 or self._failed % 1000 == 0:
                log.warning("turn worker: cannot reach the main process's guess throttle: %s", exc)
            return []
