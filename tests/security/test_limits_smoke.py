"""The attack target itself: every service up with its defaults on loopback."""

from __future__ import annotations

import socket

from tests.security.support import HOST, Target


def test_every_service_of_the_target_accepts_connections(heron: Target) -> None:
    for port in heron.ports.values():
        with socket.create_connection((HOST, port), timeout=5):
            pass
    assert "open files limit" in heron.log()
