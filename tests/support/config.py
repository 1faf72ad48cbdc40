"""Free ports and TOML for test configurations."""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
from collections.abc import Iterator
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _listen_ports() -> Iterator[int]:
    """Ports for servers under test, in turn, from this xdist worker's share of 10000-19999.

    Below the TURN tests' relay windows (20000-31999) and the kernel's ephemeral range
    (32768-60999): a port the kernel picks with ``bind(0)`` is one it may hand to any
    client's outgoing socket before the server binds it, which happened. Each worker has a
    share of its own, walked in turn from a random start, so that two workers, or two
    servers of one test, never get the same port between choosing it and binding it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    share = 10000 // max(workers, 1)
    low = 10000 + index * share
    start = random.randrange(share)
    for step in itertools.count():
        yield low + (start + step) % share


_PORTS = _listen_ports()


def free_port() -> int:
    """A port free for both TCP and UDP right now, for a server under test to listen on."""
    for port in _PORTS:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream:
                stream.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
                datagram.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise AssertionError("unreachable: the ports repeat for ever")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table, for a section's sub-table
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_key(key: str) -> str:
    """A bare key as is; any other quoted, so that a dotted name (``sip.example.test``)
    stays one key instead of a path of tables."""
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)


def render_toml(settings: dict[str, Any]) -> str:
    """TOML for a flat dict of top-level keys and one level of [sections]."""
    top = [f"{key} = {toml_value(v)}" for key, v in settings.items() if not isinstance(v, dict)]
    lines = top
    for section, values in settings.items():
        if isinstance(values, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{key} = {toml_value(v)}" for key, v in values.items()]
    return "\n".join(lines) + "\n"
