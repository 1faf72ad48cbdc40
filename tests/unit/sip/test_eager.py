"""heron.sip.eager: a coroutine runs at once; a task carries it on only once it waits."""

from __future__ import annotations

import asyncio

import pytest

from heron.sip import eager


async def test_a_coroutine_that_never_waits_runs_to_its_end_with_no_task() -> None:
    seen: list[str] = []

    async def handle() -> None:
        seen.append("handled")

    assert eager.start(handle()) is None
    assert seen == ["handled"]


async def test_the_part_before_the_first_wait_runs_before_start_returns() -> None:
    loop = asyncio.get_running_loop()
    account: asyncio.Future[str] = loop.create_future()
    seen: list[str] = []

    async def handle() -> None:
        seen.append("before")
        seen.append(await account)

    task = eager.start(handle())
    assert task is not None
    assert seen == ["before"]
    account.set_result("alice")
    await task
    assert seen == ["before", "alice"]


async def test_an_exception_before_the_first_wait_is_raised_at_once() -> None:
    async def handle() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        eager.start(handle())


async def test_the_awaited_futures_exception_reaches_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    lookup: asyncio.Future[str] = loop.create_future()
    seen: list[str] = []

    async def handle() -> None:
        try:
            await lookup
        except LookupError as exc:
            seen.append(str(exc))

    task = eager.start(handle())
    assert task is not None
    lookup.set_exception(LookupError("down"))
    await task
    assert seen == ["down"]


async def test_several_waits_and_a_bare_yield_are_each_resumed() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    seen: list[int] = []

    async def handle() -> None:
        seen.append(await first)
        await asyncio.sleep(0)
        seen.append(await asyncio.ensure_future(asyncio.sleep(0, result=2)))

    task = eager.start(handle())
    assert task is not None
    first.set_result(1)
    await task
    assert seen == [1, 2]


async def test_cancelling_the_task_cancels_the_coroutine_at_its_wait() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def handle() -> None:
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = eager.start(handle())
    assert task is not None
    await asyncio.sleep(0)  # one turn of the loop: the task takes its first step
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_a_task_cancelled_before_its_first_step_closes_the_coroutine() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def handle() -> None:
        try:
            await never
        finally:
            seen.append("closed")

    task = eager.start(handle())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["closed"]
