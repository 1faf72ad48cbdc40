"""sipp through the mux port (issue 13): REGISTER and a whole call over TCP (a SIP
request line names SIP), and over TLS through socat, whose ClientHello offers no ALPN
but names ``SIP_NAME``, which ``mux.sni`` gives to SIP. heron's SIP has no listener of
its own here, so every answer came through the mux.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.mux.support import ACCOUNTS, SIP_NAME, MuxHeron
from tests.interop.sip.support import (
    LOCALHOST,
    SippRun,
    answering,
    call,
    callers_csv,
    register,
    run_sipp,
    tls_relay,
)
from tests.interop.sip.test_call import proxy_route, registered_callee
from tests.interop.sip.wire import unsealed
from tests.support.config import free_port

pytestmark = pytest.mark.interop

CALL = [(407, "INVITE"), (180, "INVITE"), (200, "INVITE"), (200, "BYE")]
"""What the caller of a whole call receives, but for a 100 Trying, which heron sends only
when the callee takes over 200 ms (see tests/interop/sip/test_call.py)."""


def registered_line(server: MuxHeron, port: int) -> list[str]:
    """``heron sip registrations`` lines of the binding registered from ``port``."""
    listed = server.sip.registrations()
    return [line for line in listed.splitlines() if f"{LOCALHOST}:{port};" in line]


def test_rfc3261_register_over_tls_by_server_name_through_the_mux(
    shared_mux: MuxHeron, tmp_path: Path
) -> None:
    port = free_port()
    sip = shared_mux.sip
    with tls_relay(sip, server_name=SIP_NAME) as relay:
        run = register(
            sip,
            tmp_path,
            "alice",
            ACCOUNTS["alice"],
            port=port,
            transport="tcp",
            remote=sip.address,
            send_to=relay,
        )
        lines = registered_line(shared_mux, port)

    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(401, "REGISTER"), (200, "REGISTER")], run.explain()
    assert len(lines) == 1 and "tls://127.0.0.1:" in lines[0], lines


def test_rfc3261_register_and_call_over_tcp_through_the_mux(
    shared_mux: MuxHeron, tmp_path: Path
) -> None:
    sip = shared_mux.sip
    # registered_callee asserts sipp's REGISTER got its 401, then its 200.
    port = registered_callee(sip, tmp_path, "ivan", "tcp")
    with answering(tmp_path / "callee", "uas_answer.xml", port=port, transport="tcp") as uas:
        caller = call(sip, tmp_path / "caller", "uac_call.xml", "ivan", "alice", transport="tcp")
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert answers(caller) == CALL, caller.explain()
    # heron's Record-Route names the mux port: the way back in is the one port too.
    assert route_set(callee) == [proxy_route(sip, "tcp")], callee.explain()


def test_rfc3261_call_over_tls_by_server_name_through_the_mux(
    shared_mux: MuxHeron, tmp_path: Path
) -> None:
    sip = shared_mux.sip
    port = registered_callee(sip, tmp_path, "bob", "tcp")
    csv = callers_csv(tmp_path / "caller", ("alice", "alice", ACCOUNTS["alice"]))
    with (
        answering(tmp_path / "callee", "uas_answer.xml", port=port, transport="tcp") as uas,
        tls_relay(sip, server_name=SIP_NAME) as relay,
    ):
        caller = run_sipp(
            tmp_path / "caller",
            "uac_call.xml",
            *("-rsa", relay, "-s", "bob", "-inf", str(csv)),
            port=free_port(),
            remote=sip.address,
            transport="tcp",
        )
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert answers(caller) == CALL, caller.explain()
    # Received over TLS, sent on over TCP: heron records both sides, each the mux port.
    assert route_set(callee) == [proxy_route(sip, "tcp"), f"<sips:{sip.address};transport=tls;lr>"]


def answers(run: SippRun) -> list[tuple[int, str]]:
    return [status for status in run.statuses() if status[0] != 100]


def route_set(callee: SippRun) -> list[str]:
    """The Record-Route entries of the INVITE the callee received, seals taken off."""
    return unsealed(callee.received("INVITE")[0].all("Record-Route"))
