"""Issue 16's reload: ``heron reload`` (and SIGHUP) apply a new configuration and new
certificates to a running heron without dropping what it carries.

One heron serves SIP (sipp), TURN with a worker process (aioice) and XMPP (slixmpp); the
reload comes while sipp's calls are ringing and connected, an allocation relays and two
clients are logged in, and a static route it adds carries the next call.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aioice.turn import create_turn_endpoint

from tests.interop.sip.support import (
    Sipp,
    SipServer,
    answering,
    call,
    callers_csv,
    register,
    start_sipp,
)
from tests.interop.turn.test_aioice import EchoPeer, Receiver
from tests.interop.xmpp.support import TIMEOUT, log_out, login
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, heron_cli, merge, serving

# Two servers with a TURN worker each and a dozen heron commands: past the default 120 s
# on a loaded machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

LOCALHOST = "127.0.0.1"
PASSWORDS = {"alice": "secret1", "bob": "secret2", "carol": "secret3"}
CALLS = 6
"""sipp's load: calls alice makes to bob, up to all of them at once."""


@dataclass
class Everything:
    heron: RunningHeron
    settings: dict[str, Any]
    sip: SipServer
    turn_port: int
    xmpp_port: int

    def reload(self, **changes: Any) -> subprocess.CompletedProcess[str]:
        """Write ``settings`` merged with ``changes`` and run ``heron reload``."""
        self.settings = merge(self.settings, changes)
        self.heron.config.write_text(render_toml(self.settings))
        return self.heron.cli("reload")


@contextmanager
def everything(directory: Path) -> Iterator[Everything]:
    """heron with SIP (UDP, TCP, TLS), TURN on UDP with one worker process, XMPP and the
    web port on loopback, and the accounts of ``PASSWORDS``."""
    sip_port, sip_tls, turn_port, xmpp_port, web_port = (free_port() for _ in range(5))
    settings = merge(
        base_settings(directory),
        {
            "sip": {
                "enabled": True,
                "listen": [f"{LOCALHOST}:{sip_port}"],
                "tls_listen": [f"{LOCALHOST}:{sip_tls}"],
            },
            "media": {"enabled": False},
            "turn": {
                "enabled": True,
                "workers": 2,
                "listen": [f"{LOCALHOST}:{turn_port}"],
                "tls_listen": [],
                "relay_addresses": [LOCALHOST],
                "allowed_peer_ranges": ["127.0.0.0/8"],
            },
            "xmpp": {
                "enabled": True,
                "listen": [f"{LOCALHOST}:{xmpp_port}"],
                "tls_listen": [],
                "s2s_listen": [],
                "s2s_tls_listen": [],
            },
            "web": {"listen": [f"{LOCALHOST}:{web_port}"]},
        },
    )
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "heron.toml"
    config.write_text(render_toml(settings))
    assert heron_cli(config, "cert").returncode == 0
    lines = "".join(f"{user}@localhost {password}\n" for user, password in PASSWORDS.items())
    imported = heron_cli(config, "user", "import", "-", stdin=lines)
    assert imported.returncode == 0, imported.stderr
    with serving(config) as heron:
        certificate = directory / "var" / "tls" / "heron.crt"
        sip = SipServer(heron, directory, sip_port, sip_tls, web_port, certificate)
        yield Everything(heron, settings, sip, turn_port, xmpp_port)
    log = "".join(heron.log)
    assert heron.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


def fingerprint(port: int) -> str:
    """SHA-256 of the certificate a new TLS connection to 127.0.0.1:``port`` is shown."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((LOCALHOST, port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def keep_alive(port: int) -> http.client.HTTPSConnection:
    """An HTTPS connection to the web port that stays open between requests."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(LOCALHOST, port, timeout=TIMEOUT, context=context)


def health(connection: http.client.HTTPSConnection) -> str:
    """GET /healthz on ``connection`` (the same one each time); its certificate's hash."""
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200 and response.read()
    assert isinstance(connection.sock, ssl.SSLSocket)
    der = connection.sock.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


def wait_for_log(heron: RunningHeron, text: str, count: int = 1) -> None:
    """Until heron (its processes together) logged ``count`` lines holding ``text``,
    waiting on the process itself."""
    for _ in range(1000):
        if sum(text in line for line in heron.log) >= count:
            return
        try:
            heron.process.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError("heron exited:\n" + "".join(heron.log))
    raise AssertionError(f"heron never logged {text!r}:\n" + "".join(heron.log))


def wait_for_invite(uas: Sipp) -> None:
    """Until sipp's trace shows a received INVITE: a call of the load is under way."""
    for _ in range(1000):
        if uas.trace_path.exists() and "INVITE sip:" in uas.trace_path.read_text(errors="replace"):
            return
        try:
            uas.process.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError("the callee exited before a call:\n" + uas.wait().explain())
    raise AssertionError("no call reached the callee")


async def test_reload_drops_no_call_allocation_or_session_and_routes_the_next_call(
    tmp_path: Path,
) -> None:
    with everything(tmp_path / "heron") as server:
        bob_port, pbx_port = free_port(), free_port()
        registered = register(server.sip, tmp_path / "reg", "bob", PASSWORDS["bob"], port=bob_port)
        assert registered.returncode == 0, registered.explain()
        alice, bob = [
            await login(f"{user}@localhost/reload", PASSWORDS[user], server.xmpp_port, _trusting())
            for user in ("alice", "bob")
        ]
        loop = asyncio.get_running_loop()
        peer_transport, peer = await loop.create_datagram_endpoint(
            EchoPeer, local_addr=(LOCALHOST, 0)
        )
        peer_address = peer_transport.get_extra_info("sockname")[:2]
        relay, receiver = await asyncio.wait_for(
            create_turn_endpoint(
                Receiver,
                server_addr=(LOCALHOST, server.turn_port),
                username="carol",
                password=PASSWORDS["carol"],
            ),
            TIMEOUT,
        )
        receiver.expected = 1
        relay.sendto(b"before", peer_address)
        await asyncio.wait_for(receiver.complete.wait(), TIMEOUT)

        with answering(
            tmp_path / "bob", "uas_answer.xml", "-m", str(CALLS), "-d", "1000", port=bob_port
        ) as uas:
            csv = callers_csv(tmp_path / "alice", ("alice", "alice", PASSWORDS["alice"]))
            load = start_sipp(
                tmp_path / "alice",
                "uac_call.xml",
                *("-s", "bob", "-inf", str(csv), "-m", str(CALLS), "-r", "4", "-l", str(CALLS)),
                port=free_port(),
                remote=server.sip.address,
            )
            wait_for_invite(uas)
            route = {"user": "^9[0-9]{3}$", "target": f"sip:{LOCALHOST}:{pbx_port}"}
            reloaded = await asyncio.to_thread(server.reload, sip={"routes": [route]})
            caller = await asyncio.to_thread(load.wait)
            callee = await asyncio.to_thread(uas.wait)
        assert reloaded.returncode == 0, reloaded.stderr
        assert reloaded.stdout == "reloaded\n", reloaded.stdout
        wait_for_log(server.heron, "configuration reloaded", count=2)  # and the TURN worker
        assert caller.returncode == 0, caller.explain()  # every call of the load succeeded
        assert len(callee.received("BYE")) == CALLS, callee.explain()

        # The allocation relays on, from the same relayed address.
        receiver.complete.clear()
        receiver.expected = 2
        relay.sendto(b"after", peer_address)
        await asyncio.wait_for(receiver.complete.wait(), TIMEOUT)
        assert [data for data, _ in receiver.received] == [b"before", b"after"]
        assert len(set(peer.sources)) == 1, peer.sources
        relay.close()
        peer_transport.close()

        # The XMPP sessions were never interrupted and still carry messages.
        assert not alice.ended.is_set() and not bob.ended.is_set()
        alice.send_message(mto="bob@localhost/reload", mbody="still here", mtype="chat")
        assert (await bob.next_message("still here"))["from"] == "alice@localhost/reload"
        await log_out([alice, bob])

        # The route the reload added carries the next call, to the PBX.
        with answering(tmp_path / "pbx", "uas_answer.xml", port=pbx_port) as pbx:
            routed = await asyncio.to_thread(
                call,
                server.sip,
                tmp_path / "routed",
                "uac_call.xml",
                "9001",
                "alice",
                auth=("alice", PASSWORDS["alice"]),
            )
            answered = await asyncio.to_thread(pbx.wait)
        assert routed.returncode == 0, routed.explain()
        assert answered.received("INVITE")[0].uri.startswith("sip:9001@"), answered.explain()


def _trusting() -> ssl.SSLContext:
    """slixmpp over STARTTLS: these tests are about reloading, not certificate checks."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_reload_serves_new_certificates_and_refuses_what_does_not_validate(
    tmp_path: Path,
) -> None:
    with everything(tmp_path / "heron") as server:
        certificate = server.sip.certificate
        web, sip_tls = server.sip.web_port, server.sip.tls_port
        old = file_fingerprint(certificate)
        assert fingerprint(web) == fingerprint(sip_tls) == old
        kept = keep_alive(web)
        assert health(kept) == old

        renewed = server.heron.cli("cert", "--force")
        assert renewed.returncode == 0, renewed.stderr
        new = file_fingerprint(certificate)
        assert new != old and fingerprint(web) == old  # not before the reload
        reloaded = server.reload()
        assert (reloaded.returncode, reloaded.stdout) == (0, "reloaded\n"), reloaded.stderr
        assert fingerprint(web) == fingerprint(sip_tls) == new
        assert health(kept) == old  # an open connection keeps its certificate

        # A file that does not validate: the error of a start, status 2, nothing changed.
        good = dict(server.settings)
        refused = server.reload(log_level="loud")
        started = server.heron.cli("serve")
        assert refused.returncode == started.returncode == 2
        assert refused.stderr == started.stderr
        assert refused.stderr.startswith("heron: error: ") and refused.stderr.count("\n") == 1
        assert health(kept) == old  # used at each step, so its keep-alive never runs out

        # The same file by SIGHUP: the server logs the refusal and serves on.
        server.heron.process.send_signal(signal.SIGHUP)
        wait_for_log(server.heron, "reload refused, still serving the previous configuration")
        server.settings = good
        server.heron.config.write_text(render_toml(good))
        assert fingerprint(web) == new
        assert health(kept) == old

        # A certificate and key that do not match: the server refuses, the CLI says why.
        key = certificate.with_suffix(".key")
        old_key = key.read_text()
        assert server.heron.cli("cert", "--force").returncode == 0
        key.write_text(old_key)
        mismatched = server.reload()
        assert mismatched.returncode == 2
        assert "not a matching PEM certificate and key" in mismatched.stderr
        assert fingerprint(web) == fingerprint(sip_tls) == new
        assert health(kept) == old

        # A web listener moved: the new address serves, the old one is closed, and the
        # connection it accepted goes on; a listener that cannot open refuses the reload.
        assert server.heron.cli("cert", "--force").returncode == 0
        moved_to = free_port()
        moved = server.reload(web={"listen": [f"{LOCALHOST}:{moved_to}"]})
        assert (moved.returncode, moved.stdout) == (0, "reloaded\n"), moved.stderr
        assert fingerprint(moved_to) == file_fingerprint(certificate)
        with pytest.raises(ConnectionRefusedError):
            fingerprint(web)
        assert health(kept) == old
        with socket.socket() as taken:
            taken.bind((LOCALHOST, 0))
            taken.listen()
            busy = f"{LOCALHOST}:{taken.getsockname()[1]}"
            refused = server.reload(web={"listen": [f"{LOCALHOST}:{moved_to}", busy]})
        assert refused.returncode == 2 and "web.listen" in refused.stderr, refused.stderr
        assert fingerprint(moved_to) == file_fingerprint(certificate)

        changed = server.reload(turn={"max_lifetime": 1800})
        assert changed.stdout == "reloaded; restart needed for: turn.max_lifetime\n"
