"""Who may call whom through heron, as Kamailio's default configuration decides it
(sanity and Max-Forwards first, then authentication, then the location lookup):

- a request for a local user from another domain, without credentials: 403
  (neither a trusted peer nor ``open_federation``);
- an authenticated local caller to a user that does not exist: 404;
- to a user that exists but has no binding: 480 (RFC 3261 §21.4.18);
- Max-Forwards: 0 on a request to forward: 483 (RFC 3261 §16.3 step 3), before any
  challenge;
- a local From that the credentials do not match: 403.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.sip.support import USERS, SippRun, SipServer, call, run_sipp
from tests.support.config import free_port

pytestmark = pytest.mark.interop


def unauthenticated(
    server: SipServer, directory: Path, callee: str, caller: str, max_forwards: int = 70
) -> SippRun:
    return run_sipp(
        directory,
        "invite_refused.xml",
        "-s",
        callee,
        port=free_port(),
        remote=server.address,
        keys={"from": caller, "max_forwards": str(max_forwards)},
    )


def final_statuses(run: SippRun) -> list[int]:
    return [status for status, method in run.statuses() if status >= 200 and method == "INVITE"]


def test_foreign_caller_without_credentials_is_forbidden(
    shared_sip: SipServer, tmp_path: Path
) -> None:
    run = unauthenticated(shared_sip, tmp_path, "bob", "eve@example.com")

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [403], run.explain()


def test_unknown_user_is_not_found(shared_sip: SipServer, tmp_path: Path) -> None:
    run = call(shared_sip, tmp_path, "invite_refused_auth.xml", "nobody", "alice")

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [407, 404], run.explain()


def test_user_without_binding_is_unavailable(shared_sip: SipServer, tmp_path: Path) -> None:
    run = call(shared_sip, tmp_path, "invite_refused_auth.xml", "erin", "alice")

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [407, 480], run.explain()


def test_max_forwards_zero_is_too_many_hops(shared_sip: SipServer, tmp_path: Path) -> None:
    run = unauthenticated(shared_sip, tmp_path, "bob", "alice@localhost", max_forwards=0)

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [483], run.explain()


def test_from_another_local_user_is_forbidden(shared_sip: SipServer, tmp_path: Path) -> None:
    # alice's From, carol's (valid) credentials: heron must not let carol call as alice.
    run = call(
        shared_sip,
        tmp_path,
        "invite_refused_auth.xml",
        "erin",
        "alice",
        auth=("carol", USERS["carol"]),
    )

    assert run.returncode == 0, run.explain()
    assert final_statuses(run) == [407, 403], run.explain()
