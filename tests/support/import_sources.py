"""Databases made by coturn's, Kamailio's and Prosody's own tools, for ``heron import`` tests.

Each writes into the test's directory only: turnadmin its SQLite ``turndb``; kamdbctl and
kamctl a SQLite database named by a ``.kamctlrc`` in a private HOME (kamctl reads
``~/.kamctlrc``; no file of /etc changes); prosodyctl a data directory of its own config.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.config import free_port
from tests.support.federation.reference import _running, _wait_listening
from tests.support.tools import require_tool

TIMEOUT = 60


def run_tool(command: list[str], env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **env} if env else None,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


def coturn_db(
    directory: Path, users: Mapping[str, str], realm: str, admins: Mapping[str, str] = {}
) -> Path:
    """``turnadmin -a -b DB -u NAME -r REALM -p PASS`` per user, ``-A`` per admin."""
    turnadmin = require_tool("turnadmin", "coturn")
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "turndb"
    for name, password in users.items():
        run_tool([turnadmin, "-a", "-b", str(db), "-u", name, "-r", realm, "-p", password])
    for name, password in admins.items():
        run_tool([turnadmin, "-A", "-b", str(db), "-u", name, "-p", password])
    return db


def kamailio_db(
    directory: Path, domain: str, users: Mapping[str, str], hashed_only: Mapping[str, str] = {}
) -> Path:
    """``kamdbctl create`` then ``kamctl add`` per user on SQLite; ``hashed_only`` users are
    added with STORE_PLAINTEXT_PW=0, so their rows keep the HA1 hashes alone."""
    require_tool("sqlite3", "sqlite3")
    db = directory / "kamailio.sqlite"
    kamctl_users(directory, f'DBENGINE=SQLITE\nDB_PATH="{db}"\n', domain, users, hashed_only)
    return db


def kamctl_users(
    directory: Path,
    database: str,
    domain: str,
    users: Mapping[str, str],
    hashed_only: Mapping[str, str],
) -> None:
    """``kamdbctl create`` then ``kamctl add`` per user, from a ``.kamctlrc`` in a private
    HOME (kamctl reads ``~/.kamctlrc``) whose ``database`` lines say where; ``hashed_only``
    users are added with STORE_PLAINTEXT_PW=0."""
    kamdbctl = require_tool("kamdbctl", "kamailio")
    kamctl = require_tool("kamctl", "kamailio")
    directory.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(directory)}

    def rc(plaintext: bool) -> None:
        (directory / ".kamctlrc").write_text(
            f"{database}SIP_DOMAIN={domain}\n"
            "INSTALL_EXTRA_TABLES=no\nINSTALL_PRESENCE_TABLES=no\nINSTALL_DBUID_TABLES=no\n"
            f"STORE_PLAINTEXT_PW={1 if plaintext else 0}\n"
        )

    rc(plaintext=True)
    run_tool([kamdbctl, "create"], env)
    for name, password in users.items():
        run_tool([kamctl, "add", name, password], env)
    rc(plaintext=False)
    for name, password in hashed_only.items():
        run_tool([kamctl, "add", name, password], env)


def prosody_config(
    directory: Path,
    domain: str,
    extra: str = "",
    storage: str = "internal",
    sql: str = '{ driver = "SQLite3", database = "prosody.sqlite" }',
) -> Path:
    """A Prosody configuration whose data directory is ``directory / "data"``; ``storage``
    "sql" keeps it where ``sql`` (a Lua table) says, by default ``data/prosody.sqlite``
    (mod_storage_sql with luadbi's SQLite3)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "prosody.cfg.lua"
    config.write_text(
        f'run_as_root = true\ndaemonize = false\ndata_path = "{directory / "data"}"\n'
        f'pidfile = "{directory / "prosody.pid"}"\n'
        f'certificates = "{directory}"\n'
        f'authentication = "internal_hashed"\nstorage = "{storage}"\n'
        f"sql = {sql}\n"
        f'log = {{ error = "{directory / "prosody.err"}" }}\n'
        f"{extra}\n"
        f'VirtualHost "{domain}"\n'
    )
    return config


def prosody_data(
    directory: Path, domain: str, users: Mapping[str, str], storage: str = "internal"
) -> Path:
    """``prosodyctl --config FILE register USER DOMAIN PASSWORD`` per user; the data dir."""
    prosodyctl = require_tool("prosodyctl", "prosody")
    config = prosody_config(directory, domain, storage=storage)
    for name, password in users.items():
        run_tool([prosodyctl, "--config", str(config), "register", name, domain, password])
    return directory / "data"


@contextmanager
def prosody_running(
    directory: Path,
    domain: str,
    users: Mapping[str, str],
    storage: str = "internal",
    vcards: str = '"vcard"',
) -> Iterator[int]:
    """Prosody on a free loopback port with ``users`` registered, its data in
    ``directory / "data"``, and the group-chat component ``conference.DOMAIN``; yields
    the c2s port. ``vcards`` are the modules (Lua strings) that keep vCards: "vcard"
    (mod_vcard's ``vcard`` store), or "pep"; "vcard_legacy" (0.12's default: PEP nodes).
    Plain c2s on loopback (no certificate to make): SCRAM-SHA-1 needs no TLS in Prosody."""
    binary = require_tool("prosody", "prosody")
    port = free_port()
    extra = (
        f'interfaces = {{ "127.0.0.1" }}\nc2s_ports = {{ {port} }}\ns2s_ports = {{ }}\n'
        "http_ports = { }\nhttps_ports = { }\nc2s_direct_tls_ports = { }\n"
        "c2s_require_encryption = false\n"
        f'modules_enabled = {{ "roster"; "saslauth"; "disco"; "offline"; {vcards} }}\n'
        'modules_disabled = { "s2s"; "limits" }\n'
    )
    config = prosody_config(directory, domain, extra, storage)
    with config.open("a") as file:
        file.write(f'Component "conference.{domain}" "muc"\n')
    prosodyctl = require_tool("prosodyctl", "prosody")
    for name, password in users.items():
        run_tool([prosodyctl, "--config", str(config), "register", name, domain, password])
    output = directory / "prosody.out"
    with _running([binary, "--config", str(config), "-F"], output) as process:
        _wait_listening(process, (port,), output)
        yield port
