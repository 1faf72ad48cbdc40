"""Free ports and TOML for test configurations."""

from __future__ import annotations

import re
import socket
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP right now, chosen by the kernel."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


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
