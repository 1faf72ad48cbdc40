"""``heron backup`` and ``heron restore``: one archive with what a data directory holds.

The SQLite database is copied with SQLite's online backup API, so the copy is one
consistent snapshot while heron serves and writes (WAL readers never block its
writers); the secrets (SIP, TURN) and the TLS key and certificate beside it are
files. The archive is the owner's alone (0600): it holds as much as the data
directory. Restoring reads only the member names heron writes, so an archive
never places a file elsewhere, and it never writes under a running server.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import tarfile
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from heron.config import Config
from heron.control import NotRunning, query
from heron.errors import HeronError

__all__ = ["BackupError", "Member", "backup", "members", "restore", "running"]

MANIFEST = "heron-backup.json"
FORMAT = 1
DATABASE = "heron.db"
_MAX_MEMBER = 1 << 34
"""16 GiB: a bound on what one member may claim, far above any real database."""


class BackupError(HeronError):
    """The archive cannot be made or restored; the data directory is unchanged."""


@dataclass(frozen=True)
class Member:
    name: str
    """The member's name in the archive."""
    path: Path
    """Where the configuration keeps it."""


def members(config: Config) -> list[Member]:
    """What a backup of ``config``'s data directory holds, wherever it exists."""
    found = []
    if config.sqlite_path is not None:
        found.append(Member(DATABASE, config.sqlite_path))
    found.append(Member("sip_secret", config.sip_secret_path))
    if config.turn.auth_secret is None:
        found.append(Member("turn_secret", config.turn_secret_path))
    found.append(Member("tls/heron.key", config.key_path))
    found.append(Member("tls/heron.crt", config.certificate_path))
    return found


async def running(config: Config) -> bool:
    """Whether a server answers on ``config``'s data directory's control socket."""
    try:
        await query(config.data_dir, "ping")
    except NotRunning:
        return False
    except HeronError:
        return True  # it answered: it does not know "ping", but it runs
    return True


def _copy_database(source: Path, target: Path) -> None:
    """One snapshot through SQLite's backup API, whatever heron writes meanwhile."""
    with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


def backup(config: Config, archive: Path) -> list[Member]:
    """Write ``archive`` (replaced atomically if it exists); the members written."""
    written = []
    directory = archive.resolve().parent
    with tempfile.TemporaryDirectory(dir=directory, prefix=".heron-backup-") as scratch:
        partial = Path(scratch) / "archive"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for member in members(config):
                source = member.path
                if member.name == DATABASE and source.exists():
                    source = Path(scratch) / DATABASE
                    _copy_database(member.path, source)
                if not source.is_file():
                    continue
                tar.add(source, arcname=member.name, recursive=False)
                written.append(member)
            manifest = json.dumps({"format": FORMAT, "members": [m.name for m in written]}).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(manifest)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(manifest))
        os.chmod(partial, 0o600)
        os.replace(partial, archive)
    return written


def _open(archive: Path) -> tarfile.TarFile:
    try:
        tar = tarfile.open(archive, mode="r:gz")
        manifest = tar.extractfile(MANIFEST)
    except (OSError, tarfile.TarError, KeyError) as exc:
        raise BackupError(f"{archive}: not a heron backup ({exc})") from None
    try:
        described = json.loads(manifest.read(4096)) if manifest is not None else None
    except (ValueError, OSError, tarfile.TarError):
        described = None
    if not isinstance(described, dict) or described.get("format") != FORMAT:
        tar.close()
        raise BackupError(f"{archive}: not a heron backup of format {FORMAT}")
    return tar


def restore(config: Config, archive: Path, *, force: bool, serving: bool) -> list[Member]:
    """Put the archive's members where ``config`` keeps them; the members written.

    ``serving``: a server runs on this data directory (then nothing is written).
    """
    if serving:
        raise BackupError(
            f"heron is running on {config.data_dir}: stop it before restoring into it"
        )
    with _open(archive) as tar:
        try:
            listed = tar.getmembers()
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"{archive}: damaged ({exc})") from None
        wanted = {m.name: m for m in members(config)}
        entries = {
            info.name: info
            for info in listed
            if info.name in wanted and info.isfile() and info.size <= _MAX_MEMBER
        }
        if DATABASE not in wanted and any(info.name == DATABASE for info in listed):
            raise BackupError(
                f"{archive} holds a SQLite database, but the configuration's is "
                f"{config.database_url.partition(':')[0]}: restore it by hand"
            )
        present = [wanted[name].path for name in entries if wanted[name].path.exists()]
        if present and not force:
            raise BackupError(f"{present[0]} exists; --force replaces it")
        restored = []
        for name, info in entries.items():
            member = wanted[name]
            source = tar.extractfile(info)
            assert source is not None  # a regular file
            _write(member.path, source)
            restored.append(member)
    if config.sqlite_path is not None and DATABASE in entries:
        for suffix in ("-wal", "-shm"):
            Path(f"{config.sqlite_path}{suffix}").unlink(missing_ok=True)
    return restored


def _write(path: Path, source: IO[bytes]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
