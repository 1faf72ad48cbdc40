"""Issue 10 item 4: TURN quotas were counted per REST username.

One account held 30 allocations with 30 fresh ``heron turn credentials`` usernames
against a ``user_quota`` of 20. Quotas now count the account behind a REST name,
click-to-call's anonymous names count by the visitor's address, an allocation does
not outlive its credential (a Refresh after the expiry is refused), and a password
change ends the account's allocations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from heron.credentials import TurnSecret
from tests.security.support import USERS, Target
from tests.security.turn_wire import (
    ALLOCATE_REQUEST,
    REFRESH_REQUEST,
    SUCCESS,
    RawTurnClient,
    allocate,
    turn_udp,
    with_turn_workers,
)

USER_QUOTA = 20
"""``turn.user_quota`` by default."""


def rest_secret(target: Target) -> TurnSecret:
    """The secret ``heron turn credentials`` signs with (the target's own file)."""
    return TurnSecret((target.data_dir / "turn_secret").read_bytes().strip())


def test_fresh_rest_usernames_do_not_multiply_the_quota(heron: Target) -> None:
    secret, now = rest_secret(heron), time.time()
    printed = heron.heron.cli("turn", "credentials", "roland@localhost", "--ttl", "3600")
    username = printed.stdout.split()[1]
    assert printed.stdout.split()[3] == secret.password(username)  # the same scheme
    with ExitStack() as stack:
        answers = []
        for n in range(30):
            issued = secret.issue("roland", now=now, ttl=3600 + n)  # a new name each time
            client = RawTurnClient(turn_udp(heron), issued.username, issued.password)
            answers.append(allocate(stack.enter_context(client)))

        granted = [a for a in answers if a.kind == ALLOCATE_REQUEST | SUCCESS]
        assert len(granted) == USER_QUOTA
        assert {a.error for a in answers if a not in granted} == {486}
        # roland's own password counts in the same quota.
        own = stack.enter_context(RawTurnClient(turn_udp(heron), "roland", USERS["roland"]))
        assert allocate(own).error == 486


def test_anonymous_names_count_per_visitor_address(heron: Target) -> None:
    secret, now = rest_secret(heron), time.time()
    with ExitStack() as stack:

        def visit(local: str, n: int) -> int | None:
            issued = secret.issue(f"anonymous-{n:012x}", now=now, ttl=300)
            client = RawTurnClient(turn_udp(heron), issued.username, issued.password, local)
            return allocate(stack.enter_context(client)).error

        answers = [visit("127.0.0.3", n) for n in range(USER_QUOTA + 1)]
        assert answers == [None] * USER_QUOTA + [486]
        assert visit("127.0.0.4", 999) is None


def test_a_refresh_after_the_credential_expired_is_refused(heron: Target) -> None:
    issued = rest_secret(heron).issue("roland", now=time.time(), ttl=2)
    with RawTurnClient(turn_udp(heron), issued.username, issued.password) as client:
        assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS
        while time.time() <= issued.expires + 1:  # the credential's own end, by the clock
            time.sleep(0.2)
        refused = client.request(REFRESH_REQUEST)
        assert refused.error == 401, refused


def test_a_password_change_ends_the_accounts_allocations(heron: Target) -> None:
    issued = rest_secret(heron).issue("roland", now=time.time(), ttl=3600)
    with (
        RawTurnClient(turn_udp(heron), "roland", USERS["roland"]) as own,
        RawTurnClient(turn_udp(heron), issued.username, issued.password) as rest,
        RawTurnClient(turn_udp(heron), "mallory", USERS["mallory"]) as other,
    ):
        for client in (own, rest, other):
            assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS
        changed = heron.heron.cli("user", "passwd", "roland@localhost", "--password", "new-one")
        assert changed.returncode == 0, changed.stderr

        assert own.request(REFRESH_REQUEST).error in (401, 437)
        assert rest.request(REFRESH_REQUEST).error == 437  # the REST name still checks out
        assert other.request(REFRESH_REQUEST).kind == REFRESH_REQUEST | SUCCESS
    assert "turn: 2 allocation(s) of roland@localhost ended (password)" in heron.log()


@pytest.fixture
def with_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with with_turn_workers(tmp_path_factory.mktemp("heron")) as running:
        yield running


def test_a_password_change_ends_allocations_in_every_turn_worker(with_workers: Target) -> None:
    server = turn_udp(with_workers)
    with ExitStack() as stack:
        clients = [
            stack.enter_context(
                RawTurnClient(server, "roland", USERS["roland"], local=f"127.0.0.{n}")
            )
            for n in range(20, 32)
        ]
        for client in clients:
            assert allocate(client).kind == ALLOCATE_REQUEST | SUCCESS
        changed = with_workers.heron.cli(
            "user", "passwd", "roland@localhost", "--password", "x-new"
        )
        assert changed.returncode == 0, changed.stderr

        # Workers hear of it within their next sweep (a second); until then a Refresh may
        # pass. Their cached keys alone would keep the old password for 30 s.
        deadline = time.monotonic() + 10
        for client in clients:
            while (answer := client.request(REFRESH_REQUEST)).error is None:
                assert time.monotonic() < deadline, "an allocation outlived the password"
                time.sleep(0.2)
            assert answer.error in (401, 437), answer
