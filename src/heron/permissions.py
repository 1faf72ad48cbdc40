"""Who may read what heron keeps: its owner only.

The data directory holds SIP HA1s (as good as the password for SIP), SCRAM
keys, the SIP and TURN secrets and the TLS key. Every ``heron`` command runs
with a umask of 077, so what it creates is the owner's alone whatever the
shell's umask; :func:`loose_permissions` finds what was made looser by hand or
by an older heron, for ``heron check`` and the start-up log.
"""

from __future__ import annotations

import stat
from pathlib import Path

from heron.config import Config

__all__ = ["PRIVATE_UMASK", "loose_permissions"]

PRIVATE_UMASK = 0o077


def _sqlite_files(config: Config) -> list[Path]:
    database = config.sqlite_path
    if database is None:
        return []
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def loose_permissions(config: Config) -> list[str]:
    """One line per private file or directory that others may read or enter."""
    private = [config.data_dir, *_sqlite_files(config), config.sip_secret_path, config.key_path]
    if config.turn.auth_secret is None:
        private.append(config.turn_secret_path)
    findings = []
    for path in private:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            wanted = 0o700 if path.is_dir() else 0o600
            findings.append(
                f"{path} is {mode:04o}: other users can read it; chmod {wanted:o} {path}"
            )
    return findings
