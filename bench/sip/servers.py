"""Setting up and running the two servers with the same accounts on 127.0.0.1.

Kamailio runs the packaged ``/etc/kamailio/kamailio.cfg``, copied with
``WITH_AUTH`` and ``WITH_USRLOCDB`` defined (the handbook's set-up), on an
SQLite database in WAL mode (without it the 60 s location flush locks the
database and authentication fails), with its own listen line, alias
``localhost``, runtime directory, pid file and working directory, in the
foreground (``-DD -E``, log to a file). Accounts go straight into its
``subscriber`` table, plain password in the ``password`` column as ``kamctl
add`` puts it there (the config has ``calculate_ha1`` on).

heron runs from a generated ``heron.toml`` (SIP on one UDP/TCP port, TURN,
XMPP, SIP TLS, WebSocket and the media relay off, web on a free port) after
``heron cert`` and one ``heron user import`` of every account. By default it
runs as many SIP processes as the machine has cores (``sip.workers``), as
Kamailio runs its UDP workers: several heron processes must share bindings
and guess counts, so they do it through Redis (``redis.url``, a
key prefix of this run's own, deleted when the bench ends). One process
(``--heron-workers 1``) runs without Redis, everything in memory.

Each load gets a freshly started server: state one load leaves behind (a full
transaction table, say) must not be charged to the next. Set-up (database,
accounts) is done once per server. A server that does not start or does not
answer is reported as skipped with the reason and the tail of its log.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import redis

from bench.heron import heron_cli, running_heron
from bench.proc import (
    Address,
    RunningServer,
    ServerUnavailable,
    free_port,
    stop_process,
    wait_ready,
)
from bench.sip.sipp import Account

__all__ = [
    "DOMAIN",
    "Heron",
    "Kamailio",
    "RunningServer",
    "Server",
    "ServerUnavailable",
    "answers_options",
    "install",
    "kamailio_version",
    "missing_packages",
]

DOMAIN = "localhost"
"""SIP domain and digest realm of both servers."""
KAMAILIO_CFG = Path("/etc/kamailio/kamailio.cfg")
KAMAILIO_SQL = Path("/usr/share/kamailio/db_sqlite")
PACKAGES = {"kamailio": ["kamailio", "kamailio-sqlite-modules"], "sipp": ["sip-tester"]}


class Server(Protocol):
    """What the bench needs of either server."""

    name: str
    address: Address

    def prepare(self, accounts: Sequence[Account]) -> None: ...

    def running(self) -> AbstractContextManager[RunningServer]: ...

    def clean_up(self) -> None:
        """Remove what the server left outside its working directory."""


def answers_options(address: Address, timeout: float = 0.5) -> bool:
    """Any SIP response to an OPTIONS datagram: the server is up (its answer may be a 407)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(timeout)
        local = probe.getsockname()[1]
        tag = secrets.token_hex(6)
        host, port = address
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{tag};rport\r\n"
            f"From: <sip:probe@{DOMAIN}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            probe.sendto(request.encode(), address)
            data = probe.recv(65535)
        except OSError:
            return False
        return data.startswith(b"SIP/2.0 ")


# --- installing ------------------------------------------------------------------------


def _kamailio_modules() -> list[str]:
    return glob.glob("/usr/lib/*/kamailio/modules/db_sqlite.so")


def missing_packages() -> list[str]:
    """Debian packages this bench needs and does not find."""
    missing = []
    if shutil.which("kamailio") is None or not _kamailio_modules():
        missing += PACKAGES["kamailio"]
    if shutil.which("sipp") is None:
        missing += PACKAGES["sipp"]
    return missing


def install(packages: Sequence[str]) -> str | None:
    """``apt-get install -y`` as root, with RUNLEVEL=1 so Debian starts no daemon.

    Returns why it could not, or None. Only run when ``--install`` is given.
    """
    if not packages:
        return None
    if os.geteuid() != 0:
        return "--install needs root"
    environment = {**os.environ, "RUNLEVEL": "1", "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", *packages]
    try:
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get failed: {exc}"
    if done.returncode:
        return f"apt-get failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return None


def kamailio_version() -> str:
    try:
        done = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    first = (done.stdout or done.stderr).strip().splitlines()[:1]
    return first[0].removeprefix("version: ").strip() if first else "unknown version"


# --- Kamailio --------------------------------------------------------------------------


def _edit(text: str, marker: str, replacement: str) -> str:
    if marker not in text:
        raise ServerUnavailable(f"{KAMAILIO_CFG} has no {marker.strip()!r} line to edit")
    return text.replace(marker, replacement, 1)


class Kamailio:
    """Kamailio from Debian's package with the handbook's WITH_AUTH + WITH_USRLOCDB set-up."""

    name = "kamailio"

    def __init__(self, workdir: Path, taken: set[int], shm_mb: int = 64) -> None:
        self.workdir = workdir
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.shm_mb = shm_mb
        """Shared memory (``-m``): 64 MB is Debian's default (/etc/default/kamailio)."""
        self.database = workdir / "kamailio.sqlite"
        self.config = workdir / "kamailio.cfg"
        self.runtime = workdir / "run"

    def prepare(self, accounts: Sequence[Account]) -> None:
        if shutil.which("kamailio") is None or not _kamailio_modules():
            raise ServerUnavailable(
                "kamailio or kamailio-sqlite-modules not installed (run with --install as root)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(exist_ok=True)
        self._create_database(accounts)
        self.config.write_text(self._config_text())

    def _create_database(self, accounts: Sequence[Account]) -> None:
        """The tables ``kamdbctl create`` would make for these modules, and the subscribers."""
        db = sqlite3.connect(self.database)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # stays set in the file
            for name in ("standard", "auth_db", "usrloc"):
                db.executescript((KAMAILIO_SQL / f"{name}-create.sql").read_text())
            db.executemany(
                "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
                [(a.name, DOMAIN, a.password) for a in accounts],
            )
            db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ServerUnavailable(f"cannot create the Kamailio database: {exc}") from None
        finally:
            db.close()

    def _config_text(self) -> str:
        text = KAMAILIO_CFG.read_text()
        defines = (
            "#!KAMAILIO\n#!define WITH_AUTH\n#!define WITH_USRLOCDB\n"
            f'#!define DBURL "sqlite:///{self.database}"\n'  # sqlite:/// + absolute path
        )
        text = _edit(text, "#!KAMAILIO\n", defines)
        text = _edit(
            text,
            'loadmodule "jsonrpcs.so"\n',
            'loadmodule "db_sqlite.so"\nloadmodule "jsonrpcs.so"\n',
        )
        host, port = self.address
        own = f'listen=udp:{host}:{port}\nalias="{DOMAIN}"\n\n'
        return _edit(
            text, "####### Custom Parameters #########", own + "####### Custom Parameters #########"
        )

    @contextmanager
    def running(self) -> Iterator[RunningServer]:
        log = self.workdir / "kamailio.log"
        command = [
            "kamailio", "-f", str(self.config), "-DD", "-E",
            "-Y", str(self.runtime), "-P", str(self.runtime / "kamailio.pid"),
            "-w", str(self.workdir), "-m", str(self.shm_mb),
        ]  # fmt: skip
        with log.open("ab") as sink:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise ServerUnavailable(f"cannot run kamailio: {exc}") from None
        try:
            wait_ready(process, lambda: answers_options(self.address), 20.0, log)
            yield RunningServer(self.name, self.address, process.pid, log)
        finally:
            stop_process(process, grace=10.0)

    def clean_up(self) -> None:
        """Everything Kamailio wrote is in its working directory."""


# --- heron ------------------------------------------------------------------------------


class Heron:
    """heron from this repository, SIP only, with the accounts added by its CLI.

    ``workers`` SIP processes; with more than one they share state in the Redis at
    ``redis_url`` under a prefix of their own.
    """

    name = "heron"

    def __init__(self, workdir: Path, taken: set[int], workers: int, redis_url: str) -> None:
        self.workdir = workdir
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.web_port = free_port(taken)
        self.config = workdir / "heron.toml"
        self.workers = workers
        self.redis_url = redis_url
        self.prefix = f"heron-bench-sip-{secrets.token_hex(6)}:"

    def _config_text(self) -> str:
        host, port = self.address
        shared = ""
        if self.workers > 1:
            shared = f"""
[redis]
url = "{self.redis_url}"
prefix = "{self.prefix}"
"""
        return f"""\
domain = "{DOMAIN}"
data_dir = "{self.workdir / "data"}"
log_level = "info"

[turn]
enabled = false

[xmpp]
enabled = false

[sip]
listen = ["{host}:{port}"]
tls_listen = []
websocket = false
workers = {self.workers}

[media]
enabled = false

[web]
listen = ["127.0.0.1:{self.web_port}"]
{shared}"""

    def _cli(self, *args: str, stdin: str | None = None) -> None:
        heron_cli(self.config, *args, stdin=stdin)

    def prepare(self, accounts: Sequence[Account]) -> None:
        """``heron cert``, then one ``heron user import`` for every account."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config_text())
        self._cli("cert")
        lines = "".join(f"{account.name}@{DOMAIN} {account.password}\n" for account in accounts)
        self._cli("user", "import", "-", stdin=lines)

    @contextmanager
    def running(self) -> Iterator[RunningServer]:
        log = self.workdir / "heron.log"
        with running_heron(
            self.config,
            log,
            self.address,
            lambda: answers_options(self.address),
            processes=self.workers,
        ) as running:
            yield running

    def clean_up(self) -> None:
        """Delete this run's keys from Redis (only with workers: one process uses none)."""
        if self.workers <= 1:
            return
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError as exc:
            raise ServerUnavailable(f"cannot delete the bench's Redis keys: {exc}") from None
        finally:
            client.close()
