"""STUN Binding: coturn's turnutils_stunclient on the UDP port, and raw checks of the mapping."""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from tests.interop.turn.stun_wire import (
    BINDING_REQUEST,
    MAGIC_COOKIE,
    SUCCESS,
    XOR_MAPPED_ADDRESS,
    RawTurnClient,
    parse,
)
from tests.interop.turn.support import LOCALHOST, TurnServer, tool

pytestmark = pytest.mark.interop

REFLEXIVE = re.compile(r"UDP reflexive addr: (\S+):(\d+)")
GETSOCKNAME = re.compile(r"getsockname\(\d+, \{sa_family=AF_INET, sin_port=htons\((\d+)\)")


def ephemeral_ports() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def usable_strace() -> str | None:
    """strace, if installed and allowed to trace here (containers may refuse ptrace)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    probe = subprocess.run(
        [strace, "-qq", "-e", "trace=none", "true"], capture_output=True, timeout=10, check=False
    )
    return strace if probe.returncode == 0 else None


def test_stunclient_reports_its_own_address(shared_turn: TurnServer) -> None:
    command = [tool("turnutils_stunclient"), "-p", str(shared_turn.port), LOCALHOST]
    # stunclient sends from an unbound socket and prints the kernel's choice nowhere, so its
    # port is read from the getsockname() it makes, when strace can watch it; otherwise the
    # exact check is the raw-socket test below.
    strace = usable_strace()
    if strace is not None:
        command = [strace, "-e", "trace=getsockname", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    reported = set(REFLEXIVE.findall(result.stdout))
    assert len(reported) == 1, result.stdout
    host, port = reported.pop()
    assert host == LOCALHOST
    assert int(port) in ephemeral_ports()
    if strace is not None:
        assert GETSOCKNAME.findall(result.stderr) == [port], result.stderr


def test_binding_from_a_known_port_is_reflected_exactly(shared_turn: TurnServer) -> None:
    with RawTurnClient((LOCALHOST, shared_turn.port), "", "") as client:
        answer = client.request(BINDING_REQUEST)
        assert answer.kind == BINDING_REQUEST | SUCCESS, answer
        assert answer.address(XOR_MAPPED_ADDRESS) == client.sock.getsockname()


def test_binding_over_tcp_on_the_same_port(shared_turn: TurnServer) -> None:
    # RFC 8656 §3.1 / RFC 8489 §6.2.2: the listener's port serves TCP as well as UDP.
    request = struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + os.urandom(12)
    with socket.create_connection((LOCALHOST, shared_turn.port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while len(data) < 20 or len(data) < 20 + struct.unpack("!H", data[2:4])[0]:
            chunk = sock.recv(4096)
            assert chunk, "connection closed before the answer"
            data += chunk
        answer = parse(data)
        assert answer.kind == BINDING_REQUEST | SUCCESS, answer
        assert answer.address(XOR_MAPPED_ADDRESS) == sock.getsockname()
