"""UDP listeners report the buffers they got, and warn when the host's limits cut them."""

from __future__ import annotations

import logging
import socket

import pytest

from heron.udp_listener import report_buffers

SMALL = 64 << 10
"""Below any host's net.core.rmem_max and wmem_max, so granted as asked."""


def test_a_buffer_below_what_heron_asks_names_the_sysctl_that_capped_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
        with caplog.at_level(logging.INFO, "heron.udp_listener"):
            report_buffers("turn", "udp://127.0.0.1:3478", sock)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "receive buffer capped at 64 KiB by net.core.rmem_max" in warnings[0]
    assert "send buffer capped at 64 KiB by net.core.wmem_max" in warnings[1]
    assert "turn: udp://127.0.0.1:3478 buffers: receive 64 KiB, send 64 KiB" in caplog.text
