"""``sip.workers = 2`` with Redis (issue 15): the two SIP processes act as one server.

The UDP listener's SO_REUSEPORT group hands a datagram to the worker its source port
modulo 2 names (:mod:`heron.sip.workers`), so each test picks, by port parity, which
worker every sipp meets: the callee registers through worker 1 and answers from there,
the caller calls through worker 0 (the main process), whose counters show the callee's
responses relayed to it over Redis. Keys live under a prefix of the test's own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from heron.control import query
from tests.interop.sip.conftest import REDIS
from tests.interop.sip.support import (
    USERS,
    SipServer,
    answering,
    browser_registered,
    call,
    register,
    sip_server,
)
from tests.interop.sip.wire import (
    SDP,
    SipMessage,
    challenge_params,
    digest_credentials,
    encode,
    md5_challenge,
    new_branch,
    parse,
)
from tests.support.config import free_port

pytestmark = pytest.mark.interop

WORKERS = 2


def port_of_worker(worker: int) -> int:
    """A free port whose datagrams the SO_REUSEPORT group hands to ``worker``."""
    while (port := free_port()) % WORKERS != worker:
        pass
    return port


def worker_settings(prefix: str, **limits: Any) -> dict[str, Any]:
    return {
        "sip": {"workers": WORKERS},
        "redis": {"url": REDIS, "prefix": prefix},
        "media": {"enabled": False},
        "limits": limits,
    }


@contextmanager
def serving_workers(directory: Path, settings: dict[str, Any]) -> Iterator[SipServer]:
    """heron with its SIP worker serving: the worker says "heron serving" first, the main
    process once the worker has (:mod:`heron.inherit`)."""
    with sip_server(directory, settings=settings) as server:
        deadline = time.monotonic() + 60
        while "sip: 1 worker process(es) started" not in "".join(server.heron.log):
            assert time.monotonic() < deadline, "".join(server.heron.log)
            time.sleep(0.1)
        yield server


@pytest.fixture
def workers(tmp_path: Path, prefix: str) -> Iterator[SipServer]:
    with serving_workers(tmp_path / "heron", worker_settings(prefix)) as server:
        yield server


async def counters_of(server: SipServer) -> dict[str, int]:
    """The main process's (worker 0's) SIP counters."""
    rows = await query(server.directory / "var", "sip.counters")
    return {key: int(value) for key, value in rows[0].items()}


def counters(server: SipServer) -> dict[str, int]:
    return asyncio.run(counters_of(server))


def test_registered_through_one_worker_called_through_the_other(
    workers: SipServer, tmp_path: Path
) -> None:
    callee = port_of_worker(1)
    registered = register(workers, tmp_path / "register", "bob", USERS["bob"], port=callee)
    assert registered.returncode == 0, registered.explain()
    before = counters(workers)
    assert before["registrations"] == 0, before  # worker 1 took the REGISTER

    with answering(tmp_path / "callee", "uas_answer.xml", port=callee) as uas:
        caller = call(
            workers.address,
            tmp_path / "caller",
            "uac_call.xml",
            "bob",
            "alice",
            port=port_of_worker(0),
        )
        answered = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert answered.returncode == 0, answered.explain()
    # 100 Trying comes only when the callee takes over 200 ms to ring.
    assert [s for s, _ in caller.statuses() if s != 100] == [407, 180, 200, 200]
    after = counters(workers)
    # Worker 0 forwarded the INVITE (and the BYE); the callee's answers reached worker 1,
    # whose port they came from, and were relayed to worker 0's client transactions.
    assert after["forwarded"] >= 1, after
    assert after["in_received"] >= 2, after  # 180 and 200 at least
    assert "bob@localhost" in workers.registrations()


def test_a_lockout_counts_wrong_passwords_over_both_workers(tmp_path: Path, prefix: str) -> None:
    """Ten wrong passwords for dave, alternately through each worker, are ten for the
    account: the eleventh starts its wait, in Redis, where every worker reads it."""
    settings = worker_settings(prefix, account_guesses=10, source_guesses=100)
    with serving_workers(tmp_path / "heron", settings) as server:
        for attempt in range(11):
            run = register(
                server,
                tmp_path / f"guess-{attempt}",
                "dave",
                "wrong",
                port=port_of_worker(attempt % WORKERS),
                scenario="register_wrong_password.xml",
            )
            assert run.returncode == 0, run.explain()
            # Worker 0 checked every other guess: ten in all, not five per worker.
        assert counters(server)["auth_failures"] == 6
        client = redis.Redis.from_url(REDIS, decode_responses=True)
        count = client.hgetall(f"{prefix}guess:account:dave@localhost")
        client.close()

    assert int(count["n"]) == 11, count
    assert float(count["until"]) > float(count["last"]), count  # the account waits


class UdpPhone:
    """One REGISTER at a time over UDP from a port the given worker's member receives."""

    def __init__(self, server: SipServer, worker: int) -> None:
        self.server = server
        self.port = port_of_worker(worker)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", self.port))
        self.socket.settimeout(10)

    def register(self, cseq: int, authorization: str | None = None) -> SipMessage:
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={new_branch()};rport"),
            ("From", "<sip:bob@localhost>;tag=replay"),
            ("To", "<sip:bob@localhost>"),
            ("Call-ID", "replayed-register@127.0.0.1"),
            ("CSeq", f"{cseq} REGISTER"),
            ("Contact", f"<sip:bob@127.0.0.1:{self.port}>"),
            ("Max-Forwards", "70"),
            ("Expires", "60"),
        ]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        request = encode("REGISTER sip:localhost SIP/2.0", headers)
        self.socket.sendto(request.encode(), ("127.0.0.1", self.server.port))
        return parse(self.socket.recv(65535).decode())

    def close(self) -> None:
        self.socket.close()


def test_a_replayed_register_gets_a_fresh_challenge_and_counts_no_guess(
    workers: SipServer, prefix: str
) -> None:
    """Right credentials sent again with the nonce-count already used, as a phone
    retransmitting into a new transaction does, to the worker that took them and to the
    other: each gets 401 with stale=true, and nothing counts toward a lockout."""
    first, other = UdpPhone(workers, 0), UdpPhone(workers, 1)
    try:
        challenge = md5_challenge(first.register(1))
        credentials = digest_credentials(
            challenge, "REGISTER", "sip:localhost", "bob", USERS["bob"]
        )
        assert first.register(2, credentials).status == 200
        replies = [first.register(3, credentials), other.register(4, credentials)]
    finally:
        first.close()
        other.close()

    for replayed in replies:
        assert replayed.status == 401, replayed
        assert challenge_params(replayed.get("WWW-Authenticate")).get("stale") == "true"
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    guesses = list(client.scan_iter(match=f"{prefix}guess:account:*"))
    guesses += list(client.scan_iter(match=f"{prefix}guess:source:*"))
    client.close()
    assert guesses == []
    assert counters(workers)["auth_failures"] == 0


async def test_a_phone_on_one_worker_calls_a_browser_whose_socket_another_holds(
    workers: SipServer, tmp_path: Path
) -> None:
    """The browser's WebSocket is the main process's (the web server's); carol calls
    through worker 1, which hands the INVITE (and then the ACK and the BYE) to worker 0
    for that socket, and gets the browser's answers back from it over Redis."""
    async with browser_registered(workers, "alice") as browser:
        caller_done = asyncio.ensure_future(
            asyncio.to_thread(
                call,
                workers.address,
                tmp_path / "caller",
                "uac_call.xml",
                "alice",
                "carol",
                port=port_of_worker(1),
            )
        )
        invite = await asyncio.wait_for(browser.expect(lambda m: m.method == "INVITE"), 30)
        answered = await browser.answer_invite(invite, SDP)
        await answered.receive("ACK")
        await answered.answer(await answered.receive("BYE"))
        caller = await caller_done

    assert caller.returncode == 0, caller.explain()
    assert [s for s, _ in caller.statuses() if s >= 200] == [407, 200, 200], caller.explain()
    relayed = await counters_of(workers)
    assert relayed["out_received"] >= 3, relayed  # the INVITE, the ACK and the BYE at least
    assert relayed["in_sent"] >= 2, relayed  # the browser's 180 and 200 at least
