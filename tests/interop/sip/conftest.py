"""Fixtures for the SIP interop tests: one shared heron per xdist worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.sip.support import SipServer, sip_server


@pytest.fixture(scope="session")
def shared_sip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    """heron with SIP on UDP, TCP, TLS and WebSocket and every user of ``USERS``.

    Tests share it by keeping to their own callees (see ``USERS``), so no binding one
    test leaves behind forks another's call. The restart test starts its own.
    """
    with sip_server(tmp_path_factory.mktemp("heron-sip")) as server:
        yield server
