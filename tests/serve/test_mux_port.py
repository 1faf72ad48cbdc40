"""The port-443 mux as an administrator meets it: its UDP twin answers STUN, a port
already taken is one line and status 2, and SIGTERM closes it."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.config import free_port
from tests.support.heron import heron_cli, running_heron
from tests.support.tools import require_tool


def test_udp_on_the_mux_address_is_stun_and_turn(tmp_path: Path) -> None:
    """coturn's own STUN client gets its reflexive address from the mux port over UDP."""
    stunclient = require_tool("turnutils_stunclient", "coturn")
    port = free_port()
    settings = {"turn": {"enabled": True, "listen": []}, "mux": {"listen": [f"127.0.0.1:{port}"]}}
    with running_heron(tmp_path, settings) as heron:
        assert any(f"turn listening on udp://127.0.0.1:{port}" in line for line in heron.log)
        answer = subprocess.run(
            [stunclient, "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=30
        )
        assert re.search(r"UDP reflexive addr: 127\.0\.0\.1:\d+", answer.stdout), answer.stdout
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", port))  # both listeners are really closed


def test_mux_port_in_use_is_one_line_and_status_2(write_config: Callable[..., Path]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(turn={"enabled": False}, mux={"listen": [f"127.0.0.1:{port}"]})
        assert heron_cli(config, "cert").returncode == 0
        result = heron_cli(config, "serve")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"heron: error: mux.listen: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "Traceback" not in result.stderr
