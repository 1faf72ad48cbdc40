"""Real clients and servers the tests need: missing ones fail on CI, skip elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def missing(message: str) -> None:
    """Fail when CI=true (`make test` installs everything), else skip with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(f"{message} (on CI this fails)")


def require_tool(name: str, package: str) -> str:
    """The path of ``name``, which Debian's ``package`` provides."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is missing: `make test-deps` installs Debian's {package}")
        raise AssertionError("unreachable")  # pragma: no cover - missing() always raises
    return path


def stop(process: subprocess.Popen[str], timeout: float = 30) -> None:
    """SIGTERM ``process`` and reap it; SIGKILL after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
