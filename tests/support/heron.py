"""Run a real ``heron serve`` for a test: own data directory, free ports, clean stop.

Readiness is the server's own "heron serving" log line, never a sleep.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.config import free_port, render_toml

HERON = [sys.executable, "-m", "heron"]


@dataclass
class RunningHeron:
    config: Path
    process: subprocess.Popen[str]
    log: list[str]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run another ``heron`` command against the same configuration."""
        return heron_cli(self.config, *args, stdin=stdin)


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def base_settings(directory: Path) -> dict[str, Any]:
    """Every service off but the web listener, on free loopback ports."""
    return {
        "data_dir": str(directory / "var"),
        "turn": {"enabled": False},
        "sip": {"enabled": False},
        "xmpp": {"enabled": False},
        "web": {"listen": [f"127.0.0.1:{free_port()}"]},
    }


def heron_cli(
    config: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``heron`` command against ``config``."""
    return subprocess.run(
        [*HERON, "-c", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def serving(config: Path, wrapper: Sequence[str] = ()) -> Iterator[RunningHeron]:
    """``heron serve`` on ``config`` until the block ends, then SIGTERM (kill after 30 s).

    ``wrapper`` is a command that execs the rest, such as ``ip netns exec NAME``.
    """
    process = subprocess.Popen(
        [*wrapper, *HERON, "-c", str(config), "serve"], stderr=subprocess.PIPE, text=True
    )
    running = RunningHeron(config, process, [])
    try:
        assert process.stderr is not None
        for line in process.stderr:
            running.log.append(line)
            if "heron serving" in line:
                break
        else:
            raise AssertionError("heron did not start:\n" + "".join(running.log))
        # Keep reading, so a chatty server never blocks on a full pipe.
        drain = threading.Thread(target=running.log.extend, args=(process.stderr,), daemon=True)
        drain.start()
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_heron(
    directory: Path,
    settings: dict[str, Any],
    users: dict[str, str] | None = None,
) -> Iterator[RunningHeron]:
    """Start heron with ``settings`` merged over :func:`base_settings`; stop it after.

    ``users`` maps address to password; they are added before the start.
    """
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(base_settings(directory), settings)))
    assert heron_cli(config, "cert").returncode == 0
    for address, password in (users or {}).items():
        added = heron_cli(config, "user", "add", address, "--password-stdin", stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    with serving(config) as running:
        yield running
