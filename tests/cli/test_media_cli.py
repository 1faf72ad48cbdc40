"""``heron media calls`` and the media counters of a running server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from heron.control import SOCKET_NAME, ControlServer
from tests.support.config import free_port, render_toml
from tests.support.heron import heron_cli, running_heron


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


def test_media_calls_prints_each_side_of_each_call(tmp_path: Path) -> None:
    """The table, from a control socket serving two calls (a bridged one and an echo)."""
    rows = [
        {
            "call_id": "a84b4c76e66710",
            "branch": "z9hG4bK776asdhds",
            "echo": False,
            "age": 12,
            "silent": 0,
            "caller_transport": "webrtc",
            "caller_port": 40000,
            "caller_peer": "198.51.100.9:50000",
            "caller_packets": 512,
            "callee_transport": "rtp",
            "callee_port": 40002,
            "callee_peer": "",
            "callee_packets": 0,
        },
        {
            "call_id": "echo-1",
            "branch": "z9hG4bK-e",
            "echo": True,
            "age": 3,
            "silent": 1,
            "caller_transport": "rtp",
            "caller_port": 40004,
            "caller_peer": "192.0.2.10:4000",
            "caller_packets": 150,
            "callee_transport": "",
            "callee_port": 0,
            "callee_peer": "",
            "callee_packets": 0,
        },
    ]
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    config = tmp_path / "heron.toml"
    config.write_text(render_toml({"data_dir": str(data_dir)}))
    loop = asyncio.new_event_loop()
    server = ControlServer(data_dir / SOCKET_NAME, {"media.calls": lambda: rows})
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        result = heron_cli(config, "media", "calls")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(server.stop())
        loop.close()
    assert result.returncode == 0, result.stderr
    assert "webrtc :40000 ⇄ 198.51.100.9:50000 (512 pkts)" in result.stdout
    assert "rtp :40002 ⇄ -" in result.stdout
    assert "echo" in result.stdout and "2 call(s)" in result.stdout
