"""A TURN worker process uses the main process's guess throttle over the control socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from heron.control import SOCKET_NAME, ControlServer
from heron.guesses import GuessThrottle
from heron.turn.adapters.throttle import GUESS_COMMAND, UnixTimeGuesses, WorkerGuesses


async def test_a_worker_asks_the_main_process_and_tells_it_failures(tmp_path: Path) -> None:
    throttle = GuessThrottle(account_free=1, source_free=50)
    now = [1_700_000_000.0]
    main = UnixTimeGuesses(throttle, clock=lambda: now[0])

    def command(argument: str) -> list[dict[str, object]]:
        """What the main process's TURN component answers (``_guess_command``)."""
        operation, account, source = json.loads(argument)
        if operation == "wait":
            return [{"wait": main.wait(account, source)}]
        if operation == "failure":
            main.failure(account, source)
            return [{"wait": main.wait(account, source)}]
        main.success(account, source)
        return []

    server = ControlServer(tmp_path / SOCKET_NAME, {}, {GUESS_COMMAND: command})
    await server.start()
    try:
        worker = WorkerGuesses(tmp_path, clock=lambda: now[0])
        await worker.ask("roland@localhost", "192.0.2.1")
        assert worker.wait("roland@localhost", "192.0.2.1") == 0
        assert worker.fresh("roland@localhost", "192.0.2.1")

        worker.failure("roland@localhost", "192.0.2.1")
        worker.failure("roland@localhost", "192.0.2.1")
        await worker.tell(worker.take())

        assert throttle.wait("roland@localhost", "198.51.100.9", now[0]) > 0  # main counted
        assert worker.wait("roland@localhost", "192.0.2.1") > 0  # and the worker knows
        other = WorkerGuesses(tmp_path, clock=lambda: now[0])
        await other.ask("roland@localhost", "192.0.2.2")
        assert other.wait("roland@localhost", "192.0.2.2") > 0  # another worker asks
    finally:
        await server.stop()


async def test_a_worker_without_a_main_process_checks_passwords(tmp_path: Path) -> None:
    worker = WorkerGuesses(tmp_path)
    await asyncio.wait_for(worker.ask("roland@localhost", "192.0.2.1"), 10)
    assert worker.wait("roland@localhost", "192.0.2.1") == 0


async def test_concurrent_asks_about_one_pair_make_one_question(tmp_path: Path) -> None:
    """A client's burst of requests, all arriving once the pair's answer is stale, waits
    for one answer instead of opening a control connection each."""
    asked: list[str] = []
    now = [1_700_000_000.0]

    def command(argument: str) -> list[dict[str, object]]:
        asked.append(argument)
        return [{"wait": 0.0}]

    server = ControlServer(tmp_path / SOCKET_NAME, {}, {GUESS_COMMAND: command})
    await server.start()
    try:
        worker = WorkerGuesses(tmp_path, clock=lambda: now[0])
        await asyncio.gather(*(worker.ask("roland@localhost", "192.0.2.1") for _ in range(20)))
        assert len(asked) == 1
        assert worker.fresh("roland@localhost", "192.0.2.1")

        await asyncio.gather(worker.ask("roland@localhost", "192.0.2.2"), worker.ask(None, "x"))
        assert len(asked) == 3  # other pairs ask for themselves

        now[0] += 2  # the answers grow old: the next burst asks again, once
        await asyncio.gather(*(worker.ask("roland@localhost", "192.0.2.1") for _ in range(5)))
        assert len(asked) == 4
    finally:
        await server.stop()
