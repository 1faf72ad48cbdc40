"""Accounts made by ``heron user add`` while heron serves work at once, everywhere.

The one account cache remembers a name nobody has for a few seconds (so that a
flood of unknown names does not cost a query each); the new account is
announced to the running server, which forgets that at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.turn.stun_wire import RawTurnClient
from tests.security.support import DOMAIN, Target, target
from tests.security.turn_wire import ALLOCATE_REQUEST, SUCCESS, allocate, turn_udp
from tests.security.xmpp_client import plain_login

PASSWORD = "freshly-made"


@pytest.fixture
def heron(tmp_path: Path) -> Iterator[Target]:
    with target(tmp_path / "heron") as running:
        yield running


def test_an_account_added_while_serving_logs_in_at_once_after_its_name_was_unknown(
    heron: Target,
) -> None:
    refused = asyncio.run(plain_login(heron, "mirabelle", PASSWORD))
    assert b"<failure" in refused, refused
    with RawTurnClient(turn_udp(heron), "mirabelle", PASSWORD) as turn:
        assert allocate(turn).error == 401

    added = heron.heron.cli(
        "user", "add", f"mirabelle@{DOMAIN}", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr

    accepted = asyncio.run(plain_login(heron, "mirabelle", PASSWORD))
    assert b"<success" in accepted, accepted
    with RawTurnClient(turn_udp(heron), "mirabelle", PASSWORD) as turn:
        assert allocate(turn).kind == ALLOCATE_REQUEST | SUCCESS
