"""Two registered sipp users call each other through heron: a whole call, and a CANCEL.

The callee registers from the port its UAS then listens on, so heron reaches it by its
binding. What crossed the wire is read from both sipps' message traces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.sip.support import (
    LOCALHOST,
    USERS,
    SippRun,
    SipServer,
    answering,
    call,
    register,
)
from tests.interop.sip.wire import unsealed, uri_of
from tests.support.config import free_port

pytestmark = pytest.mark.interop


def registered_callee(server: SipServer, directory: Path, user: str, transport: str = "udp") -> int:
    port = free_port()
    run = register(
        server, directory / "register", user, USERS[user], port=port, transport=transport
    )
    assert run.returncode == 0, run.explain()
    return port


def proxy_route(server: SipServer, transport: str = "udp") -> str:
    parameter = "" if transport == "udp" else f";transport={transport}"
    return f"<sip:{server.address}{parameter};lr>"


@pytest.mark.parametrize(("transport", "callee_user"), [("udp", "bob"), ("tcp", "ivan")])
def test_call_through_the_proxy(
    shared_sip: SipServer, tmp_path: Path, transport: str, callee_user: str
) -> None:
    # Over TCP the registering connection is gone by the call: heron connects to the Contact.
    port = registered_callee(shared_sip, tmp_path, callee_user, transport)
    # Ringing after 300 ms: past 200 ms heron's INVITE server transaction sends 100 Trying.
    with answering(
        tmp_path / "callee", "uas_answer.xml", "-d", "300", port=port, transport=transport
    ) as uas:
        caller = call(
            shared_sip,
            tmp_path / "caller",
            "uac_call.xml",
            callee_user,
            "alice",
            transport=transport,
        )
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    assert caller.statuses() == [
        (407, "INVITE"),
        (100, "INVITE"),
        (180, "INVITE"),
        (200, "INVITE"),
        (200, "BYE"),
    ], caller.explain()
    # The callee saw heron's Record-Route and heron's Via on top of the caller's.
    via = f"SIP/2.0/{transport.upper()}"
    invite = callee.received("INVITE")[0]
    assert unsealed(invite.all("Record-Route")) == [proxy_route(shared_sip, transport)], invite
    assert ";hs=" in invite.get("Record-Route"), invite  # sealed: see heron.sip.seal
    assert [v.split(";")[0] for v in invite.all("Via")] == [
        f"{via} {shared_sip.address}",
        f"{via} {LOCALHOST}:{caller_port(caller)}",
    ], invite
    assert invite.get("Max-Forwards") == "69", invite
    # The caller's ACK and BYE went to heron by the route set (loose routing), to the
    # callee's Contact, and arrived through heron: its Via on top.
    for method in ("ACK", "BYE"):
        sent = caller.sent(method)[-1]
        assert unsealed(sent.all("Route")) == [proxy_route(shared_sip, transport)], sent
        assert sent.uri == uri_of(callee.sent("200")[0].get("Contact")), sent
        received = callee.received(method)[0]
        assert received.get("Via").startswith(f"{via} {shared_sip.address};"), received
        assert not received.all("Route"), received  # heron took its own Route off


def caller_port(run: SippRun) -> int:
    via = run.sent("INVITE")[0].get("Via")
    return int(via.split()[1].split(";")[0].rsplit(":", 1)[1])


def test_cancelled_call(shared_sip: SipServer, tmp_path: Path) -> None:
    port = registered_callee(shared_sip, tmp_path, "frank")
    with answering(tmp_path / "callee", "uas_cancel.xml", port=port) as uas:
        caller = call(shared_sip, tmp_path / "caller", "uac_cancel.xml", "frank", "alice")
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    finals = [s for s in caller.statuses() if s[0] >= 200]
    assert finals == [(407, "INVITE"), (200, "CANCEL"), (487, "INVITE")], caller.explain()
    # heron took its own Via off the 487 and relayed it on the caller's INVITE transaction,
    # the caller's Via filled in with where its INVITE came from (RFC 3581 §4).
    sent = caller.sent("INVITE")[-1].all("Via")
    port = sent[0].split(";")[0].rsplit(":", 1)[1]
    filled = [sent[0].replace(";rport", f";rport={port}") + ";received=127.0.0.1", *sent[1:]]
    assert caller.received("487")[0].all("Via") == filled
    # The callee got heron's own CANCEL for the branch it forwarded (RFC 3261 §16.10):
    # the INVITE's top Via branch, then heron's ACK for the 487 on that branch too.
    invite, cancel = callee.received("INVITE")[0], callee.received("CANCEL")[0]
    assert cancel.get("Via") == invite.get("Via"), (invite, cancel)
    assert cancel.get("CSeq") == invite.get("CSeq").replace("INVITE", "CANCEL"), cancel
    ack = callee.received("ACK")[0]
    assert ack.get("Via") == invite.get("Via"), ack
    assert ack.get("To") == callee.sent("487")[0].get("To"), ack


def test_response_that_lost_the_callers_via_is_not_relayed(
    shared_sip: SipServer, tmp_path: Path
) -> None:
    # The callee's 180 carries heron's Via only; its 200 is whole. With its own Via off
    # that 180 has none left: it was meant for heron and MUST NOT be forwarded (RFC 3261
    # §16.7 step 3); a Via-less response is malformed for the caller (§8.1.1.7).
    port = registered_callee(shared_sip, tmp_path, "heidi")
    with answering(tmp_path / "callee", "uas_ring_without_caller_via.xml", port=port) as uas:
        caller = call(shared_sip, tmp_path / "caller", "uac_call.xml", "heidi", "alice")
        callee = uas.wait()

    assert caller.returncode == 0, caller.explain()
    assert callee.returncode == 0, callee.explain()
    without_via = "\n".join(str(m) for m in caller.received() if not m.all("Via"))
    assert not without_via, "heron relayed responses without a Via:\n" + without_via
