"""What a reload applies, what it reports as needing a restart, and what it refuses
(:mod:`heron.reload`), on in-memory services; the running server is in
``tests/interop/test_reload.py``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from heron.accounts import AccountChange, AccountPolicy, AccountService
from heron.component import Listener, Services
from heron.config import Config
from heron.control import View
from heron.errors import ConfigError
from heron.guards import Guards
from heron.reload import Reloader, changed_keys
from heron.sip.server import SipComponent
from heron.store.memory import MemoryAccountStore, MemoryLocationStore


class Recorder:
    """A component that takes ``sip.routes`` live, or refuses every config when ``refuse``."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.applied: list[Config] = []

    async def start(self) -> Sequence[Listener]:
        return []

    async def stop(self) -> None:
        pass

    def views(self) -> dict[str, View]:
        return {}

    def apply(self, config: Config) -> frozenset[str]:
        if self.refuse and config.sip.routes:
            raise ConfigError("sip.routes: refused")
        self.applied.append(config)
        return frozenset({"sip.routes"})


def config(tmp_path: Path, **settings: Any) -> Config:
    return Config.model_validate({"data_dir": str(tmp_path), **settings})


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    policy = AccountPolicy("localhost", "localhost", "localhost", ("localhost",), frozenset())
    guards = Guards()
    yield Services(config(tmp_path), AccountService(MemoryAccountStore(), policy), guards)
    guards.close()


ROUTE = {"routes": [{"user": "^9", "target": "sip:192.0.2.1"}]}


def test_changed_keys_name_the_section_key_not_the_section(tmp_path: Path) -> None:
    old = config(tmp_path)
    new = config(
        tmp_path,
        admins=["root@localhost"],
        sip=ROUTE,
        web={"click_to_call": {"sales": "roland@localhost"}, "listen": ["127.0.0.1:8443"]},
    )
    assert changed_keys(old, new) == ["admins", "sip.routes", "web.click_to_call", "web.listen"]
    assert changed_keys(old, config(tmp_path)) == []


def test_keys_no_part_applies_are_reported_as_needing_a_restart(
    tmp_path: Path, services: Services
) -> None:
    component = Recorder()
    new = config(tmp_path, sip=ROUTE, web={"listen": ["127.0.0.1:9443"]}, log_level="debug")
    reloader = Reloader(lambda: new, services, [component])
    root = logging.getLogger()
    level = root.level
    try:
        assert reloader.reload() == ["web.listen"]
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(level)
    assert component.applied == [new]


def test_a_restart_stays_needed_until_the_file_is_back_as_started(
    tmp_path: Path, services: Services
) -> None:
    files = [config(tmp_path, media={"timeout": 5}), config(tmp_path, sip=ROUTE), config(tmp_path)]
    reloader = Reloader(lambda: files.pop(0), services, [Recorder()])
    assert reloader.reload() == ["media.timeout"]
    assert reloader.reload() == []
    assert reloader.reload() == []


def test_a_refused_file_changes_nothing(tmp_path: Path, services: Services) -> None:
    def invalid() -> Config:
        raise ConfigError("heron.toml: log_level: String should match pattern")

    component = Recorder()
    with pytest.raises(ConfigError, match="log_level"):
        Reloader(invalid, services, [component]).reload()
    assert component.applied == []


def test_a_part_that_refuses_puts_the_others_back(tmp_path: Path, services: Services) -> None:
    first, second = Recorder(), Recorder(refuse=True)
    new = config(tmp_path, sip=ROUTE)
    with pytest.raises(ConfigError, match="sip.routes"):
        Reloader(lambda: new, services, [first, second]).reload()
    assert first.applied == [new, services.config]
    assert second.applied == []


def test_admins_added_or_removed_are_announced_as_admin_changes(
    tmp_path: Path, services: Services
) -> None:
    heard: list[tuple[str, str, AccountChange]] = []
    services.accounts.subscribe(lambda *change: heard.append(change))
    new = config(tmp_path, admins=["root@localhost"])
    Reloader(lambda: new, services, []).reload()
    assert heard == [("root", "localhost", AccountChange.ADMIN)]
    assert services.accounts.policy.admins == {"root@localhost"}


def test_new_limits_apply_to_the_next_connection(tmp_path: Path, services: Services) -> None:
    new = config(tmp_path, limits={"connections_per_source": 1})
    Reloader(lambda: new, services, []).reload()
    connections = services.guards.connections
    assert connections.open("192.0.2.7", "sip")
    assert not connections.open("192.0.2.7", "xmpp")


def test_sip_refuses_a_route_that_is_no_regular_expression_before_changing_anything(
    tmp_path: Path, services: Services
) -> None:
    sip = SipComponent(services, MemoryLocationStore())
    bad = config(tmp_path, sip={"routes": [{"user": "^9[", "target": "sip:192.0.2.1"}]})
    with pytest.raises(ConfigError, match="sip.routes: '\\^9\\[' is not a regular expression"):
        sip.apply(bad)
