"""The ``heron`` command run in-process, for the CLI tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from heron.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def heron(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """Run ``heron ARGS`` in-process; return (status, stdout, stderr)."""

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = 0
        try:
            main(list(args))
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    return run
