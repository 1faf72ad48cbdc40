"""heron's garbage collector settings once it serves (see heron.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from heron.collector import YOUNG_THRESHOLD, settle


@pytest.fixture
def restored() -> Iterator[None]:
    """This test process's own settings again afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settling_freezes_start_up_objects_out_of_later_collections() -> None:
    started = [[]]  # a container: the collector tracks it until it is frozen
    assert any(o is started for o in gc.get_objects())
    settle()

    assert not any(o is started for o in gc.get_objects())


@pytest.mark.usefixtures("restored")
def test_settling_collects_the_youngest_generation_less_often_and_keeps_the_older_ones() -> None:
    _, middle, old = gc.get_threshold()
    settle()

    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
