"""Fixtures for the SIP interop tests: one shared heron per xdist worker, and a Redis key
prefix per test for the tests of shared state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.interop.sip.support import SipServer, sip_server

REDIS = "redis://127.0.0.1:6379/0"
"""The Redis every test shares; each keeps to its own key prefix."""


@pytest.fixture(scope="session")
def shared_sip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    """heron with SIP on UDP, TCP, TLS and WebSocket and every user of ``USERS``.

    Tests share it by keeping to their own callees (see ``USERS``), so no binding one
    test leaves behind forks another's call. The restart test starts its own.
    """
    with sip_server(tmp_path_factory.mktemp("heron-sip")) as server:
        yield server


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own (``redis.prefix``); its keys go after."""
    prefix = f"heron-test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
