"""Both ways heron's TURN sockets move datagrams: recvmmsg/sendmmsg, and recvfrom/sendto.

A test parametrized over :data:`UDP_MODES` calls :func:`use_udp_mode` first; the batched
mode needs the C extension, whose absence fails on CI and skips elsewhere.
"""

from __future__ import annotations

import pytest

from heron.turn.transports.udp import BUILT, NO_MMSG
from tests.support.tools import missing

UDP_MODES = ["mmsg", "fallback"]


def use_udp_mode(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets made from now on (and heron processes started) move datagrams by ``mode``."""
    if mode == "fallback":
        monkeypatch.setenv(NO_MMSG, "1")
        return
    if not BUILT:
        missing("heron.turn._mmsg is not built: `make test-deps` compiles it (gcc, python3-dev)")
    monkeypatch.delenv(NO_MMSG, raising=False)
