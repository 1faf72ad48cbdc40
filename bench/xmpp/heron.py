"""heron from this repository, XMPP only, with the accounts made by ``heron user import``.

The generated ``heron.toml`` turns TURN, SIP and the web off and gives XMPP
one STARTTLS client port and one direct-TLS port on 127.0.0.1, picked at run
time, and no server-to-server listener; message archives (XEP-0313) only with ``--archive``,
as Prosody's packaged configuration leaves mod_mam off. The certificate comes from ``heron
cert`` (ECDSA P-256, self-signed, for the domain and its MUC component), the
same kind Prosody gets. Accounts are created by ``heron user import``.

For the federation load (``S2s``) it serves its own domain instead, with an
s2s listener on loopback, the bench CA's certificate (``[tls]``), that CA for
its peers (``s2s_ca_file``), the bench's name server (``[dns] servers``) and
loopback allowed as an s2s destination, which a default install refuses; XEP-0288
off, so that each direction has its stream as Prosody's default does.

heron is ready when its log says "heron serving" and its client port answers
a stream header with stream features. A heron without an XMPP server yet says
"heron serving" with nothing on that port: that is reported in one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.heron import heron_cli, running_heron
from bench.proc import Address, RunningServer, free_port
from bench.xmpp import DOMAIN, Account, S2s
from bench.xmpp.client import answers_stream
from heron import __version__

__all__ = ["Heron"]

PROBE_SECONDS = 5.0
"""How long after "heron serving" the client port may take to answer."""


class Heron:
    """heron's XMPP server alone, on loopback ports picked for this run."""

    name = "heron"

    def __init__(
        self,
        workdir: Path,
        taken: set[int],
        domain: str = DOMAIN,
        s2s: S2s | None = None,
        archive: bool = False,
    ) -> None:
        self.workdir = workdir
        self.archive = archive
        """Message archives (``xmpp.archive``) on, as Prosody's mod_mam with ``--archive``."""
        self.domain = domain
        self.s2s = s2s
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.tls_address: Address = ("127.0.0.1", free_port(taken))
        self.config = workdir / "heron.toml"

    def version(self) -> str:
        return f"heron {__version__}"

    def _config_text(self) -> str:
        host, port = self.address
        tls_host, tls_port = self.tls_address
        s2s_listen, federation = "s2s_listen = []", ""
        if self.s2s is not None:
            s2s_listen = f"""\
s2s_listen = ["127.0.0.1:{self.s2s.port}"]
s2s_ca_file = "{self.s2s.cafile}"
s2s_allowed_destinations = ["127.0.0.0/8"]
# A stream each way, as Prosody 0.12 keeps them by default (no mod_s2s_bidi).
s2s_bidi = false"""
            federation = f"""
[tls]
certificate = "{self.s2s.certificate}"
key = "{self.s2s.key}"

[dns]
servers = ["{self.s2s.nameserver}:53"]
"""
        return f"""\
domain = "{self.domain}"
data_dir = "{self.workdir / "data"}"
admins = ["admin@{self.domain}"]
log_level = "info"

[turn]
enabled = false

[sip]
enabled = false

[web]
enabled = false

[xmpp]
archive = {"true" if self.archive else "false"}
listen = ["{host}:{port}"]
tls_listen = ["{tls_host}:{tls_port}"]
{s2s_listen}
s2s_tls_listen = []

[limits]
# Every simulated client connects from loopback: one source, past the default cap.
connections_exempt = ["127.0.0.0/8"]
{federation}"""

    def _cli(self, *args: str, stdin: str | None = None) -> None:
        heron_cli(self.config, *args, stdin=stdin, timeout=600)

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
        if self.s2s is None:
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
        host, port = self.address
        silent = (
            f"heron has no XMPP server yet: it serves, but nothing answers a stream "
            f"header on xmpp.listen {host}:{port}"
        )
        with running_heron(
            self.config,
            self.workdir / "heron.log",
            self.address,
            lambda: answers_stream(self.address, self.domain),
            answer_seconds=PROBE_SECONDS,
            silent=silent,
        ) as running:
            yield running
