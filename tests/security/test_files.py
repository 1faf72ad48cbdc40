"""The account database and the secrets are the owner's alone (issue: world-readable heron.db)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.security.support import Target


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_heron_creates_under_a_loose_umask_is_private(heron: Target) -> None:
    """The target's data directory was made by ``heron cert`` and ``heron user import`` with
    the test runner's umask (022: the usual one, checked below)."""
    previous = os.umask(0o022)
    os.umask(previous)
    assert previous & 0o077 != 0o077, "the attack needs a umask that lets others read"
    data = heron.data_dir
    assert mode(data) == 0o700
    for name in ("heron.db", "heron.db-wal", "sip_secret", "turn_secret", "tls/heron.key"):
        path = data / name
        assert path.exists(), name
        assert mode(path) & 0o077 == 0, f"{name} is {mode(path):04o}"


def test_heron_check_warns_of_a_data_directory_others_can_read(heron: Target) -> None:
    (heron.data_dir).chmod(0o755)
    (heron.data_dir / "heron.db").chmod(0o644)
    checked = heron.heron.cli("check")
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("warn")]
    assert any(f"{heron.data_dir} is 0755" in line and "chmod 700" in line for line in warnings)
    assert any("heron.db is 0644" in line and "chmod 600" in line for line in warnings)
