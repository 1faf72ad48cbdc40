"""Fixtures for the TURN core tests: a core with fakes around it, and its first client."""

from __future__ import annotations

import pytest

from tests.unit.turn.harness import Turn, TurnClient


@pytest.fixture
def turn() -> Turn:
    """A core with the default policy, IPv4 relays and the users alice and bob."""
    return Turn()


@pytest.fixture
def alice(turn: Turn) -> TurnClient:
    """alice on her own UDP 5-tuple, not yet allocated."""
    return turn.client("alice")
