"""heron from this repository, XMPP only, with the accounts made by ``heron user import``.

The generated ``heron.toml`` turns TURN, SIP and the web off and gives XMPP
one STARTTLS client port and one direct-TLS port on 127.0.0.1, picked at run
time, and no server-to-server listener. The certificate comes from ``heron
cert`` (ECDSA P-256, self-signed, for the domain and its MUC component), the
same kind Prosody gets. Accounts are created by ``heron user import``.

heron is ready when its log says "heron serving" and its client port answers
a stream header with stream features. A heron without an XMPP server yet says
"heron serving" with nothing on that port: that is reported in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.proc import REPO, ServerUnavailable, free_port, stop_process, wait_ready
from bench.xmpp import ADMIN, DOMAIN, Account, Address, RunningServer
from bench.xmpp.client import answers_stream
from heron import __version__

__all__ = ["Heron"]

SERVING = b"heron serving"
PROBE_SECONDS = 5.0
"""How long after "heron serving" the client port may take to answer."""


def _heron_command() -> list[str]:
    """``.venv/bin/heron`` next to the interpreter running the bench, else ``-m heron``."""
    script = Path(sys.executable).with_name("heron")
    return [str(script)] if script.exists() else [sys.executable, "-m", "heron"]


class Heron:
    """heron's XMPP server alone, on loopback ports picked for this run."""

    name = "heron"

    def __init__(self, workdir: Path, taken: set[int]) -> None:
        self.workdir = workdir
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.tls_address: Address = ("127.0.0.1", free_port(taken))
        self.config = workdir / "heron.toml"

    def version(self) -> str:
        return f"heron {__version__}"

    def _config_text(self) -> str:
        host, port = self.address
        tls_host, tls_port = self.tls_address
        return f"""\
domain = "{DOMAIN}"
data_dir = "{self.workdir / "data"}"
admins = ["{ADMIN}"]
log_level = "info"

[turn]
enabled = false

[sip]
enabled = false

[web]
enabled = false

[xmpp]
listen = ["{host}:{port}"]
tls_listen = ["{tls_host}:{tls_port}"]
s2s_listen = []
"""

    def _cli(self, *args: str, stdin: str | None = None) -> None:
        command = [*_heron_command(), "-c", str(self.config), *args]
        try:
            done = subprocess.run(
                command, input=stdin, capture_output=True, text=True, timeout=600, cwd=REPO
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"heron {' '.join(args[:2])} failed: {exc}") from None
        if done.returncode:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServerUnavailable(f"heron {' '.join(args[:2])} failed: {why[0]}")

    def prepare(self, accounts: list[Account]) -> None:
        """``heron cert``, one start to see XMPP answer, then ``heron user import``.

        The start comes before the import, which takes minutes (heron derives
        an Argon2 hash and SCRAM keys per account), so that a heron without
        XMPP fails the bench at once. One account is imported alone: two
        first-ever commands on a new database both create its schema and one
        fails. The rest go in one import per core, at the same time.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config_text())
        self._cli("cert")
        with self.running():
            pass
        if not accounts:
            return
        self._import(accounts[:1])
        cores = os.cpu_count() or 1
        parts = [accounts[1 + i :: cores] for i in range(cores)]
        with ThreadPoolExecutor(max_workers=cores) as pool:
            list(pool.map(self._import, [part for part in parts if part]))

    def _import(self, accounts: list[Account]) -> None:
        lines = "".join(f"{account.jid} {account.password}\n" for account in accounts)
        self._cli("user", "import", "-", stdin=lines)

    @contextmanager
    def running(self) -> Iterator[RunningServer]:
        log = self.workdir / "heron.log"
        command = [*_heron_command(), "-c", str(self.config), "serve"]
        with log.open("ab") as sink:
            offset = sink.tell()
            try:
                process = subprocess.Popen(
                    command,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            except OSError as exc:
                raise ServerUnavailable(f"cannot run heron: {exc}") from None

        def serving() -> bool:
            with log.open("rb") as source:
                source.seek(offset)
                return SERVING in source.read()

        try:
            wait_ready(process, serving, 60.0, log)
            try:
                wait_ready(process, lambda: answers_stream(self.address), PROBE_SECONDS, log)
            except ServerUnavailable:
                host, port = self.address
                raise ServerUnavailable(
                    f"heron has no XMPP server yet: it serves, but nothing answers a stream "
                    f"header on xmpp.listen {host}:{port}"
                ) from None
            yield RunningServer(self.name, self.address, process.pid, log)
        finally:
            stop_process(process, grace=10.0)
