"""baresip as a desk phone: plain RTP (RTP/AVP, G.711), registered to heron over UDP.

Each phone has a configuration directory of its own (``config`` and ``accounts``), plays a
tone WAV as its microphone (the ``aufile`` source; the call ends when the file does, so
make it longer than any call) and records what it hears (the ``sndfile`` filter writes
``dump-<time>-dec.wav`` per call into ``recordings``; the ``-enc`` twin is what it sent).
ALSA's ``null`` device is the loudspeaker: no sound card needed.

It is driven over its ``ctrl_tcp`` module (JSON in netstrings): commands get a response
with the token they carried, and every call event (``CALL_INCOMING``,
``CALL_ESTABLISHED``, ``CALL_CLOSED``...) arrives on the same connection, read by a
thread into a queue that the test waits on. Readiness is baresip's own line for the
REGISTER's 200 OK, never a sleep.

baresip 1.0 (Debian 12) knows MD5 digests only and gives up on a SHA-256 challenge it meets
first or alone: the heron it registers to needs ``sip.digest_algorithms = ["MD5"]``.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.config import free_port
from tests.support.tools import require_tool

MODULES = Path("/usr/lib/baresip/modules")
EVENT_TIMEOUT = 20.0
"""Seconds a call step may take (a registration, an answer, a re-INVITE)."""
WAV_HEADER = 44
RTP_PORTS = "50000-59999"
"""Above the servers' (10000-31999) and heron's default media range (40000-49151); baresip
tries another at random when one is taken."""


class ControlClosed(AssertionError):
    """baresip closed its control connection (it exited)."""


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode("ascii") + b":" + payload + b","


def _config(directory: Path, tone: Path, control_port: int, rate: int) -> str:
    """baresip's config: SIP on a loopback port of the kernel's choosing, G.711 only."""
    settings = {
        "poll_method": "epoll",
        "net_interface": "127.0.0.1",  # SDP and RTP on 127.0.0.1, not the machine's other address
        "sip_listen": "127.0.0.1:0",  # UDP, TCP and TLS each on a port of their own
        "audio_source": f"aufile,{tone}",
        "audio_player": "alsa,null",
        "audio_alert": "alsa,null",
        "ausrc_srate": str(rate),
        "auplay_srate": str(rate),
        "ausrc_channels": "1",
        "auplay_channels": "1",
        "rtp_ports": RTP_PORTS,
        "module_path": str(MODULES),
        "ctrl_tcp_listen": f"127.0.0.1:{control_port}",
        "snd_path": str(directory / "recordings"),
        "statmode_default": "off",  # no call status line on stdout every few milliseconds
    }
    modules = [
        ("module", "g711.so"),
        ("module", "aufile.so"),
        ("module", "alsa.so"),
        ("module", "sndfile.so"),
        ("module_app", "account.so"),
        ("module_app", "menu.so"),  # the commands: dial, accept, hangup, hold, resume
        ("module_app", "ctrl_tcp.so"),
    ]
    lines = [f"{key}\t{value}" for key, value in [*settings.items(), *modules]]
    return "\n".join(lines) + "\n"


def account_line(aor: str, password: str, proxy: tuple[str, int], auto_answer: bool) -> str:
    """One ``accounts`` line: the AOR, its digest password, heron as outbound proxy."""
    host, port = proxy
    answer = "auto" if auto_answer else "manual"
    return (
        f"<sip:{aor};transport=udp>;auth_pass={password};"
        f'outbound="sip:{host}:{port};transport=udp";regint=3600;'
        f"answermode={answer};audio_codecs=PCMU,PCMA\n"
    )


@dataclass
class Baresip:
    """A running baresip and its control connection."""

    aor: str
    directory: Path
    process: subprocess.Popen[str]
    control: socket.socket
    rate: int
    log: list[str] = field(default_factory=list)
    _messages: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    _backlog: list[dict[str, Any]] = field(default_factory=list)
    _tokens: int = 0

    @property
    def recordings(self) -> Path:
        return self.directory / "recordings"

    def received(self) -> list[Path]:
        """What it heard, one WAV per call, oldest first."""
        return sorted(self.recordings.glob("dump-*-dec.wav"))

    def recorded(self, seconds: float, timeout: float = EVENT_TIMEOUT) -> None:
        """Wait until the current call's recording holds ``seconds`` of audio, as its file
        grows (for calls that bring no RTCP reports, such as the echo number's)."""
        deadline = time.monotonic() + timeout
        wanted = WAV_HEADER + seconds * self.rate * 2
        while not any(path.stat().st_size >= wanted for path in self.received()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.aor}: no {seconds} s recorded in {timeout} s")
            time.sleep(0.1)

    def command(self, command: str, params: str = "") -> dict[str, Any]:
        """Run a menu command; its response (``ok``, ``data``), events seen meanwhile kept."""
        self._tokens += 1
        token = f"t{self._tokens}"
        message = {"command": command, "params": params, "token": token}
        self.control.sendall(_netstring(json.dumps(message).encode()))
        return self._next(lambda m: m.get("response") is True and m.get("token") == token)

    def event(self, kind: str, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The next event of type ``kind`` (``CALL_ESTABLISHED``...), skipping the others."""
        return self._next(lambda m: m.get("event") is True and m.get("type") == kind, timeout)

    def logged(self, text: str, timeout: float = EVENT_TIMEOUT) -> str:
        """The next line of its log containing ``text`` (``got re-INVITE``...)."""
        line: str = self._next(lambda m: text in m.get("log", ""), timeout)["log"]
        return line

    def _next(self, wanted: Any, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The oldest message not yet taken that ``wanted`` accepts: control messages and
        log lines (``log``) come through one queue in the order they arrived, and what one
        wait passes over stays for the next (a BYE's log line may come before the response
        to the ``hangup`` that caused it)."""
        for index, kept in enumerate(self._backlog):
            if wanted(kept):
                return self._backlog.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                seen = [m.get("type") for m in self._backlog if "log" not in m]
                raise AssertionError(
                    f"{self.aor}: nothing wanted within {timeout} s; events seen {seen}\n"
                    + "".join(self.log[-30:])
                ) from None
            if message is None:
                raise ControlClosed(f"{self.aor}: baresip exited:\n" + "".join(self.log[-30:]))
            if wanted(message):
                return message
            self._backlog.append(message)

    def run(self, command: str, params: str = "") -> None:
        """A menu command that must succeed: ``dial`` (a URI), ``accept``, ``hangup``,
        ``hold``, ``resume``."""
        done = self.command(command, params)
        assert done["ok"], done

    def dial(self, uri: str) -> None:
        self.run("dial", uri)

    def _read_log(self, lines: Iterator[str]) -> None:
        for line in lines:
            self.log.append(line)
            self._messages.put({"log": line})

    def _read_control(self) -> None:
        """Split the control stream into JSON messages for the queue; None when it ends."""
        buffer = b""
        try:
            while chunk := self.control.recv(65536):
                buffer += chunk
                while b":" in buffer:
                    length, rest = buffer.split(b":", 1)
                    size = int(length)
                    if len(rest) < size + 1:
                        break
                    self._messages.put(json.loads(rest[:size]))
                    buffer = rest[size + 1 :]
        except OSError:
            pass
        finally:
            self._messages.put(None)


@contextmanager
def baresip(
    directory: Path,
    aor: str,
    password: str,
    proxy: tuple[str, int],
    tone: Path,
    rate: int = 8000,
    auto_answer: bool = True,
) -> Iterator[Baresip]:
    """A baresip registered as ``aor`` through ``proxy`` (heron's UDP listener), playing
    ``tone`` (16-bit mono at ``rate``); SIGTERM at the end (it un-REGISTERs)."""
    binary = require_tool("baresip", "baresip")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "recordings").mkdir(exist_ok=True)
    control_port = free_port()
    (directory / "config").write_text(_config(directory, tone, control_port, rate))
    (directory / "accounts").write_text(account_line(aor, password, proxy, auto_answer))
    process = subprocess.Popen(
        [binary, "-f", str(directory)],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    control: socket.socket | None = None
    try:
        assert process.stdout is not None
        user = aor.split("@", 1)[0]
        for line in process.stdout:
            log.append(line)
            if line.startswith(f"{aor}: ") and " 200 OK " in line:
                break
            if f"sip:{aor}: Register:" in line or "init failed" in line:
                raise AssertionError(f"baresip {user} did not register:\n" + "".join(log))
        else:
            raise AssertionError(f"baresip {user} exited:\n" + "".join(log))
        control = socket.create_connection(("127.0.0.1", control_port), timeout=10)
        control.settimeout(None)
        phone = Baresip(aor, directory, process, control, rate, log)
        threading.Thread(target=phone._read_log, args=(process.stdout,), daemon=True).start()
        threading.Thread(target=phone._read_control, daemon=True).start()
        yield phone
    finally:
        if control is not None:
            control.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
