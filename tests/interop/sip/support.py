"""heron's SIP service and sipp, for the interop tests here.

sipp runs with ``-trace_msg`` into a directory of its own, so a test asserts on the
very messages that crossed the wire. Every sipp gets a global ``-timeout`` (it fails
by itself) and a subprocess timeout above it (a hung sipp fails the test, not the run).
A sipp UAS is waited for by its socket appearing in /proc/net, never by a sleep.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.sip.wire import SipMessage, UserAgent, WebSocketChannel, parse, trusting, uri_of
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, merge, provision, serving
from tests.support.tools import require_tool

LOCALHOST = "127.0.0.1"
DOMAIN = "localhost"
SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_TIMEOUT = 15
"""Seconds sipp gives itself (-timeout, failing): far above any call here."""
TRANSPORTS = {"udp": "u1", "tcp": "t1"}

USERS = {
    "alice": "secret",
    "bob": "secret2",
    "carol": "secret3",
    "dave": "secret4",
    "erin": "secret5",
    "frank": "secret6",
    "grace": "secret7",
    "heidi": "secret8",
    "ivan": "secret9",
}
"""The shared server's accounts. Each test registers its own callee, so no test's
leftover binding forks another's call: bob and ivan (sipp calls over UDP and TCP),
frank (CANCEL), grace (called from the WebSocket), heidi (a broken callee), dave
(REGISTER tests), alice (the WebSocket user); carol and alice call; erin never
registers (480)."""


def sipp_binary() -> str:
    """sipp's path (fails on CI when missing)."""
    return require_tool("sipp", "sip-tester")


@dataclass
class SipServer:
    heron: RunningHeron
    directory: Path
    port: int
    """UDP and TCP listener."""
    tls_port: int
    web_port: int
    certificate: Path

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"wss://{LOCALHOST}:{self.web_port}/sip"

    def registrations(self) -> str:
        """What ``heron sip registrations`` prints."""
        listed = self.heron.cli("sip", "registrations")
        assert listed.returncode == 0, listed.stderr
        return listed.stdout


def sip_settings(port: int, tls_port: int) -> dict[str, Any]:
    """SIP on loopback; no media bridge, so SDP passes as it came (``test_media`` turns
    it on)."""
    return {
        "sip": {
            "enabled": True,
            "listen": [f"{LOCALHOST}:{port}"],
            "tls_listen": [f"{LOCALHOST}:{tls_port}"],
        },
        "media": {"enabled": False},
    }


@contextmanager
def sip_server(
    directory: Path, users: Mapping[str, str] = USERS, settings: dict[str, Any] | None = None
) -> Iterator[SipServer]:
    """heron with SIP on UDP, TCP, TLS and WebSocket on loopback; ``users`` by local part,
    ``settings`` over the defaults.

    The accounts go in with one ``heron user import``: one process for all of them,
    where a ``heron user add`` each cost a second or so apiece.
    """
    port, tls_port = free_port(), free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "heron.toml"
    merged = merge(base_settings(directory), sip_settings(port, tls_port))
    config.write_text(render_toml(merge(merged, settings or {})))
    provision(config, {f"{user}@{DOMAIN}": password for user, password in users.items()})
    with serving(config) as heron:
        yield _server(heron, directory, port, tls_port)
    _stopped_cleanly(heron)


@contextmanager
def restarted(server: SipServer) -> Iterator[SipServer]:
    """``heron serve`` again on a stopped server's configuration: same data directory,
    certificate, accounts and ports (``running_heron`` would add a certificate and the
    users anew, and both exist)."""
    with serving(server.heron.config) as heron:
        yield _server(heron, server.directory, server.port, server.tls_port)
    _stopped_cleanly(heron)


def _server(heron: RunningHeron, directory: Path, port: int, tls_port: int) -> SipServer:
    web = re.findall(r"web listening on https://[^:]+:(\d+)/", "".join(heron.log))
    certificate = directory / "var" / "tls" / "heron.crt"
    return SipServer(heron, directory, port, tls_port, int(web[0]), certificate)


def _stopped_cleanly(heron: RunningHeron) -> None:
    log = "".join(heron.log)
    assert heron.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


# --- sipp ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traced:
    """One message from sipp's -trace_msg log."""

    sent: bool
    message: SipMessage

    def __str__(self) -> str:
        return ("sent:\n" if self.sent else "received:\n") + str(self.message)


_TRACE_SEPARATOR = re.compile(r"^-{20,} \d{4}-\d\d-\d\d[ \t][\d:.]+$", re.MULTILINE)


def read_trace(path: Path) -> list[Traced]:
    if not path.exists():
        return []
    traced = []
    for block in _TRACE_SEPARATOR.split(path.read_text(errors="replace")):
        title, _, text = block.strip("\n").partition("\n")
        if " message " not in title:
            continue
        traced.append(Traced(" sent " in title, parse(text.strip("\n"))))
    return traced


@dataclass
class SippRun:
    """A finished sipp: exit code, what it printed, the messages it sent and received."""

    returncode: int
    output: str
    trace: list[Traced]

    def sent(self, method: str | None = None) -> list[SipMessage]:
        return [t.message for t in self.trace if t.sent and _is(t.message, method)]

    def received(self, method: str | None = None) -> list[SipMessage]:
        return [t.message for t in self.trace if not t.sent and _is(t.message, method)]

    def statuses(self) -> list[tuple[int, str]]:
        """(status, CSeq method) of every response received, in order."""
        return [(m.status, m.cseq_method) for m in self.received() if m.status is not None]

    def explain(self) -> str:
        return f"sipp exit {self.returncode}\n{self.output}\n" + "\n".join(map(str, self.trace))


def _is(message: SipMessage, method: str | None) -> bool:
    if method is None:
        return True
    if method.isdigit():
        return message.status == int(method)
    return message.method == method


@dataclass
class Sipp:
    """A sipp process, started with the message trace on."""

    process: subprocess.Popen[str]
    trace_path: Path
    port: int
    transport: str
    command: list[str] = field(default_factory=list)

    def wait(self, timeout: float = SIPP_TIMEOUT + 15) -> SippRun:
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
            output += f"\n(killed after {timeout} s)"
        output = " ".join(self.command) + "\n" + output
        return SippRun(self.process.returncode, output, read_trace(self.trace_path))

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until sipp's socket shows in /proc/net (a bound UDP or listening TCP port),
        polling by waiting on the process itself: if sipp exits, say why."""
        deadline = time.monotonic() + timeout
        while not _listening(self.port, self.transport):
            try:
                self.process.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise AssertionError(f"sipp did not bind port {self.port}") from None
                continue
            raise AssertionError("sipp exited before listening:\n" + self.wait().explain())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def _listening(port: int, transport: str) -> bool:
    """Is 127.0.0.1:port bound (UDP) or listening (TCP)? Read from /proc/net."""
    table = Path("/proc/net/udp" if transport == "udp" else "/proc/net/tcp")
    wanted = f"0100007F:{port:04X}"
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and (transport == "udp" or fields[3] == "0A"):
            return True
    return False


def start_sipp(
    directory: Path,
    scenario: str,
    *args: str,
    port: int,
    remote: str | None = None,
    transport: str = "udp",
    keys: Mapping[str, str] | None = None,
) -> Sipp:
    """sipp with scenarios/``scenario`` from 127.0.0.1:``port``, as client of ``remote``
    or, without it, as a server waiting for one call (``-m N`` among ``args``: N calls)."""
    directory.mkdir(parents=True, exist_ok=True)
    trace = directory / f"{Path(scenario).stem}-{port}.log"
    command = [
        sipp_binary(),
        "-sf",
        str(SCENARIOS / scenario),
        *(() if "-m" in args else ("-m", "1")),
        "-i",
        LOCALHOST,
        "-p",
        str(port),
        "-t",
        TRANSPORTS[transport],
        "-nostdin",
        "-timeout",
        f"{SIPP_TIMEOUT}s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        str(trace),
        *args,
    ]
    for name, value in (keys or {}).items():
        command += ["-key", name, value]
    if remote is not None:
        command.append(remote)
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Sipp(process, trace, port, transport, command)


def run_sipp(directory: Path, scenario: str, *args: str, **options: Any) -> SippRun:
    return start_sipp(directory, scenario, *args, **options).wait()


def register(
    server: SipServer,
    directory: Path,
    user: str,
    password: str,
    *,
    port: int,
    transport: str = "udp",
    scenario: str = "register.xml",
    remote: str | None = None,
    send_to: str | None = None,
) -> SippRun:
    """sipp registers ``user`` from 127.0.0.1:``port`` with digest credentials at heron's
    UDP/TCP listener, or at ``remote`` (the Request-URI), sending through ``send_to``."""
    return run_sipp(
        directory,
        scenario,
        *(("-rsa", send_to) if send_to else ()),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        port=port,
        remote=remote or server.address,
        transport=transport,
    )


@contextmanager
def tls_relay(server: SipServer, server_name: str | None = None) -> Iterator[str]:
    """A local TCP port that socat carries over TLS to heron's SIP TLS listener, verifying
    its certificate: the way to drive Debian's sipp, built without OpenSSL, over TLS.
    ``server_name`` goes into the ClientHello's SNI (socat offers no ALPN)."""
    socat = require_tool("socat", "socat")
    port = free_port()
    target = f"OPENSSL:{LOCALHOST}:{server.tls_port},cafile={server.certificate},verify=1"
    if server_name is not None:
        target += f",snihost={server_name}"
    relay = subprocess.Popen(
        [socat, f"TCP-LISTEN:{port},bind={LOCALHOST},reuseaddr", target],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port, "tcp"):
            try:
                relay.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                assert time.monotonic() < deadline, "socat did not listen"
                continue
            raise AssertionError(f"socat exited: {relay.stderr.read() if relay.stderr else ''}")
        yield f"{LOCALHOST}:{port}"
    finally:
        relay.terminate()
        relay.wait(timeout=10)


def callers_csv(directory: Path, *rows: tuple[str, str, str]) -> Path:
    """A sipp injection file: caller, [authentication ...] keyword for (user, password)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "callers.csv"
    lines = ["SEQUENTIAL"]
    lines += [f"{user};[authentication username={name} password={pw}]" for user, name, pw in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def answering(
    directory: Path, scenario: str, *args: str, port: int, transport: str = "udp"
) -> Iterator[Sipp]:
    """A sipp UAS on 127.0.0.1:``port``, listening once entered; killed if the block
    raises (a test then fails at once rather than when the UAS times out)."""
    uas = start_sipp(directory, scenario, *args, port=port, transport=transport)
    try:
        uas.wait_listening()
        yield uas
    finally:
        uas.stop()


def call(
    server: SipServer | str,
    directory: Path,
    scenario: str,
    callee: str,
    caller: str,
    *,
    auth: tuple[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    transport: str = "udp",
    port: int | None = None,
) -> SippRun:
    """sipp calls ``callee`` through heron (or the heron at an address) as ``caller``
    from ``port`` (a free one if None), authenticating as ``auth`` (user, password; the
    caller's own by default)."""
    name, password = auth or (caller, USERS.get(caller, ""))
    csv = callers_csv(directory, (caller, name, password))
    return run_sipp(
        directory,
        scenario,
        "-s",
        callee,
        "-inf",
        str(csv),
        port=port or free_port(),
        remote=server if isinstance(server, str) else server.address,
        keys=keys,
        transport=transport,
    )


@asynccontextmanager
async def browser_registered(server: SipServer, user: str) -> AsyncIterator[UserAgent]:
    """``user`` in a browser: connected over wss://.../sip, registered with digest, and
    unregistered at the end as JsSIP does on stop (jssip_unregister.txt)."""
    channel = await WebSocketChannel.connect(
        server.websocket_url, trusting(str(server.certificate))
    )
    agent = UserAgent(channel, user, USERS[user])
    try:
        challenge, final = await agent.register()
        assert challenge.status == 401, challenge
        assert f'realm="{DOMAIN}"' in challenge.get("WWW-Authenticate"), challenge
        assert final.status == 200, final
        assert any(uri_of(agent.contact) in c for c in final.all("Contact")), final
        yield agent
        _, gone = await agent.register(expires=0)
        assert gone.status == 200, gone
        assert not any(uri_of(agent.contact) in c for c in gone.all("Contact")), gone
    finally:
        await channel.close()
