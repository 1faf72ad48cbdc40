"""The account database and the secrets are the owner's alone (issue: world-readable heron.db)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.security.support import Target, target


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_heron_creates_under_a_loose_umask_is_private(tmp_path: Path) -> None:
    """``heron cert``, ``heron user import`` and ``heron serve`` run with the usual shell
    umask of 022, which would leave the account database readable by every local user."""
    previous = os.umask(0o022)
    try:
        with target(tmp_path / "heron", reuse=False) as heron:
            data = heron.data_dir
            assert mode(data) == 0o700
            for name in ("heron.db", "heron.db-wal", "sip_secret", "turn_secret", "tls/heron.key"):
                path = data / name
                assert path.exists(), name
                assert mode(path) & 0o077 == 0, f"{name} is {mode(path):04o}"
    finally:
        os.umask(previous)


def test_heron_check_fails_a_data_directory_others_can_read(heron: Target) -> None:
    (heron.data_dir).chmod(0o755)
    (heron.data_dir / "heron.db").chmod(0o644)
    checked = heron.heron.cli("check")
    assert checked.returncode == 1, checked.stdout
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
    assert any(f"{heron.data_dir} is 0755" in line and "chmod 700" in line for line in warnings)
    assert any("heron.db is 0644" in line and "chmod 600" in line for line in warnings)
