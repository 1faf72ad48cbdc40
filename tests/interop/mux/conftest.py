"""Fixtures for the mux interop tests: one heron per xdist worker, echo peers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.mux.support import MuxHeron, mux_heron
from tests.interop.turn.support import coturn_peer


@pytest.fixture(scope="session")
def shared_mux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MuxHeron]:
    """heron whose TURN, SIP and XMPP are reachable through the mux port only.

    Tests share it by keeping to the roles ``ACCOUNTS`` gives each account.
    """
    with mux_heron(tmp_path_factory.mktemp("heron-mux")) as server:
        yield server


@pytest.fixture
def echo_port() -> Iterator[int]:
    """Port of a fresh turnutils_peer echoing on 127.0.0.1."""
    with coturn_peer() as port:
        yield port
