"""heron from this repository as the benches run it: its command, its set-up commands and a
served instance, started from the ``heron.toml`` each bench writes.

heron is ready when its log says "heron serving" and the bench's own probe (an OPTIONS,
a stream header) is answered.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.proc import REPO, Address, RunningServer, ServerUnavailable, stop_process, wait_ready

__all__ = ["SERVING", "heron_cli", "heron_command", "running_heron"]

SERVING = b"heron serving"
"""What heron logs once every listener is up."""


def heron_command() -> list[str]:
    """``.venv/bin/heron`` next to the interpreter running the bench, else ``-m heron``."""
    script = Path(sys.executable).with_name("heron")
    return [str(script)] if script.exists() else [sys.executable, "-m", "heron"]


def heron_cli(config: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> None:
    """Run one ``heron`` set-up command; its last line of output is the reason it failed."""
    command = [*heron_command(), "-c", str(config), *args]
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerUnavailable(f"heron {' '.join(args[:2])} failed: {exc}") from None
    if done.returncode:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ServerUnavailable(f"heron {' '.join(args[:2])} failed: {why[0]}")


@contextmanager
def running_heron(
    config: Path,
    log: Path,
    address: Address,
    answers: Callable[[], bool],
    *,
    answer_seconds: float = 60.0,
    silent: str = "",
    processes: int = 1,
) -> Iterator[RunningServer]:
    """``heron serve`` on ``config``, logging to the end of ``log``, stopped when the block
    ends; ready once it logs that it serves and ``answers()`` is true, within
    ``answer_seconds`` of that. ``silent`` replaces the reason when it never answers.
    With workers each of the ``processes`` logs that it serves, the main process last:
    a bench that started on the first line would load a main process still starting."""
    command = [*heron_command(), "-c", str(config), "serve"]
    with log.open("ab") as sink:
        offset = sink.tell()
        try:
            process = subprocess.Popen(
                command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise ServerUnavailable(f"cannot run heron: {exc}") from None

    def serving() -> bool:
        with log.open("rb") as source:
            source.seek(offset)
            return source.read().count(SERVING) >= processes

    try:
        wait_ready(process, serving, 60.0, log)
        try:
            wait_ready(process, answers, answer_seconds, log)
        except ServerUnavailable:
            if not silent or process.poll() is not None:
                raise
            raise ServerUnavailable(silent) from None
        yield RunningServer("heron", address, process.pid, log)
    finally:
        stop_process(process, grace=10.0)
