"""Fixtures of the federation interop tests: a test CA, a DNS stub with a resolv.conf, and
heron, Prosody and ejabberd peers, each in its own domain (see
tests/support/federation/README.md)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.interop.xmpp.federation.support import (
    EJABBERD_DOMAIN,
    HERON_DOMAIN,
    PEER_USERS,
    PROSODY_DOMAIN,
    StartPeer,
)
from tests.support.federation.ca import TestCa, make_ca
from tests.support.federation.dns import FederationDns, federation_dns
from tests.support.federation.heron_peer import heron
from tests.support.federation.reference import ReferenceServer, ejabberd, prosody


@pytest.fixture(scope="session")
def federation_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(tmp_path_factory.mktemp("federation-ca"))


@pytest.fixture(scope="session")
def federation_resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FederationDns]:
    """The DNS stub every server of the worker resolves with; peers publish themselves."""
    with federation_dns(tmp_path_factory.mktemp("federation-dns")) as dns:
        yield dns


def _module_users(request: pytest.FixtureRequest) -> dict[str, str]:
    """The accounts of a module's peers: the module's own ``PEER_USERS`` when it defines one
    (its tests need more accounts), otherwise :data:`PEER_USERS`."""
    users: dict[str, str] = getattr(request.module, "PEER_USERS", PEER_USERS)
    return users


@pytest.fixture(scope="module")
def heron_peer(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    federation_ca: TestCa,
    federation_resolver: FederationDns,
) -> Iterator[ReferenceServer]:
    """heron for ``heron.example`` (MUC ``conference.heron.example``), valid certificate."""
    with ExitStack() as stack:
        start = StartPeer(
            heron, tmp_path_factory.mktemp("heron"), federation_ca, federation_resolver, stack
        )
        yield start(HERON_DOMAIN, users=_module_users(request))


@pytest.fixture(scope="module")
def prosody_peer(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    federation_ca: TestCa,
    federation_resolver: FederationDns,
) -> Iterator[ReferenceServer]:
    """Prosody for ``prosody.example`` (MUC ``conference.prosody.example``), valid certificate."""
    with ExitStack() as stack:
        start = StartPeer(
            prosody, tmp_path_factory.mktemp("prosody"), federation_ca, federation_resolver, stack
        )
        yield start(PROSODY_DOMAIN, users=_module_users(request))


@pytest.fixture(scope="module")
def ejabberd_peer(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    federation_ca: TestCa,
    federation_resolver: FederationDns,
) -> Iterator[ReferenceServer]:
    """ejabberd for ``ejabberd.example`` (MUC ``conference.ejabberd.example``), valid certificate;
    module-scoped because its Erlang VM takes seconds to start."""
    with ExitStack() as stack:
        start = StartPeer(
            ejabberd, tmp_path_factory.mktemp("ejabberd"), federation_ca, federation_resolver, stack
        )
        yield start(EJABBERD_DOMAIN, users=_module_users(request))


@pytest.fixture
def start_heron(
    tmp_path: Path, federation_ca: TestCa, federation_resolver: FederationDns
) -> Iterator[StartPeer]:
    """One more heron for this test, in a domain of its own (see :class:`StartPeer`)."""
    with ExitStack() as stack:
        yield StartPeer(heron, tmp_path, federation_ca, federation_resolver, stack)


@pytest.fixture(scope="module")
def start_module_heron(
    tmp_path_factory: pytest.TempPathFactory,
    federation_ca: TestCa,
    federation_resolver: FederationDns,
) -> Iterator[StartPeer]:
    """Like ``start_heron``, for herons several tests of a module share (each heron takes
    seconds to start); stopped after the module."""
    with ExitStack() as stack:
        yield StartPeer(
            heron, tmp_path_factory.mktemp("herons"), federation_ca, federation_resolver, stack
        )


@pytest.fixture
def start_prosody(
    tmp_path: Path, federation_ca: TestCa, federation_resolver: FederationDns
) -> Iterator[StartPeer]:
    """One more Prosody for this test, in a domain of its own (see :class:`StartPeer`)."""
    with ExitStack() as stack:
        yield StartPeer(prosody, tmp_path, federation_ca, federation_resolver, stack)


@pytest.fixture
def start_ejabberd(
    tmp_path: Path, federation_ca: TestCa, federation_resolver: FederationDns
) -> Iterator[StartPeer]:
    """One more ejabberd for this test, in a domain of its own (see :class:`StartPeer`)."""
    with ExitStack() as stack:
        yield StartPeer(ejabberd, tmp_path, federation_ca, federation_resolver, stack)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A failed test's report carries the logs of the reference servers it used."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            servers = value.started if isinstance(value, StartPeer) else [value]
            for server in servers:
                if isinstance(server, ReferenceServer):
                    report.sections.append((f"{name} {server.domain} logs", server.logs()))
