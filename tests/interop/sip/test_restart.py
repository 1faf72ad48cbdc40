"""Bindings live in the location store, not in the process: a call reaches a user who
registered before heron restarted, without registering again (Kamailio's WITH_USRLOCDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.sip.support import (
    LOCALHOST,
    USERS,
    answering,
    call,
    register,
    restarted,
    sip_server,
)
from tests.support.config import free_port

pytestmark = pytest.mark.interop


def test_bindings_survive_a_restart(tmp_path: Path) -> None:
    users = {name: USERS[name] for name in ("alice", "bob")}
    bob = free_port()
    with sip_server(tmp_path / "heron", users) as first:
        run = register(first, tmp_path / "register", "bob", USERS["bob"], port=bob)
        assert run.returncode == 0, run.explain()

    with restarted(first) as second:
        listed = second.registrations()
        assert "bob@localhost" in listed and f"{LOCALHOST}:{bob}" in listed, listed
        with answering(tmp_path / "callee", "uas_answer.xml", port=bob) as uas:
            caller = call(second, tmp_path / "caller", "uac_call.xml", "bob", "alice")
            callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert [s for s, _ in caller.statuses() if s >= 200] == [407, 200, 200], caller.explain()
    assert callee.received("INVITE")[0].get("From").startswith("<sip:alice@localhost>")
