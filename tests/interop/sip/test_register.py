"""REGISTER with digest authentication over UDP, TCP and TLS.

Debian's sipp is built without OpenSSL ("To use a TLS transport you must compile SIPp
with OpenSSL"), so over TLS sipp speaks through socat, which verifies heron's
self-signed certificate as a phone configured with it would; :mod:`tests.interop.sip.wire`
also registers over Python's ssl directly.

Wrong passwords go to dave, whom no other test logs in as: three failures stay far below
heron's lockout (10 per user, 30 per address, in 15 minutes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.sip.support import LOCALHOST, USERS, SipServer, register, tls_relay
from tests.interop.sip.wire import StreamChannel, UserAgent, trusting
from tests.support.config import free_port

pytestmark = pytest.mark.interop

USER = "dave"
WRONG = "not-" + USERS[USER]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_with_digest(shared_sip: SipServer, tmp_path: Path, transport: str) -> None:
    port = free_port()
    run = register(shared_sip, tmp_path, USER, USERS[USER], port=port, transport=transport)

    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(401, "REGISTER"), (200, "REGISTER")], run.explain()
    challenge = run.received("401")[0].get("WWW-Authenticate")
    assert 'realm="localhost"' in challenge and "algorithm=MD5" in challenge, challenge
    # RFC 3261 §10.3 step 8: the 200 lists the bindings, this one with its expiry.
    contacts = run.received("200")[0].all("Contact")
    ours = [c for c in contacts if f"@{LOCALHOST}:{port};" in c]
    assert len(ours) == 1 and "expires=" in ours[0], contacts


@pytest.mark.parametrize(
    ("password", "statuses"),
    [(USERS[USER], [401, 200]), (WRONG, [401, 401])],
    ids=["right password", "wrong password"],
)
def test_sipp_register_over_tls(
    shared_sip: SipServer, tmp_path: Path, password: str, statuses: list[int]
) -> None:
    port = free_port()
    scenario = "register.xml" if password == USERS[USER] else "register_wrong_password.xml"
    with tls_relay(shared_sip) as relay:
        run = register(
            shared_sip,
            tmp_path,
            USER,
            password,
            port=port,
            transport="tcp",
            scenario=scenario,
            remote=f"{LOCALHOST}:{shared_sip.tls_port}",
            send_to=relay,
        )
        listed = shared_sip.registrations()

    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(status, "REGISTER") for status in statuses], run.explain()
    # heron saw a TLS connection: the binding, if any, is over TLS from socat's address.
    registered = [line for line in listed.splitlines() if f"{LOCALHOST}:{port};" in line]
    if statuses[-1] == 200:
        assert len(registered) == 1 and "tls://127.0.0.1:" in registered[0], listed
    else:
        assert registered == [], listed


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_with_wrong_password_is_challenged_again(
    shared_sip: SipServer, tmp_path: Path, transport: str
) -> None:
    port = free_port()
    run = register(
        shared_sip,
        tmp_path,
        USER,
        WRONG,
        port=port,
        transport=transport,
        scenario="register_wrong_password.xml",
    )

    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(401, "REGISTER"), (401, "REGISTER")], run.explain()
    assert run.sent("REGISTER")[1].get("Authorization").startswith("Digest ")
    assert f"{LOCALHOST}:{port}" not in shared_sip.registrations()


async def test_register_over_tls(shared_sip: SipServer) -> None:
    channel = await StreamChannel.connect(
        LOCALHOST, shared_sip.tls_port, trusting(str(shared_sip.certificate))
    )
    host, port = channel.local
    agent = UserAgent(
        channel,
        USER,
        USERS[USER],
        sent_by=f"{host}:{port}",
        contact=f"<sip:{USER}@{host}:{port};transport=tls>",
    )
    try:
        challenge, final = await agent.register(expires=300, outbound=False)
        assert challenge.status == 401, challenge
        assert final.status == 200, final
        assert any(f"{host}:{port};transport=tls" in c for c in final.all("Contact")), final
        listed = shared_sip.registrations()
        assert f"tls://{host}:{port}" in listed, listed
    finally:
        await channel.close()


async def test_register_over_tls_with_wrong_password(shared_sip: SipServer) -> None:
    channel = await StreamChannel.connect(
        LOCALHOST, shared_sip.tls_port, trusting(str(shared_sip.certificate))
    )
    host, port = channel.local
    agent = UserAgent(
        channel,
        USER,
        USERS[USER],
        sent_by=f"{host}:{port}",
        contact=f"<sip:{USER}@{host}:{port};transport=tls>",
    )
    try:
        challenge, final = await agent.register(expires=300, password=WRONG, outbound=False)
        assert challenge.status == 401, challenge
        assert final.status == 401, final
        assert f"{host}:{port}" not in shared_sip.registrations()
    finally:
        await channel.close()
