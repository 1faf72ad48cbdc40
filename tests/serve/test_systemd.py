"""heron as a systemd service: the unit file systemd accepts, and ``Type=notify``'s
READY=1 / RELOADING=1 / STOPPING=1 datagrams on the socket systemd names in $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import heron
from tests.support.heron import HERON
from tests.support.tools import require_tool

UNIT = Path(heron.__file__).parent / "heron.service"


def test_systemd_analyze_verify_accepts_the_unit_install_service_writes(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    installed = subprocess.run(
        [*HERON, "install-service", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    unit = tmp_path / "etc/systemd/system/heron.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    # verify insists that ExecStart exists: install-service pointed it at this heron.
    assert f"ExecStart={Path(sys.executable).parent / 'heron'} serve" in unit.read_text()
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_unit_is_hardened_and_runs_heron_as_its_own_user() -> None:
    lines = set(UNIT.read_text().splitlines())
    assert {
        "Type=notify",
        "ExecReload=/usr/local/bin/heron reload",
        "User=heron",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/heron",
    } <= lines


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    """A socket bound as systemd binds its own: a path, or '@' for the abstract namespace."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        abstract = f"heron-test-{os.getpid()}-{id(sock)}"
        sock.bind("\0" + abstract)
        name = "@" + abstract
    sock.settimeout(60)  # a bound on a dead server, not a synchronisation
    with sock:
        yield name, sock


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_tells_the_service_manager_ready_reloading_ready_then_stopping(
    write_config: Callable[..., Path], notify_socket: tuple[str, socket.socket], workers: int
) -> None:
    """TURN workers tell the main process, never systemd: they are ready before it is, so
    a worker's READY=1 would come first, with its own pid. A reload (SIGHUP, as
    ``Type=notify-reload`` sends it) is RELOADING=1 with its start on the monotonic clock,
    then READY=1 (systemd 253's protocol); the workers reload without a word."""
    config = write_config(turn={"workers": workers})
    assert subprocess.run([*HERON, "-c", str(config), "cert"], capture_output=True).returncode == 0
    name, sock = notify_socket
    environment = {**os.environ, "NOTIFY_SOCKET": name}
    process = subprocess.Popen(
        [*HERON, "-c", str(config), "serve"], env=environment, stderr=subprocess.DEVNULL
    )
    try:
        ready = sock.recv(4096).decode().splitlines()
        assert "READY=1" in ready
        assert f"MAINPID={process.pid}" in ready
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        process.send_signal(signal.SIGHUP)
        reloading, monotonic = sock.recv(4096).decode().splitlines()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert reloading == "RELOADING=1"
        assert before <= int(monotonic.removeprefix("MONOTONIC_USEC=")) <= after
        assert sock.recv(4096).decode().splitlines() == ready
        process.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode().splitlines() == ["STOPPING=1"]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
