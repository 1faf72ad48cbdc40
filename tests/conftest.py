"""Fixtures every test may use: free ports, private data directories, real databases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy.ext.asyncio import create_async_engine

from heron.store import async_url
from tests.support.config import free_port, render_toml
from tests.support.tools import missing

# No timing assertions (hypothesis's 200 ms deadline is one): a loaded 2-core CI machine
# is slow, not wrong.
settings.register_profile("heron", deadline=None)
settings.load_profile("heron")

SERVERS = {
    "postgresql": ("postgresql://postgres@127.0.0.1:5432", "WITH (FORCE)"),
    "mariadb": ("mysql://root@127.0.0.1:3306", ""),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each module that shares a module-scoped fixture (a heron, a Chromium, a peer
    server) on one xdist worker, so that ``--dist loadgroup`` starts it once rather than
    once on each worker; every other test still goes to whichever worker is free."""
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker("xdist_group"):
            continue
        definitions = item._fixtureinfo.name2fixturedefs.values()
        if any(chain[-1].scope == "module" for chain in definitions):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a heron.toml whose every listener is on a free loopback port."""

    def write(**overrides: Any) -> Path:
        settings: dict[str, Any] = {
            "data_dir": str(tmp_path / "var"),
            "turn": {"listen": [f"127.0.0.1:{free_port()}"], "tls_listen": []},
            "sip": {"listen": [f"127.0.0.1:{free_port()}"], "tls_listen": []},
            "xmpp": {"listen": [], "tls_listen": [], "s2s_listen": [], "s2s_tls_listen": []},
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
    missing(f"{backend} on 127.0.0.1 is unreachable: {exc}")


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
