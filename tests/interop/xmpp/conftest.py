"""Fixtures for the XMPP interop tests: one shared heron per xdist worker."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp.connector
import pytest

from tests.interop.xmpp.support import XmppServer, xmpp_server


@pytest.fixture(scope="session")
def shared_xmpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XmppServer]:
    """heron with XMPP over STARTTLS, direct TLS and WebSocket, TURN, and ``USERS``."""
    with xmpp_server(tmp_path_factory.mktemp("heron-xmpp")) as server:
        yield server


@pytest.fixture
def trusting_heron(shared_xmpp: XmppServer) -> Iterator[XmppServer]:
    """slixmpp uploads with aiohttp's default verifying context: heron's self-signed
    certificate is added to it, as a user would install it, for this test process."""
    context = aiohttp.connector._SSL_CONTEXT_VERIFIED
    assert context is not None
    context.load_verify_locations(cafile=str(shared_xmpp.certificate))
    yield shared_xmpp
