"""XMPP over WebSocket (RFC 7395) when the browser goes away (issue 10, item 11).

A TCP stream header sent as a text frame (the wrong framing: the server
answers with a stream error and ends the stream) and the connection dropped at
once: the server's answer then meets a closed socket. That must end the connection
quietly, not log "Task exception was never retrieved" for each one.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
import threading
from pathlib import Path

from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.security.xmpp_client import TIMEOUT, logged_in

OPEN = (
    f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams'>"
)


def _text_frame(text: str) -> bytes:
    """RFC 6455 §5.2: one final text frame, masked as a client's must be (length < 126)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def _open_and_drop(heron: Target) -> None:
    status, writer = await _upgrade(heron)
    assert status.startswith(b"HTTP/1.1 101") and writer is not None, status
    # The header, then a reset at once (SO_LINGER 0): the server's answer finds the
    # connection gone.
    writer.write(_text_frame(OPEN))
    await writer.drain()
    raw = writer.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _whole_log(heron: Target) -> str:
    """The log of a stopped heron to its last line: what it logged as it exited included
    (a task that failed unnoticed is reported only when it is collected, at the latest then).
    support.serving reads the log in a thread; wait for it to reach the end of the pipe."""
    assert heron.heron.process.poll() is not None
    for thread in threading.enumerate():
        if getattr(thread, "_target", None) == heron.heron.log.extend:
            thread.join(TIMEOUT)
    return heron.log()


async def test_a_dropped_websocket_stream_ends_quietly(tmp_path: Path) -> None:
    with target(tmp_path / "heron") as heron:
        await asyncio.gather(*(_open_and_drop(heron) for _ in range(30)))
        # The server carries on.
        async with logged_in(heron, "roland", USERS["roland"]):
            pass
    log = _whole_log(heron)
    assert "heron.app: stopped" in log
    assert "Task exception was never retrieved" not in log
    assert "Traceback" not in log


async def _upgrade(heron: Target) -> tuple[bytes, asyncio.StreamWriter | None]:
    """One XMPP WebSocket opening; the status line heron answered (empty when it closed
    the connection before TLS) and the open writer."""
    try:
        reader, writer = await asyncio.open_connection(
            HOST, heron.ports["web.listen"], ssl=heron.tls_context(), server_hostname=DOMAIN
        )
    except (ConnectionError, ssl.SSLError):
        return b"", None
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /xmpp-websocket HTTP/1.1\r\nHost: {DOMAIN}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"
        ).encode()
    )
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    except asyncio.IncompleteReadError as exc:  # refused before a word: closed at once
        answer = exc.partial
    return answer.partition(b"\r\n")[0], writer


def test_a_websocket_counts_once_against_the_connections_per_source(tmp_path: Path) -> None:
    """The web listener counts the connection; the XMPP route must not count it again,
    or a browser's share of ``limits.connections_per_source`` would be halved."""

    async def attack(heron: Target) -> list[bytes]:
        opened = [await _upgrade(heron) for _ in range(5)]
        for _, writer in opened:
            if writer is not None:
                writer.close()
        return [status for status, _ in opened]

    with target(tmp_path / "heron", {"limits": {"connections_per_source": 4}}) as heron:
        statuses = asyncio.run(attack(heron))
    assert all(status.startswith(b"HTTP/1.1 101") for status in statuses[:4]), statuses
    assert not statuses[4].startswith(b"HTTP/1.1 101"), statuses
