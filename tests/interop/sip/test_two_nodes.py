"""Two heron nodes, one SIP domain (issue 15): ``heron serve`` on 127.0.0.2 and on
127.0.0.3, sharing a PostgreSQL database of the test's own and Redis under a prefix of
its own. A phone registered through node A is called through node B; once A has stopped,
B still reaches it, from the binding Redis holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.interop.sip.conftest import REDIS
from tests.interop.sip.support import (
    DOMAIN,
    USERS,
    SippRun,
    answering,
    call,
    run_sipp,
)
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, heron_cli, merge, serving

pytestmark = pytest.mark.interop

NODES = {"a": "127.0.0.2", "b": "127.0.0.3"}


@contextmanager
def node(directory: Path, settings: dict[str, Any]) -> Iterator[RunningHeron]:
    directory.mkdir(parents=True)
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(base_settings(directory), settings)))
    certified = heron_cli(config, "cert")
    assert certified.returncode == 0, certified.stderr
    with serving(config) as running:
        yield running


def node_settings(host: str, port: int, database: str, prefix: str) -> dict[str, Any]:
    return {
        "sip": {"enabled": True, "listen": [f"{host}:{port}"], "tls_listen": [], "workers": 1},
        "database": {"url": database},
        "redis": {"url": REDIS, "prefix": prefix},
        "media": {"enabled": False},
    }


def call_through(
    directory: Path, address: str, callee_port: int, callee: str = "bob"
) -> tuple[SippRun, SippRun]:
    with answering(directory / "callee", "uas_answer.xml", port=callee_port) as uas:
        caller = call(address, directory / "caller", "uac_call.xml", callee, "alice")
        return caller, uas.wait()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_registered_on_one_node_called_through_the_other_after_it_stopped(
    tmp_path: Path, database_url: str, prefix: str
) -> None:
    ports = {name: free_port() for name in NODES}
    settings = {
        name: node_settings(host, ports[name], database_url, prefix) for name, host in NODES.items()
    }
    address = {name: f"{NODES[name]}:{ports[name]}" for name in NODES}
    with node(tmp_path / "b", settings["b"]) as b:
        lines = "".join(f"{user}@{DOMAIN} {password}\n" for user, password in USERS.items())
        imported = b.cli("user", "import", "-", stdin=lines)
        assert imported.returncode == 0, imported.stderr
        with node(tmp_path / "a", settings["a"]):
            callee = free_port()
            registered = run_sipp(
                tmp_path / "register",
                "register.xml",
                "-s",
                "bob",
                "-au",
                "bob",
                "-ap",
                USERS["bob"],
                port=callee,
                remote=address["a"],
            )
            assert registered.returncode == 0, registered.explain()
            caller, answered = call_through(tmp_path / "while-a-serves", address["b"], callee)
            assert caller.returncode == 0, caller.explain()
            assert answered.returncode == 0, answered.explain()
        # Node A is gone; its registration is not.
        caller, answered = call_through(tmp_path / "after-a-stopped", address["b"], callee)
        assert caller.returncode == 0, caller.explain()
        assert answered.returncode == 0, answered.explain()
        # 100 Trying comes only when the callee takes over 200 ms to ring.
        assert [s for s, _ in caller.statuses() if s != 100] == [407, 180, 200, 200]
        invite = answered.received("INVITE")[0]
        assert f"SIP/2.0/UDP {address['b']}" in invite.get("Via"), invite
        listed = b.cli("sip", "registrations")
        assert f"udp://127.0.0.1:{callee}" in listed.stdout, listed.stdout
