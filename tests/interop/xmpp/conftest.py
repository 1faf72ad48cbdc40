"""Fixtures for the XMPP interop tests: one shared heron per xdist worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.xmpp.support import XmppServer, xmpp_server


@pytest.fixture(scope="session")
def shared_xmpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    """heron with XMPP over STARTTLS, direct TLS and WebSocket, TURN, and ``USERS``."""
    with xmpp_server(tmp_path_factory.mktemp("heron-xmpp")) as server:
        yield server
