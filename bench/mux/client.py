"""The load client: TLS connections (ALPN ``http/1.1``) that ask heron for ``GET /healthz``.

Run as a worker process (``python -m bench.mux.client SETTINGS``) it has
``loops`` coroutines on uvloop, each a closed loop, for every phase in its
settings (a route's address and a duration), one after the other:

- ``connect``: open a TLS connection, send one request with ``Connection: close``,
  read the whole answer, close; again. A connection's latency runs from the
  TCP connect to the answer's last byte: handshake and request together.
- ``requests``: one kept-alive TLS connection per loop, opened before ``ready``
  (outside the measured window), then request after request on it; closed after
  the counts are reported and the parent has said go again (also outside).

Each loop connects from its own loopback address (127.1.W.L), as clients of a
real port 443 come from many addresses: the mux's cap on unclassified
connections per source must not be what the bench measures. Nothing here
verifies the server's certificate (a full handshake is still done: the
server signs it, the client checks that signature); no session is resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench.proc import Address, read_settings, say, wait_go

__all__ = ["HEALTH_REQUEST", "TIMEOUT", "client_context", "fetch_health"]

HEALTH_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
CLOSE_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
TIMEOUT = 10.0
"""Seconds one connection or request may take before it counts as an error."""
_FAILURES = (OSError, ssl.SSLError, ValueError, TimeoutError, asyncio.IncompleteReadError)
"""What a connection or request that went wrong raises."""


def client_context() -> ssl.SSLContext:
    """TLS 1.2+ offering ALPN ``http/1.1``, as a browser asking for the web phone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _answer(reader: asyncio.StreamReader) -> None:
    """Read one whole HTTP answer; anything but 200 is an error."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.split(b"\r\n", 1)[0]
        raise ValueError(f"answer {status!r}")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def _open(
    address: Address, context: ssl.SSLContext, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        *address, ssl=context, server_hostname="localhost", local_addr=(source, 0)
    )
    alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
    if alpn != "http/1.1":
        await _close(writer)
        raise ValueError(f"ALPN {alpn!r} selected, not http/1.1")
    return reader, writer


async def _one_connection(address: Address, context: ssl.SSLContext, source: str) -> float:
    """One connection and its request; returns when the answer was whole (perf_counter).

    The TLS shutdown then goes on in the background: waiting for the server's
    close_notify would time sslh's Nagle (below) rather than the connection.
    """
    reader, writer = await _open(address, context, source)
    try:
        writer.write(CLOSE_REQUEST)
        await _answer(reader)
        return time.perf_counter()
    finally:
        writer.close()


def fetch_health(address: Address, timeout: float = 2.0) -> str | None:
    """One connection's ``GET /healthz`` (the probe that a route works): None, or why not."""

    async def probe() -> None:
        await asyncio.wait_for(_one_connection(address, client_context(), "127.0.0.1"), timeout)

    try:
        uvloop.run(probe())
    except asyncio.IncompleteReadError as exc:
        return f"closed after {len(exc.partial)} bytes"
    except _FAILURES as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass(slots=True)
class _Tally:
    done: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"


async def _connect_loop(
    address: Address, context: ssl.SSLContext, source: str, end: float, tally: _Tally
) -> None:
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            answered = await asyncio.wait_for(_one_connection(address, context, source), TIMEOUT)
        except _FAILURES as exc:
            tally.error(exc)
            continue
        tally.latencies.append(answered - start)
        tally.done += 1


async def _request_loop(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, end: float, tally: _Tally
) -> None:
    while time.monotonic() < end:
        start = time.perf_counter()
        writer.write(HEALTH_REQUEST)
        try:
            await asyncio.wait_for(_answer(reader), TIMEOUT)
        except _FAILURES as exc:
            tally.error(exc)
            return  # the connection is gone or out of step: this loop is done
        tally.latencies.append(time.perf_counter() - start)
        tally.done += 1


def _sources(worker: int, loops: int) -> list[str]:
    return [f"127.1.{worker}.{loop + 1}" for loop in range(loops)]


async def _phase(
    settings: dict[str, Any], address: Address, seconds: float
) -> tuple[dict[str, Any], list[asyncio.StreamWriter]]:
    """Set up, say ready, wait for go, run the loops for ``seconds``; the counts, and the
    kept-alive connections to close once the parent has read the servers' CPU."""
    context = client_context()
    sources = _sources(settings["worker"], settings["loops"])
    tally = _Tally()
    connections = []
    if settings["mode"] == "requests":
        for source in sources:
            connections.append(await _open(address, context, source))
    say("ready")
    await asyncio.get_running_loop().run_in_executor(None, wait_go)
    cpu, start = time.process_time(), time.monotonic()
    end = start + seconds
    if settings["mode"] == "requests":
        loops = [_request_loop(reader, writer, end, tally) for reader, writer in connections]
    else:
        loops = [_connect_loop(address, context, source, end, tally) for source in sources]
    await asyncio.gather(*loops)
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    result = {
        "done": tally.done,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "seconds": elapsed,
        "client_cpu": cpu,
        "latencies": [round(value, 6) for value in tally.latencies],
    }
    return result, [writer for _, writer in connections]


async def _run(settings: dict[str, Any]) -> None:
    for host, port, seconds in settings["phases"]:
        try:
            result, writers = await _phase(settings, (host, port), seconds)
        except _FAILURES as exc:
            say(f"set-up failed: {type(exc).__name__}: {exc}")
            return
        say(json.dumps(result))
        # The parent reads the CPU, then says go: sslh-fork's process for each connection,
        # whose time is lost when it exits (its parent ignores SIGCHLD), is still alive.
        await asyncio.get_running_loop().run_in_executor(None, wait_go)
        for writer in writers:
            await _close(writer)


def main() -> None:
    uvloop.run(_run(read_settings()))


if __name__ == "__main__":
    main()
