"""Fixtures for the TURN interop tests: one shared heron per xdist worker, echo peers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.turn.support import TurnServer, coturn_peer, turn_server


@pytest.fixture(scope="session")
def shared_turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    """heron allowing loopback peers on UDP, TCP and TLS, shared by the tests that leave it
    as they found it (the wrong-password test guesses from 127.0.0.2, whose lockout touches
    no one else). Tests that need other settings start their own.

    uclient leaves its UDP probe allocation behind on every run (coturn too keeps it until it
    expires), so a handful stay live here; far below the default user_quota of 20.
    """
    with turn_server(tmp_path_factory.mktemp("heron-turn")) as server:
        yield server


@pytest.fixture
def echo_port() -> Iterator[int]:
    """Port of a fresh turnutils_peer echoing on 127.0.0.1."""
    with coturn_peer() as port:
        yield port
