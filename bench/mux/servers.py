"""heron with its web component on two ports (``web.listen`` and ``mux.listen``), and sslh.

heron runs from a generated ``heron.toml``: TURN, SIP and XMPP off, the web
component on a free loopback port, the mux on another, loopback exempt from the
per-source connection cap (sslh's connections to heron all come from
127.0.0.1), after ``heron cert``. A heron whose configuration refuses
``[mux] listen`` (the mux not built yet) runs without it and the mux route is
reported as skipped with that reason; so is a mux port that does not answer.

sslh (Debian's package, ``sslh-select`` by default: one process, an event
loop, as heron) listens on a third port and sends TLS offering ``h2`` or
``http/1.1`` to heron's ``web.listen``, the way sslh is put in front of a web
server on port 443. It runs in a session of its own, whose processes are all
killed when it stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bench.heron import heron_cli, running_heron
from bench.mux.client import fetch_health
from bench.proc import Address, RunningServer, ServerUnavailable, free_port, stop_process
from bench.proc import wait_ready as wait_process
from heron.config import Config

__all__ = ["Heron", "mux_refused", "running_heron_routes", "running_sslh", "sslh_version"]

PROBE_SECONDS = 10.0
"""How long after "heron serving" a route may take to answer ``GET /healthz``."""


def mux_refused() -> str | None:
    """Why this heron's configuration refuses ``[mux] listen``, or None if it takes it."""
    try:
        Config.model_validate({"mux": {"listen": ["127.0.0.1:443"]}})
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"heron refuses [mux] listen: {first['msg']}"
    return None


@dataclass(frozen=True, slots=True)
class Heron:
    """A started heron and the routes it serves: ``mux`` is None when it has no mux."""

    server: RunningServer
    direct: Address
    mux: Address | None
    mux_missing: str


def _config_text(workdir: Path, web: Address, mux: Address | None) -> str:
    mux_section = f'\n[mux]\nlisten = ["{mux[0]}:{mux[1]}"]\n' if mux else ""
    return f"""\
domain = "localhost"
data_dir = "{workdir / "data"}"
log_level = "info"

[turn]
enabled = false

[sip]
enabled = false

[xmpp]
enabled = false

[web]
listen = ["{web[0]}:{web[1]}"]

[limits]
# The load comes from loopback addresses, and sslh's side from 127.0.0.1 alone.
connections_exempt = ["127.0.0.0/8"]
{mux_section}"""


@contextmanager
def running_heron_routes(workdir: Path, taken: set[int]) -> Iterator[Heron]:
    """heron serving ``/healthz`` on ``web.listen`` and, if it has a mux, on ``mux.listen``."""
    workdir.mkdir(parents=True, exist_ok=True)
    direct: Address = ("127.0.0.1", free_port(taken))
    refused = mux_refused()
    mux: Address | None = None if refused else ("127.0.0.1", free_port(taken))
    config = workdir / "heron.toml"
    config.write_text(_config_text(workdir, direct, mux))
    heron_cli(config, "cert")
    with running_heron(
        config,
        workdir / "heron.log",
        direct,
        lambda: fetch_health(direct) is None,
        answer_seconds=PROBE_SECONDS,
        silent=f"heron serves, but GET /healthz on web.listen {direct[0]}:{direct[1]} fails",
    ) as server:
        missing = refused or ""
        if mux is not None:
            why = fetch_health(mux, timeout=PROBE_SECONDS)
            if why is not None:
                missing = f"GET /healthz through mux.listen {mux[0]}:{mux[1]} failed: {why}"
                mux = None
        yield Heron(server, direct, mux, missing)


def sslh_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (done.stdout.strip() or done.stderr.strip() or "unknown").splitlines()[0]


def _sslh_config(workdir: Path, address: Address, target: Address) -> str:
    """TLS offering ``h2`` or ``http/1.1`` goes to heron, as the mux sends it to the web
    component; ``log_level: 0``: no line per connection (heron logs none either)."""
    return f"""\
foreground: true;
numeric: true;
pidfile: "{workdir / "sslh.pid"}";
listen: ( {{ host: "{address[0]}"; port: "{address[1]}"; }} );
protocols: (
  {{ name: "tls"; host: "{target[0]}"; port: "{target[1]}";
     alpn_protocols: [ "h2", "http/1.1" ]; log_level: 0; }}
);
"""


@contextmanager
def running_sslh(
    workdir: Path, taken: set[int], target: Address, binary: str
) -> Iterator[RunningServer]:
    """sslh in the foreground on a free port, TLS to ``target``; ready once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    address: Address = ("127.0.0.1", free_port(taken))
    log = workdir / "sslh.log"
    config = workdir / "sslh.cfg"
    config.write_text(_sslh_config(workdir, address, target))
    command = [binary, f"-F{config}"]
    with log.open("wb") as sink:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerUnavailable(f"cannot run {binary}: {exc}") from None
    try:
        wait_process(process, lambda: fetch_health(address) is None, PROBE_SECONDS, log)
        yield RunningServer("sslh", address, process.pid, log)
    finally:
        stop_process(process)
        # sslh-fork's listener and connection processes may outlive their parent for a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
