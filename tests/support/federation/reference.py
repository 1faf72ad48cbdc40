"""Prosody 0.12 and ejabberd 23.01 from Debian as federation peers, one domain each, on loopback.

Each runs in the foreground in a temp directory of its own (configuration, data, logs), on free
ports of 127.0.0.1, as root, in a mount namespace whose /etc/resolv.conf names the test's DNS
stub (:mod:`tests.support.federation.dns`). Readiness is the listening ports answering,
never a sleep. Both verify peer certificates against the test CA: SASL EXTERNAL (XEP-0178)
when the peer's certificate is valid for its domain, dialback (XEP-0220) otherwise.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.config import free_port
from tests.support.federation.ca import CertFiles
from tests.support.federation.dns import LOOPBACK, FederationDns
from tests.support.tools import require_tool

START_TIMEOUT = 60.0
"""ejabberd takes seconds to start its Erlang VM and Mnesia; Prosody well under one."""
STOP_TIMEOUT = 30.0
CTL_TIMEOUT = 60.0


@dataclass
class ReferenceServer:
    """A running Prosody or ejabberd: what a test needs to reach its domain and its users."""

    kind: str
    """``"prosody"`` or ``"ejabberd"``."""
    domain: str
    muc_domain: str | None
    c2s_port: int
    s2s_port: int
    users: Mapping[str, str]
    """Local part -> password, registered before the test."""
    cafile: Path
    directory: Path
    log_files: tuple[Path, ...]
    startup_seconds: float
    """From the runner's start (users registered, process spawned) until both ports accept."""
    _ctl: list[str] = field(repr=False, default_factory=list)

    def jid(self, user: str, resource: str = "test") -> str:
        return f"{user}@{self.domain}/{resource}"

    def logs(self) -> str:
        """Every log file of the server, for assertions and for printing on failure."""
        return "".join(
            f"==> {path} <==\n{path.read_text(errors='replace')}\n"
            for path in self.log_files
            if path.exists()
        )

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``prosodyctl``/``ejabberdctl`` with this server's configuration."""
        return subprocess.run(
            [*self._ctl, *args], capture_output=True, text=True, timeout=CTL_TIMEOUT
        )


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_tls(tls: CertFiles, cafile: Path | None = None) -> str:
    """A Prosody ``ssl`` table: this certificate, and the CA that verifies peers."""
    entries = [f"certificate = {_lua(str(tls.cert))}", f"key = {_lua(str(tls.key))}"]
    if cafile:
        entries.append(f"cafile = {_lua(str(cafile))}")
    return "{ " + ", ".join(entries) + " }"


def _wait_listening(process: subprocess.Popen[bytes], ports: tuple[int, ...], log: Path) -> None:
    """Until every port accepts a TCP connection: the one readiness signal both servers share
    (their log lines differ and go to files). A refused try is retried after waiting up to
    50 ms on the process itself, so an exit during start-up fails at once with its output."""
    deadline = time.monotonic() + START_TIMEOUT
    for port in ports:
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited with {process.returncode} before listening on {port}:\n"
                    + log.read_text(errors="replace")
                )
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"nothing listens on {port} after {START_TIMEOUT} s"
                    ) from exc
                try:
                    process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass


@contextmanager
def _running(command: list[str], output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a process group of its own, SIGTERM to the group at the end."""
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # ejabberdctl's shell is the group leader; the Erlang VM under it may outlive it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def prosody(
    directory: Path,
    domain: str,
    *,
    tls: CertFiles,
    cafile: Path,
    dns: FederationDns,
    muc_domain: str | None = None,
    secure_auth: bool = False,
    users: Mapping[str, str] | None = None,
    c2s_tls: CertFiles | None = None,
    modules: Sequence[str] = (),
    extra_config: str = "",
) -> Iterator[ReferenceServer]:
    """Prosody serving ``domain`` (and a MUC component on ``muc_domain``), published in ``dns``.

    ``tls`` is the certificate of every stream unless ``c2s_tls`` gives clients another (so a
    test can give s2s a wrong certificate while its clients still verify theirs).
    ``modules`` are enabled besides the usual ones (e.g. ``s2s_bidi``); ``extra_config`` is
    Lua appended to the global section (before the VirtualHost).
    """
    binary = require_tool("prosody", "prosody")
    prosodyctl = require_tool("prosodyctl", "prosody")
    users = dict(users or {})
    directory.mkdir(parents=True, exist_ok=True)
    data, certs = directory / "data", directory / "certs"
    data.mkdir(exist_ok=True)
    certs.mkdir(exist_ok=True)
    c2s_port, s2s_port = free_port(), free_port()
    log = directory / "prosody.log"
    ssl = _lua_tls(tls, cafile)
    c2s_ssl = f"    c2s_ssl = {_lua_tls(c2s_tls)}" if c2s_tls else ""
    config = directory / "prosody.cfg.lua"
    muc = (
        f"""
Component {_lua(muc_domain)} "muc"
    ssl = {ssl}
    restrict_room_creation = false
    muc_room_default_persistent = true
"""
        if muc_domain
        else ""
    )
    config.write_text(
        f"""-- Written by tests/support/federation/reference.py
run_as_root = true
pidfile = {_lua(str(directory / "prosody.pid"))}
data_path = {_lua(str(data))}
admin_socket = {_lua(str(directory / "prosody.sock"))}
certificates = {_lua(str(certs))}
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = {_lua(str(log))} }} }}
interfaces = {{ "{LOOPBACK}" }}
local_interfaces = {{ "{LOOPBACK}" }}
c2s_ports = {{ {c2s_port} }}
s2s_ports = {{ {s2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
modules_enabled = {{
    "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "version"; "posix";
    "admin_shell";{"".join(f" {_lua(name)};" for name in modules)}
}}
modules_disabled = {{ "limits" }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = {"true" if secure_auth else "false"}
ssl = {ssl}
{extra_config}
VirtualHost {_lua(domain)}
    ssl = {ssl}
{c2s_ssl}
{muc}"""
    )
    ctl = [prosodyctl, "--config", str(config)]
    started = time.monotonic()
    for user, password in users.items():
        registered = subprocess.run(
            [*ctl, "register", user, domain, password],
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT,
        )
        assert registered.returncode == 0, registered.stdout + registered.stderr
    dns.add_domain(domain, s2s_port)
    if muc_domain:
        dns.add_domain(muc_domain, s2s_port)
    output = directory / "prosody.out"
    with _running(dns.namespaced(binary, "--config", str(config), "-F"), output) as process:
        _wait_listening(process, (c2s_port, s2s_port), output)
        yield ReferenceServer(
            "prosody",
            domain,
            muc_domain,
            c2s_port,
            s2s_port,
            users,
            cafile,
            directory,
            (log, output),
            time.monotonic() - started,
            ctl,
        )


def _yaml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def ejabberd(
    directory: Path,
    domain: str,
    *,
    tls: CertFiles,
    cafile: Path,
    dns: FederationDns,
    muc_domain: str | None = None,
    users: Mapping[str, str] | None = None,
    extra_config: str = "",
) -> Iterator[ReferenceServer]:
    """ejabberd serving ``domain`` (and mod_muc on ``muc_domain``), published in ``dns``.

    Its Erlang node name and cookie are unique, so parallel tests never talk to each other's
    node. ``extra_config`` is YAML appended at the top level.
    """
    ejabberdctl = require_tool("ejabberdctl", "ejabberd")
    users = dict(users or {})
    config_dir, spool, logs = directory / "etc", directory / "spool", directory / "log"
    for path in (config_dir, spool, logs):
        path.mkdir(parents=True, exist_ok=True)
    c2s_port, s2s_port = free_port(), free_port()
    node = f"heron_{secrets.token_hex(6)}@localhost"
    # Sourced by ejabberdctl after it decided to su to the ejabberd user: running as root
    # keeps the test's private temp directories readable to the server.
    (config_dir / "ejabberdctl.cfg").write_text(
        f"EXEC_CMD=as_current_user\nERLANG_NODE={node}\nINET_DIST_INTERFACE=127.0.0.1\n"
        f'ERL_OPTIONS="-setcookie {secrets.token_hex(16)} -env ERL_CRASH_DUMP_BYTES 0"\n'
    )
    # Erlang's resolver: the hosts file, then DNS from /etc/resolv.conf (the namespace's).
    (config_dir / "inetrc").write_text(
        '{lookup,["file","dns"]}.\n{file, resolv, "/etc/resolv.conf"}.\n'
        '{file, hosts, "/etc/hosts"}.\n'
    )
    muc = (
        f"""  mod_muc:
    host: {_yaml(muc_domain)}
    access_create: all
    default_room_options:
      persistent: true
"""
        if muc_domain
        else ""
    )
    (config_dir / "ejabberd.yml").write_text(
        f"""# Written by tests/support/federation/reference.py
hosts:
  - {_yaml(domain)}
loglevel: info
log_rotate_count: 0
certfiles:
  - {_yaml(str(tls.cert))}
  - {_yaml(str(tls.key))}
ca_file: {_yaml(str(cafile))}
listen:
  - port: {c2s_port}
    ip: "{LOOPBACK}"
    module: ejabberd_c2s
    starttls_required: true
  - port: {s2s_port}
    ip: "{LOOPBACK}"
    module: ejabberd_s2s_in
s2s_use_starttls: required
outgoing_s2s_families:
  - ipv4
auth_method: internal
default_db: mnesia
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_version: {{}}
  mod_offline: {{}}
  mod_s2s_dialback: {{}}
{muc}{extra_config}
"""
    )
    ctl = [
        ejabberdctl,
        "--config-dir",
        str(config_dir),
        "--spool",
        str(spool),
        "--logs",
        str(logs),
    ]
    dns.add_domain(domain, s2s_port)
    if muc_domain:
        dns.add_domain(muc_domain, s2s_port)
    output = directory / "ejabberd.out"
    started = time.monotonic()
    with _running(dns.namespaced(*ctl, "foreground"), output) as process:
        _wait_listening(process, (c2s_port, s2s_port), output)
        for user, password in users.items():
            registered = subprocess.run(
                [*ctl, "register", user, domain, password],
                capture_output=True,
                text=True,
                timeout=CTL_TIMEOUT,
            )
            assert registered.returncode == 0, registered.stdout + registered.stderr
        server = ReferenceServer(
            "ejabberd",
            domain,
            muc_domain,
            c2s_port,
            s2s_port,
            users,
            cafile,
            directory,
            (logs / "ejabberd.log", logs / "error.log", output),
            time.monotonic() - started,
            ctl,
        )
        try:
            yield server
        finally:
            server.ctl("stop")
