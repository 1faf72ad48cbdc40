"""The two bridges under test, each behind its SIP proxy, and how each counts relayed packets.

- **heron**: one ``heron serve`` whose SIP proxy steers its own media bridge
  (``sip.media_relay = "webrtc"``, the default); the desk phone is a static route
  (``sip.routes``), the caller an account with an MD5 digest password.
- **Kamailio + rtpengine**: Kamailio 5.6 with a configuration made at run time (no
  database, no authentication: only the media path is compared) calling
  ``rtpengine_offer``/``rtpengine_answer`` as the WebRTC examples do (a SAVPF offer goes
  to the desk phone as RTP/AVP without ICE; its answer comes back with ICE and DTLS),
  and rtpengine 10.5 forwarding in userspace (``--table=-1``: no kernel module).

Server CPU is the process tree's: heron's one process; Kamailio's and rtpengine's
together (rtpengine alone is given too).
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.heron import heron_cli, running_heron
from bench.proc import Address, ServerUnavailable, free_port, stop_process, wait_ready
from bench.sip.servers import answers_options

__all__ = ["CALLER", "DOMAIN", "Bridged", "Heron", "Kamailio", "missing_tools"]

DOMAIN = "localhost"
CALLER = ("webrtc", "bench-webrtc-pass")
"""The account every WebRTC call is placed from (heron asks for its digest)."""
DESK = "desk"
"""The callee's user part: a static route to the sipp UAS."""
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
MEDIA_PORTS = (24000, 27999)
"""Relay ports of both bridges: clear of the bench's own ports and the ephemeral range."""
OFFER_FLAGS = "RTP/AVP replace-origin replace-session-connection ICE=remove rtcp-mux-demux"
"""A browser's offer, as the desk phone gets it: plain RTP, no ICE, RTCP on its own port."""
ANSWER_FLAGS = (
    "UDP/TLS/RTP/SAVPF replace-origin replace-session-connection ICE=force rtcp-mux-require"
)
"""The desk phone's answer, as the browser gets it: DTLS-SRTP, ICE, RTCP muxed."""
DROPPED = "packets_dropped_"
TOOLS = {"kamailio": "kamailio", "rtpengine": "rtpengine-daemon", "sipp": "sip-tester"}


def missing_tools() -> list[str]:
    """Debian packages whose commands are not on PATH."""
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


@dataclass(frozen=True, slots=True)
class Bridged:
    """A running proxy + bridge."""

    name: str
    address: Address
    pids: dict[str, int]
    """Process tree roots whose CPU counts, by name (heron; kamailio and rtpengine)."""
    relayed: Callable[[], int]
    """The packets relayed so far, as the bridge counts them (see each server)."""
    dropped: Callable[[], str]
    """What the bridge says it dropped or failed to relay, for the detail line."""


class Heron:
    name = "heron"

    def __init__(self, workdir: Path, taken: set[int], uas: Address) -> None:
        self.workdir = workdir
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.web_port = free_port(taken)
        self.uas = uas
        self.config = workdir / "heron.toml"

    def _config_text(self) -> str:
        # aiortc gathers host candidates on every interface but loopback: the bridge must
        # answer this host's own addresses too.
        networks = ['"127.0.0.0/8"'] + [f'"{n}"' for n in _host_networks()]
        low, high = MEDIA_PORTS
        host, port = self.address
        return "\n".join(
            [
                f'data_dir = "{self.workdir / "var"}"',
                f'domain = "{DOMAIN}"',
                "[turn]\nenabled = false",
                "[xmpp]\nenabled = false",
                f'[web]\nlisten = ["127.0.0.1:{self.web_port}"]',
                "[media]",
                'address = "127.0.0.1"',
                f"port_min = {low}\nport_max = {high}\nmax_calls = 10000",
                f"allowed_destinations = [{', '.join(networks)}]",
                "[sip]",
                f'listen = ["{host}:{port}"]\ntls_listen = []\nwebsocket = false',
                'digest_algorithms = ["MD5"]\nallowed_destinations = ["127.0.0.0/8"]',
                "[[sip.routes]]",
                f'user = "^{DESK}$"\ntarget = "sip:{DESK}@{self.uas[0]}:{self.uas[1]}"',
                "",
            ]
        )

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config_text())
        heron_cli(self.config, "cert")
        user, password = CALLER
        heron_cli(self.config, "user", "import", "-", stdin=f"{user}@{DOMAIN} {password}\n")

    @contextmanager
    def running(self) -> Iterator[Bridged]:
        with running_heron(
            self.config, self.workdir / "heron.log", self.address, lambda: answers(self.address)
        ) as server:
            pids = {"heron": server.pid}
            yield Bridged(self.name, self.address, pids, self.relayed, self.dropped)

    def relayed(self) -> int:
        """Packets the bridge received from either side less those it dropped, by any
        reason (``media.counters``)."""
        row = self._counters()
        dropped = sum(int(v) for k, v in row.items() if k.startswith(DROPPED))
        return int(row["packets_from_caller"]) + int(row["packets_from_callee"]) - dropped

    def dropped(self) -> str:
        """heron's drops by reason since it started (``media.counters``)."""
        row = self._counters()
        drops = [
            f"{k.removeprefix(DROPPED)} {v:,}"
            for k, v in row.items()
            if k.startswith(DROPPED) and v
        ]
        return "dropped " + (", ".join(drops) or "nothing")

    def _counters(self) -> dict[str, int]:
        from heron.control import query

        row: dict[str, int] = asyncio.run(query(self.workdir / "var", "media.counters"))[0]
        return row


def answers(address: Address) -> bool:
    return answers_options(address)


class Kamailio:
    name = "kamailio"

    def __init__(self, workdir: Path, taken: set[int], uas: Address) -> None:
        self.workdir = workdir
        self.address: Address = ("127.0.0.1", free_port(taken))
        self.ng_port = free_port(taken)
        self.cli_port = free_port(taken)
        self.uas = uas
        self.config = workdir / "kamailio.cfg"

    def _config_text(self) -> str:
        host, port = self.address
        modules = "tm sl rr pv maxfwd textops siputils sdpops rtpengine".split()
        loads = "\n".join(f'loadmodule "{m}.so"' for m in modules)
        return f"""#!KAMAILIO
debug=1
log_stderror=yes
children=2
listen=udp:{host}:{port}
alias="{DOMAIN}"
mpath="{MODULES}/"
{loads}
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{self.ng_port}")
modparam("rr", "append_fromtag", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && uri == myself && !has_totag()) {{
        sl_send_reply("200", "OK"); exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            if (is_method("BYE")) rtpengine_delete();
            t_relay();
            exit;
        }}
        if (is_method("ACK") && t_check_trans()) t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (!is_method("INVITE")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    record_route();
    if (sdp_content() && search_body("UDP/TLS/RTP/SAVPF")) {{
        rtpengine_offer("{OFFER_FLAGS}");
        setflag(1);
    }}
    t_on_reply("ANSWER");
    t_on_failure("FAILED");
    $du = "sip:{self.uas[0]}:{self.uas[1]}";
    t_relay();
}}

onreply_route[ANSWER] {{
    if (isflagset(1) && status =~ "^2" && sdp_content()) {{
        rtpengine_answer("{ANSWER_FLAGS}");
    }}
}}

failure_route[FAILED] {{
    if (isflagset(1)) rtpengine_delete();
}}
"""

    def prepare(self) -> None:
        if missing := [t for t in ("kamailio", "rtpengine") if shutil.which(t) is None]:
            raise ServerUnavailable(f"not installed: {', '.join(missing)}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config_text())
        (self.workdir / "run").mkdir(exist_ok=True)

    @contextmanager
    def running(self) -> Iterator[Bridged]:
        low, high = MEDIA_PORTS
        rtpengine_log = self.workdir / "rtpengine.log"
        rtpengine = [
            "rtpengine", "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
            "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{self.ng_port}",
            f"--listen-cli=127.0.0.1:{self.cli_port}", f"--port-min={low}",
            f"--port-max={high}", "--num-threads=2", "--delete-delay=0", "--log-level=4",
            f"--pidfile={self.workdir / 'run' / 'rtpengine.pid'}",
        ]  # fmt: skip
        kamailio_log = self.workdir / "kamailio.log"
        kamailio = [
            "kamailio", "-f", str(self.config), "-DD", "-E",
            "-Y", str(self.workdir / "run"), "-P", str(self.workdir / "run" / "kamailio.pid"),
            "-w", str(self.workdir), "-m", "128",
        ]  # fmt: skip
        with rtpengine_log.open("ab") as sink:
            media = subprocess.Popen(
                rtpengine, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            wait_ready(media, lambda: self._cli("list totals") is not None, 20.0, rtpengine_log)
            with kamailio_log.open("ab") as sink:
                proxy = subprocess.Popen(
                    kamailio, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                )
            try:
                wait_ready(proxy, lambda: answers(self.address), 20.0, kamailio_log)
                pids = {"kamailio": proxy.pid, "rtpengine": media.pid}
                yield Bridged(self.name, self.address, pids, self.relayed, self.dropped)
            finally:
                stop_process(proxy, grace=10.0)
        finally:
            stop_process(media, grace=10.0)

    def _cli(self, command: str) -> str | None:
        """rtpengine's CLI (what ``rtpengine-ctl`` sends), or None while it does not listen."""
        try:
            with socket.create_connection(("127.0.0.1", self.cli_port), timeout=5) as cli:
                cli.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := cli.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return None
        return b"".join(chunks).decode(errors="replace")

    def relayed(self) -> int:
        """Packets rtpengine relayed in ended calls (``--delete-delay=0``: a call counts as
        soon as its BYE deleted it) plus the running calls' (``list sessions`` gives no
        counts, so the bench reads this after the calls end)."""
        text = self._cli("list totals") or ""
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "Total relayed packets":
                return int(value.strip())
        raise ServerUnavailable("rtpengine's CLI gave no 'Total relayed packets'")

    def dropped(self) -> str:
        """rtpengine's relay errors in ended calls."""
        for line in (self._cli("list totals") or "").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "Total relayed packet errors":
                return f"relay errors {int(value.strip()):,}"
        return "relay errors unknown"


def _host_networks() -> list[str]:
    """This host's own IPv4 addresses other than loopback, as /32 networks."""
    done = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10)
    found = []
    for word in done.stdout.split():
        address = ipaddress.ip_address(word)
        if address.version == 4 and not address.is_loopback:
            found.append(f"{address}/32")
    return found
