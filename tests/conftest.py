"""Fixtures every test may use: free ports, private data directories, real databases."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from heron.store import async_url

SERVERS = {
    "postgresql": ("postgresql://postgres@127.0.0.1:5432", "WITH (FORCE)"),
    "mariadb": ("mysql://root@127.0.0.1:3306", ""),
}


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
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(settings: dict[str, Any]) -> str:
    """TOML for a flat dict of top-level keys and one level of [sections]."""
    top = [f"{key} = {toml_value(v)}" for key, v in settings.items() if not isinstance(v, dict)]
    lines = top
    for section, values in settings.items():
        if isinstance(values, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{key} = {toml_value(v)}" for key, v in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a heron.toml whose every listener is on a free loopback port."""

    def write(**overrides: Any) -> Path:
        settings: dict[str, Any] = {
            "data_dir": str(tmp_path / "var"),
            "turn": {"listen": [f"127.0.0.1:{free_port()}"], "tls_listen": []},
            "sip": {"listen": [f"127.0.0.1:{free_port()}"], "tls_listen": []},
            "xmpp": {"listen": [], "tls_listen": [], "s2s_listen": []},
            "web": {"listen": [f"127.0.0.1:{free_port()}"]},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
        path = tmp_path / "heron.toml"
        path.write_text(render_toml(settings))
        return path

    return write


def _unreachable(backend: str, exc: BaseException) -> None:
    message = f"{backend} on 127.0.0.1 is unreachable: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message + " (on CI this fails)")


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty database of each backend, dropped afterwards."""
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'heron.db'}"
        return
    server, force = SERVERS[backend]
    name = f"heron_test_{secrets.token_hex(6)}"
    admin = create_async_engine(async_url(f"{server}/test"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # noqa: BLE001 - any driver error means "not there"
        await admin.dispose()
        _unreachable(backend, exc)
    try:
        yield f"{server}/{name}"
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f"DROP DATABASE {name} {force}")
        await admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data directory, also the working directory, with no HERON_* leaking in."""
    monkeypatch.delenv("HERON_DATA_DIR", raising=False)
    monkeypatch.delenv("HERON_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "var"
