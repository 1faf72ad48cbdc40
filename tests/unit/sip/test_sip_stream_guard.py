"""A SIP connection over the per-source limit is closed at once and never becomes a flow."""

from __future__ import annotations

import asyncio
from typing import Any

from heron.connections import ConnectionLimiter
from heron.sip.parser import MessageLimits
from heron.sip.transports.guard import StreamGuard
from heron.sip.transports.stream import SipStream


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.aborted = False
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 5060)}.get(name, default)

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))


def stream(
    guard: StreamGuard, opened: list[str], closed: list[str], *, accepted: bool = True
) -> SipStream:
    return SipStream(
        "tcp",
        f"tcp-{len(opened) + len(closed)}",
        lambda event, source: None,
        MessageLimits(),
        on_open=lambda s: opened.append(s.token),
        on_close=lambda s: closed.append(s.token),
        guard=guard,
        accepted=accepted,
    )


def test_over_the_limit_a_connection_is_aborted_and_no_flow() -> None:
    async def run() -> None:
        limiter = ConnectionLimiter(1)
        guard = StreamGuard(limiter, 30.0, 900.0, carries=lambda token: False)
        opened: list[str] = []
        closed: list[str] = []
        first, second = stream(guard, opened, closed), stream(guard, opened, closed)
        first_transport, second_transport = (
            FakeTransport(("192.0.2.1", 1)),
            FakeTransport(("192.0.2.1", 2)),
        )
        first.connection_made(first_transport)
        second.connection_made(second_transport)
        assert not first_transport.aborted and second_transport.aborted
        assert opened == [first.token]
        second.connection_lost(None)
        assert closed == [] and limiter.count("192.0.2.1") == 1
        first.connection_lost(None)
        assert closed == [first.token] and limiter.count("192.0.2.1") == 0

    asyncio.run(run())


def test_a_connection_heron_opens_is_not_counted() -> None:
    async def run() -> None:
        limiter = ConnectionLimiter(1)
        guard = StreamGuard(limiter, 30.0, 900.0, carries=lambda token: False)
        outbound = stream(guard, [], [], accepted=False)
        outbound.connection_made(FakeTransport(("192.0.2.1", 5060)))
        assert limiter.count("192.0.2.1") == 0
        outbound.connection_lost(None)

    asyncio.run(run())
