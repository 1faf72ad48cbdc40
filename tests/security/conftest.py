"""Attacks on a running heron, each the way an outsider would make it (see support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import Target, target


@pytest.fixture
def heron(tmp_path: Path) -> Iterator[Target]:
    """A fresh heron with its defaults, for one test's attack."""
    with target(tmp_path / "heron") as running:
        yield running
