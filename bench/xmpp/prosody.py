"""Prosody from Debian's package, set up as the Debian handbook's chapter 11.8.4 does.

The packaged ``/etc/prosody/prosody.cfg.lua`` is copied with the handbook's
changes: ``admins`` filled in, a ``VirtualHost`` with its own ``ssl``
certificate and key, and ``Component "conference.<domain>" "muc"``. For the
bench it also gets a global block just before that host (later settings win
in Prosody's configuration): ``mod_limits`` off (Debian's packaged limits cap
each client at 10 kB/s, which would make every rate a measure of the cap),
data, pid and log files in the run directory, the client port picked at run
time and no other listener (no s2s, direct TLS, HTTP or component port).
``Include "conf.d/*.cfg.lua"`` is dropped so that the system's own hosts stay
out of it. With ``--archive``, the packaged modules list's ``mam`` is uncommented and the
MUC component gets ``muc_mam``, both with Prosody's defaults (archives in its default
storage, one week's expiry). Unless asked not to (``--prosody-nagle``), it also turns Nagle's
algorithm off (``network_settings = { nagle = false }``), as heron's asyncio
sockets have it: with Prosody's default, each small answer that follows
another waits for the client's delayed ACK, and a login took 52 ms instead of
7 ms here, so rates measured the 40 ms timer rather than the server.
The certificate is ECDSA P-256, self-signed, made by the same
function as heron's ``heron cert``, so that TLS handshakes cost both the same.

For the federation load (``S2s``) it serves its own domain instead, with
``s2s_ports`` on loopback and the bench CA's certificate, that CA to verify
its peer (``cafile`` in the host's ``ssl``); the packaged ``s2s_secure_auth =
true`` stays. Prosody takes its name servers from /etc/resolv.conf alone, so
it runs under ``unshare --mount`` with the bench's resolv.conf bind-mounted
over that file, in its own mount namespace: the machine's /etc is untouched.

Prosody refuses to run as root: it runs as the ``prosody`` user
(``setpriv``), which owns its run directory. Accounts are created in one
``prosodyctl shell`` session (``user:create``), much quicker than one
``prosodyctl register`` per user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.proc import ServerUnavailable, free_port, log_tail, stop_process, wait_ready
from bench.xmpp import DOMAIN, MUC_DOMAIN, Account, Address, RunningServer, S2s
from bench.xmpp.client import answers_stream
from heron.tls import write_self_signed

__all__ = ["Prosody", "install", "installed"]

PACKAGED_CONFIG = Path("/etc/prosody/prosody.cfg.lua")
USER = "prosody"


def installed() -> bool:
    return shutil.which("prosody") is not None and PACKAGED_CONFIG.exists()


def _run(command: list[str], timeout: float = 600) -> str | None:
    """Run an administration command; returns why it failed, or None."""
    environment = {**os.environ, "RUNLEVEL": "1", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{command[0]} failed: {exc}"
    if done.returncode:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"{' '.join(command[:2])} failed: {last[0]}"
    return None


def install() -> str | None:
    """``apt-get install -y prosody`` as root with RUNLEVEL=1, then keep its service off.

    RUNLEVEL=1 tells Debian's maintainer scripts not to start the daemon; if
    systemd runs here, the service is also disabled and stopped (else stopped
    if it left a pid file), so that no system Prosody shares the machine with
    the measured one.
    """
    if os.geteuid() != 0:
        return "--install needs root"
    if (why := _run(["apt-get", "install", "-y", "prosody"])) is not None:
        return why
    if Path("/run/systemd/system").exists():
        _run(["systemctl", "disable", "--now", "prosody"], timeout=60)
    elif Path("/run/prosody/prosody.pid").exists():
        _run(["invoke-rc.d", "prosody", "stop"], timeout=60)
    return None


def version() -> str:
    """The package's version: ``prosody --version`` would start a server."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "prosody"], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else "not installed"


def namespaced(resolv_conf: Path, command: list[str]) -> list[str]:
    """``command`` in a mount namespace of its own where /etc/resolv.conf is ``resolv_conf``
    (root only). Without ``--fork`` the namespace's first process is the command itself,
    so its pid is Prosody's."""
    mount = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        mount,
        str(resolv_conf),
        *command,
    ]


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody:
    """Prosody with the handbook's host and MUC component, in its own run directory."""

    name = "prosody"

    def __init__(
        self,
        workdir: Path,
        taken: set[int],
        nagle: bool = False,
        domain: str = DOMAIN,
        s2s: S2s | None = None,
        archive: bool = False,
    ) -> None:
        self.workdir = workdir
        self.archive = archive
        """mod_mam (and muc_mam) on, with Prosody's defaults (``--archive``)."""
        self.nagle = nagle
        """Prosody's default leaves Nagle's algorithm on: see the module docstring."""
        self.domain = domain
        self.s2s = s2s
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.config = workdir / "prosody.cfg.lua"
        self.certificate = s2s.certificate if s2s else workdir / "certs" / f"{domain}.crt"
        self.key = s2s.key if s2s else workdir / "certs" / f"{domain}.key"
        self.as_user = os.geteuid() == 0
        """Root must hand over to the prosody user; anyone else runs it as themself."""

    def version(self) -> str:
        return f"Prosody {version()}"

    def _config_text(self) -> str:
        work, (host, port), domain = self.workdir, self.address, self.domain
        muc_mam = '\tmodules_enabled = { "muc_mam" }' if self.archive else ""
        s2s_ports, cafile = "", ""
        if self.s2s is not None:
            s2s_ports = str(self.s2s.port)
            cafile = f"\n\t\tcafile = {_lua(str(self.s2s.cafile))};"
        edits: tuple[tuple[str, str], ...] = (
            (r"^admins = \{ \}$", f"admins = {{ {_lua(f'admin@{domain}')} }}"),
            (
                r"^modules_disabled = \{$",
                'modules_disabled = {\n\t"limits"; -- bench/xmpp: 10 kB/s a client would cap rates',
            ),
            (r"^pidfile = [^\n]*$", f"pidfile = {_lua(str(work / 'prosody.pid'))};"),
            (
                r"^log = \{.*?^\}$",
                f"log = {{ info = {_lua(str(work / 'prosody.log'))}; "
                f"error = {_lua(str(work / 'prosody.err'))} }}",
            ),
            (r"^certificates = [^\n]*$", f"certificates = {_lua(str(work / 'certs'))}"),
            (
                rf'^VirtualHost "{re.escape(DOMAIN)}"$',
                f"""\
-- bench/xmpp: one client port on loopback, and an s2s port for the federation load only.
{"" if self.nagle else "network_settings = { nagle = false }"}
data_path = {_lua(str(work / "data"))}
interfaces = {{ {_lua(host)} }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ {s2s_ports} }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}

VirtualHost {_lua(domain)}
\tenabled = true
\tssl = {{
\t\tkey = {_lua(str(self.key))};
\t\tcertificate = {_lua(str(self.certificate))};{cafile}
\t}}

Component {_lua(f"conference.{domain}")} "muc"
{muc_mam}
""",
            ),
            (r'^Include "conf\.d/\*\.cfg\.lua"$', "-- bench/xmpp: conf.d (system hosts) left out"),
        )
        if self.archive:
            edits += ((r'^\t\t--"mam";', '\t\t"mam"; -- bench/xmpp --archive'),)
        text = PACKAGED_CONFIG.read_text()
        for pattern, replacement in edits:
            literal = replacement.replace("\\", "\\\\")  # re.subn reads backslashes
            text, found = re.subn(pattern, literal, text, count=1, flags=re.MULTILINE | re.DOTALL)
            if not found:
                raise ServerUnavailable(f"{PACKAGED_CONFIG}: no line matching {pattern!r} to edit")
        return text

    def _command(self, *args: str) -> list[str]:
        if not self.as_user:
            return list(args)
        user = ["--reuid", USER, "--regid", USER, "--init-groups"]
        return ["setpriv", *user, *args]

    def prepare(self, accounts: list[Account]) -> None:
        """Config, certificate, data directory; then start once to create the accounts."""
        if not installed():
            raise ServerUnavailable("prosody not installed (run with --install as root)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        if self.s2s is None:
            write_self_signed(self.certificate, self.key, [DOMAIN, MUC_DOMAIN])
        self.config.write_text(self._config_text())
        if self.as_user:
            entry = pwd.getpwnam(USER)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        with self.running():
            self._create_accounts(accounts)

    def _create_accounts(self, accounts: list[Account]) -> None:
        """``user:create`` for every account in one ``prosodyctl shell`` session."""
        script = "".join(
            f"user:create({_lua(account.jid)}, {_lua(account.password)})\n" for account in accounts
        )
        command = self._command("prosodyctl", "--config", str(self.config), "shell")
        try:
            done = subprocess.run(
                command, input=script, capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"prosodyctl shell failed: {exc}") from None
        created = done.stdout.count("User created")
        if done.returncode or created != len(accounts):
            said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServerUnavailable(
                f"prosodyctl shell created {created} of {len(accounts)} accounts: {said[0]}"
            )

    @contextmanager
    def running(self) -> Iterator[RunningServer]:
        log, domain = self.workdir / "console.log", self.domain
        command = self._command("prosody", "--config", str(self.config), "-F")
        if self.s2s is not None:
            command = namespaced(self.s2s.resolv_conf, command)
        with log.open("ab") as sink:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise ServerUnavailable(f"cannot run prosody: {exc}") from None
        try:
            try:
                wait_ready(process, lambda: answers_stream(self.address, domain), 30.0, log)
            except ServerUnavailable as exc:
                tail = log_tail(self.workdir / "prosody.log")
                raise ServerUnavailable(f"{exc}\n    {tail}") from None
            yield RunningServer(self.name, self.address, process.pid, self.workdir / "prosody.log")
        finally:
            stop_process(process, grace=10.0)
