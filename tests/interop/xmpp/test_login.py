"""RFC 6120 logins by slixmpp: STARTTLS and XEP-0368 direct TLS, SCRAM, binding."""

from __future__ import annotations

import asyncio

import pytest

from tests.interop.xmpp.support import DOMAIN, TIMEOUT, XmppServer, connect, logged_in


async def test_rfc6120_starttls_scram_login_binds_the_requested_resource(
    shared_xmpp: XmppServer,
) -> None:
    async with logged_in(shared_xmpp, "alice") as (alice,):
        assert str(alice.boundjid) == f"alice@{DOMAIN}/test"
        assert alice.is_component is False
        mechanism = alice.plugin["feature_mechanisms"].mech.name
        assert mechanism.startswith("SCRAM-SHA-"), mechanism


async def test_xep0368_direct_tls_login(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "bob", direct_tls=True) as (bob,):
        assert str(bob.boundjid) == f"bob@{DOMAIN}/test"


async def test_rfc6120_6_5_wrong_password_is_refused(shared_xmpp: XmppServer) -> None:
    with pytest.raises(AssertionError, match="could not log in"):
        await connect(shared_xmpp, "carol", password="wrong")


async def test_rfc6120_7_7_2_2_a_second_login_with_the_same_resource_replaces_the_first(
    shared_xmpp: XmppServer,
) -> None:
    async with logged_in(shared_xmpp, "dave") as (first,):
        async with logged_in(shared_xmpp, "dave") as (second,):
            assert str(second.boundjid) == f"dave@{DOMAIN}/test"
            await first.ended.wait()


async def test_password_guessing_does_not_lock_out_a_device_that_logged_in_before(
    shared_xmpp: XmppServer,
) -> None:
    """Wrong passwords make further guesses for the account wait (heron.guesses), except
    from a network that proved the password before: the owner's own devices keep working.
    Guesses from elsewhere are refused during the wait: tests/security/test_xmpp_guessing.py."""
    async with logged_in(shared_xmpp, "eve"):
        pass  # the right password works before the guessing
    for _ in range(6):
        with pytest.raises(AssertionError, match="could not log in"):
            await connect(shared_xmpp, "eve", password="guess")
    async with logged_in(shared_xmpp, "eve"):
        pass


async def test_heron_xmpp_sessions_lists_who_is_online(shared_xmpp: XmppServer) -> None:
    async with logged_in(shared_xmpp, "alice", resource="laptop"):
        listed = shared_xmpp.heron.cli("xmpp", "sessions")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if "alice@" in line)
    assert f"alice@{DOMAIN}/laptop" in line
    assert "tcp://127.0.0.1" in line
    assert "available" in line


async def test_a_password_change_from_the_cli_logs_the_account_out_at_once(
    shared_xmpp: XmppServer,
) -> None:
    async with logged_in(shared_xmpp, "zed") as (zed,):
        changed = await asyncio.to_thread(
            shared_xmpp.heron.cli,
            "user",
            "passwd",
            f"zed@{DOMAIN}",
            "--password-stdin",
            stdin="a new secret\n",
        )
        assert changed.returncode == 0, changed.stderr
        await asyncio.wait_for(zed.ended.wait(), TIMEOUT)
    with pytest.raises(AssertionError, match="could not log in"):
        await connect(shared_xmpp, "zed")
    async with logged_in(shared_xmpp, "zed", password="a new secret") as (again,):
        assert str(again.boundjid) == f"zed@{DOMAIN}/test"


async def test_a_password_change_from_the_cli_ends_the_cached_keys_at_once(
    shared_xmpp: XmppServer,
) -> None:
    """The server keeps the SCRAM keys of accounts it looked up; the change the CLI
    announces drops them, so the old password fails on the very next login."""
    async with logged_in(shared_xmpp, "yan"):
        pass  # the keys are cached now
    changed = await asyncio.to_thread(
        shared_xmpp.heron.cli,
        "user",
        "passwd",
        f"yan@{DOMAIN}",
        "--password-stdin",
        stdin="another secret\n",
    )
    assert changed.returncode == 0, changed.stderr
    with pytest.raises(AssertionError, match="could not log in"):
        await connect(shared_xmpp, "yan")
    async with logged_in(shared_xmpp, "yan", password="another secret") as (again,):
        assert str(again.boundjid) == f"yan@{DOMAIN}/test"
