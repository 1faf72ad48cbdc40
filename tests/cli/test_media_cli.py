"""``heron media calls`` and the media counters of a running server."""

from __future__ import annotations

from pathlib import Path

from tests.support.config import free_port
from tests.support.heron import running_heron


def test_media_calls_of_a_running_server_and_of_none(tmp_path: Path) -> None:
    low = free_port()
    settings = {"media": {"address": "127.0.0.1", "port_min": low, "port_max": low + 10}}
    with running_heron(tmp_path, settings) as heron:
        live = heron.cli("media", "calls")
    assert live.returncode == 0, live.stderr
    assert live.stdout.strip().endswith("0 call(s)")
    stopped = heron.cli("media", "calls")
    assert stopped.returncode == 2
    assert "heron is not running" in stopped.stderr


def test_media_disabled_has_no_calls_view(tmp_path: Path) -> None:
    with running_heron(tmp_path, {"media": {"enabled": False}}) as heron:
        result = heron.cli("media", "calls")
    assert result.returncode != 0
    assert "no view 'media.calls'" in result.stderr
