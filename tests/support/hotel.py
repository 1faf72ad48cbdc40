"""A hotel network for tests: the only way out is an HTTP proxy that allows CONNECT to 443.

Three network namespaces in a row, joined by veth pairs: "hotel" holds the clients, with
one address and one host route, to the proxy; "lobby" holds the proxy (tinyproxy on
``PROXY_ADDRESS``) and forwards nothing; "world" holds the servers, on
``WORLD_ADDRESSES`` (loopback addresses of its own), so a server there may listen on any
address and still be out of the hotel's reach. From the hotel every destination but the
proxy is unreachable, for TCP and UDP alike, as behind a firewall that passes nothing but
its proxy. Names carry the process id and a random tag, so parallel runs never meet, and
everything is removed when the block ends, on failure too. Needs root (``ip netns``) and
Debian's tinyproxy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import missing, require_tool

PROXY_ADDRESS = "192.0.2.1"
"""The proxy's address, facing the hotel (TEST-NET-1, never routed anywhere)."""
GUEST_ADDRESS = "192.0.2.2"
"""The hotel guest's address."""
UPLINK_ADDRESS = "192.0.2.5"
"""The lobby's address facing the world, where the proxy's connections come from."""
PROXY_PORT = 3128
WORLD_ADDRESSES = ("198.51.100.10", "198.51.100.11")
"""Server addresses in the world (TEST-NET-2): one for the mux, two for the handbook's way."""
WORLD_NETWORK = "198.51.100.0/24"

PROBE = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
udp = kind == "udp"
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
    s.settimeout(5)
    try:
        if kind == "tcp":
            s.connect((host, port))
        elif udp:
            s.sendto(bytes.fromhex("000100002112a442") + bytes(12), (host, port))
            s.recv(1500)
        else:
            s.connect((sys.argv[4], int(sys.argv[5])))
            s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\n\\r\\n".encode())
            print(s.makefile("rb").readline().decode().strip())
            sys.exit()
    except OSError as error:
        print(type(error).__name__, error.errno)
    else:
        print("reached")
"""
"""Run inside the hotel: a TCP connect ("tcp"), a STUN Binding request over UDP awaiting
an answer ("udp"), or a CONNECT request to the proxy ("connect", prints its status line);
else prints ``reached`` or the error."""


@dataclass(frozen=True)
class Hotel:
    world: str
    """Name of the world's network namespace."""
    lobby: str
    """Name of the lobby's network namespace, the proxy's."""
    hotel: str
    """Name of the hotel's network namespace."""
    proxy_log: list[str]
    """tinyproxy's log lines so far (they keep coming while the hotel stands)."""

    @property
    def proxy_url(self) -> str:
        return f"http://{PROXY_ADDRESS}:{PROXY_PORT}"

    def in_world(self, *command: str) -> list[str]:
        """``command`` run in the world's namespace."""
        return ["ip", "netns", "exec", self.world, *command]

    def in_hotel(self, *command: str) -> list[str]:
        """``command`` run in the hotel's namespace."""
        return ["ip", "netns", "exec", self.hotel, *command]

    def probe(self, kind: str, host: str, port: int) -> str:
        """What :data:`PROBE` ``kind`` to ``host:port`` from the hotel prints."""
        ran = subprocess.run(
            self.in_hotel(
                sys.executable, "-c", PROBE, kind, host, str(port), PROXY_ADDRESS, str(PROXY_PORT)
            ),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.strip()

    def wrapper(self, directory: Path, program: str) -> Path:
        """An executable that runs ``program`` with its arguments in the hotel, for tools
        such as Playwright that want one path to start (file descriptors pass through)."""
        path = directory / f"hotel-{Path(program).name}"
        command = " ".join(self.in_hotel(program))
        path.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        path.chmod(0o755)
        return path


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


@contextmanager
def _namespace(name: str) -> Iterator[str]:
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _ip("netns", "delete", name)


def _wire(hotel: str, lobby: str, world: str) -> None:
    """The veth pairs, the addresses and the routes: the hotel's one route goes to the
    proxy; the lobby reaches both sides and forwards nothing."""
    _ip(
        "link", "add", "guest0", "netns", hotel, "type", "veth", "peer", "name", "lobby0",
        "netns", lobby,
    )  # fmt: skip
    _ip(
        "link", "add", "uplink0", "netns", lobby, "type", "veth", "peer", "name", "world0",
        "netns", world,
    )  # fmt: skip
    for namespace, device, address, peer in (
        (hotel, "guest0", GUEST_ADDRESS, PROXY_ADDRESS),
        (lobby, "lobby0", PROXY_ADDRESS, GUEST_ADDRESS),
        (lobby, "uplink0", UPLINK_ADDRESS, WORLD_NETWORK),
        (world, "world0", None, UPLINK_ADDRESS),
    ):
        if address is not None:
            _ip("-n", namespace, "address", "add", f"{address}/32", "dev", device)
        _ip("-n", namespace, "link", "set", device, "up")
        _ip("-n", namespace, "route", "add", peer, "dev", device)
    for address in WORLD_ADDRESSES:
        _ip("-n", world, "address", "add", f"{address}/32", "dev", "lo")
    forwarding = subprocess.run(
        ["ip", "netns", "exec", lobby, "cat", "/proc/sys/net/ipv4/ip_forward"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert forwarding.stdout.strip() == "0", forwarding


@contextmanager
def _tinyproxy(lobby: str, directory: Path) -> Iterator[list[str]]:
    """tinyproxy in the lobby, CONNECT to port 443 only, clients from the hotel only; its
    log lines. Ready when it says it accepts connections."""
    tinyproxy = require_tool("tinyproxy", "tinyproxy")
    config = directory / "tinyproxy.conf"
    config.write_text(
        f"Port {PROXY_PORT}\n"
        f"Listen {PROXY_ADDRESS}\n"
        f"Allow {GUEST_ADDRESS}\n"
        "ConnectPort 443\n"
        "Timeout 600\n"
        "MaxClients 100\n"
        "LogLevel Info\n"
    )
    process = subprocess.Popen(
        ["ip", "netns", "exec", lobby, tinyproxy, "-d", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if "Accepting connections" in line:
                break
        else:
            raise AssertionError("tinyproxy did not start:\n" + "".join(log))
        threading.Thread(target=log.extend, args=(process.stdout,), daemon=True).start()
        yield log
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def _hosts(namespace: str, names: Mapping[str, str]) -> Iterator[None]:
    """/etc/hosts as programs in ``namespace`` see it (``ip netns exec`` mounts
    /etc/netns/NAME/hosts over it): ``names`` mapped to their addresses, nothing else."""
    directory = Path("/etc/netns") / namespace
    directory.mkdir(parents=True)
    try:
        lines = ["127.0.0.1 localhost\n", *(f"{a} {name}\n" for name, a in names.items())]
        (directory / "hosts").write_text("".join(lines))
        yield
    finally:
        shutil.rmtree(directory)


@contextmanager
def hotel_network(directory: Path, names: Mapping[str, str] | None = None) -> Iterator[Hotel]:
    """The three namespaces, wired, with the proxy running; all gone when the block ends.

    ``names`` maps DNS names to world addresses for the proxy to resolve: a browser behind
    a proxy leaves the names of the URLs it opens to the proxy.
    """
    require_tool("ip", "iproute2")
    if os.geteuid() != 0:
        missing("the hotel network needs root, for ip netns")
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        hotel, lobby, world = (
            stack.enter_context(_namespace(f"heron-{part}-{tag}"))
            for part in ("hotel", "lobby", "world")
        )
        _wire(hotel, lobby, world)
        stack.enter_context(_hosts(lobby, names or {}))
        log = stack.enter_context(_tinyproxy(lobby, directory))
        yield Hotel(world, lobby, hotel, log)


def connects(log: Sequence[str], host: str, port: int) -> list[str]:
    """The proxy's log lines of CONNECT requests to ``host:port``."""
    return [line for line in log if f"CONNECT {host}:{port} " in line]
