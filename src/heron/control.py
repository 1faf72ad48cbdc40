"""The local control socket: ``heron`` commands ask the running server what is live.

Like coturn's CLI or ``kamctl ul show``, an administrator lists live TURN
allocations (and later SIP registrations, XMPP sessions) from the shell.
The socket lives in the data directory, readable by its owner only; one
request line names a view (or a command and its argument), one JSON line
answers. Commands let another ``heron`` process tell the server what it
changed, such as an account's password.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from heron.errors import HeronError

__all__ = ["SOCKET_NAME", "Command", "ControlServer", "NotRunning", "View", "notify", "query"]

SOCKET_NAME = "control.sock"
_MAX_REQUEST = 4096
"""Bytes of a request line read: a TURN worker's counters report is ~800."""

View = Callable[[], list[dict[str, Any]]]


class NotRunning(HeronError):
    """No server answers on the data directory's control socket."""


Command = Callable[[str], list[dict[str, Any]] | None]
"""Takes the request's argument; raises ValueError for a bad one, HeronError when it
refuses (its one line is the answer). May answer rows."""


@contextmanager
def _short_path(path: Path) -> Iterator[str]:
    """``path`` spelled through /proc/self/fd, since AF_UNIX paths stop at 107 bytes."""
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


class ControlServer:
    def __init__(
        self, path: Path, views: Mapping[str, View], commands: Mapping[str, Command] | None = None
    ) -> None:
        self._path = path
        self._views = views
        self._commands = commands or {}
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._path.unlink(missing_ok=True)
        with _short_path(self._path) as short:
            self._server = await asyncio.start_unix_server(self._serve, short)
        os.chmod(self._path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            name, _, argument = (
                line[:_MAX_REQUEST].decode("utf-8", "replace").strip().partition(" ")
            )
            answer = self._answer(name, argument)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, name: str, argument: str) -> dict[str, Any]:
        if (command := self._commands.get(name)) is not None:
            try:
                rows = command(argument)
            except ValueError as exc:
                return {"error": f"{name}: {exc}"}
            except HeronError as exc:  # says what it is about itself (a config error)
                return {"error": str(exc)}
            return {"rows": rows or []}
        if (view := self._views.get(name)) is not None:
            return {"rows": view()}
        return {"error": f"no view {name!r}; known: {sorted(self._views)}"}


async def query(data_dir: Path, name: str) -> list[dict[str, Any]]:
    """Ask the server running on ``data_dir`` for view ``name``."""
    path = data_dir / SOCKET_NAME
    try:
        with _short_path(path) as short:
            reader, writer = await asyncio.open_unix_connection(short)
    except OSError:
        raise NotRunning(f"heron is not running on {data_dir} (no control socket {path})") from None
    writer.write(name.encode() + b"\n")
    await writer.drain()
    answer = json.loads(await reader.readline() or b"{}")
    writer.close()
    if "error" in answer:
        raise HeronError(answer["error"])
    rows: list[dict[str, Any]] = answer.get("rows", [])
    return rows


async def notify(data_dir: Path, command: str, argument: str) -> bool:
    """Tell the server running on ``data_dir`` what this process changed.

    False when no server runs there (nothing to tell); HeronError if it refused.
    """
    try:
        await query(data_dir, f"{command} {argument}")
    except NotRunning:
        return False
    return True
