"""Run a real ``heron serve`` for a test: own data directory, free ports, clean stop.

Readiness is the server's own "heron serving" log line, never a sleep.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from heron.app import account_policy
from heron.config import load_config
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


_PROVISIONED: dict[Hashable, Path] = {}
"""Data directories as ``heron cert`` and ``heron user import`` left them, by what they
depend on; this worker's own, removed when it exits."""


def provision(config: Path, users: Mapping[str, str], *, reuse: bool = True) -> None:
    """Give ``config``'s new data directory a certificate (``heron cert``, unless the
    configured one exists) and the accounts of ``users`` (address to password, one
    ``heron user import``).

    Each of those runs is a Python start and heron's imports, seconds of CPU on a loaded
    2-core CI machine, and most fixtures want the same: so the commands run once per worker
    for each set of names, account policy and users, and later data directories are copies
    (same files, modes, key and salts). ``reuse=False`` (a test of what the commands
    create), a configuration that keeps any of it outside the data directory, or a data
    directory that already holds something, gets the commands.
    """
    settings = load_config(config)
    cert = not settings.certificate_path.exists()
    made = [settings.sqlite_path]
    if cert:
        made += [settings.certificate_path, settings.key_path]
    inside = all(path is not None and settings.data_dir in path.parents for path in made)
    fresh = not settings.data_dir.exists() or not any(settings.data_dir.iterdir())
    if not (reuse and inside and fresh):
        _provision_with_cli(config, users, cert)
        return
    key = (tuple(settings.tls_names) if cert else None, account_policy(settings), *users.items())
    template = _PROVISIONED.get(key)
    if template is None:
        _provision_with_cli(config, users, cert)
        template = Path(tempfile.mkdtemp(prefix="heron-provisioned-")) / "var"
        atexit.register(partial(shutil.rmtree, template.parent, ignore_errors=True))
        shutil.copytree(settings.data_dir, template)
        _PROVISIONED[key] = template
        return
    shutil.copytree(template, settings.data_dir, dirs_exist_ok=True)


def _provision_with_cli(config: Path, users: Mapping[str, str], cert: bool) -> None:
    if cert:
        certified = heron_cli(config, "cert")
        assert certified.returncode == 0, certified.stderr
    if users:
        lines = "".join(f"{address} {password}\n" for address, password in users.items())
        imported = heron_cli(config, "user", "import", "-", stdin=lines)
        assert imported.returncode == 0, imported.stderr


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

    ``users`` maps address to password; they are added before the start (:func:`provision`).
    """
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(base_settings(directory), settings)))
    provision(config, users or {})
    with serving(config) as running:
        yield running
