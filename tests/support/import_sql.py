"""coturn's, Kamailio's and Prosody's databases on the shared PostgreSQL and MariaDB servers,
made by the daemons' own tools, for ``heron import --db`` tests.

Each database (and each database user kamdbctl makes) has a name of its own, so tests of
other helpers and other workers share the servers safely; all are dropped afterwards.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.config import free_port
from tests.support.federation.reference import _running, _wait_listening
from tests.support.import_sources import TIMEOUT, kamctl_users, prosody_config, run_tool
from tests.support.tools import missing, require_tool

BACKENDS = ("postgresql", "mariadb")
URLS = {"postgresql": "postgresql://postgres@127.0.0.1:5432", "mariadb": "mysql://root@127.0.0.1"}
ROOT = {"postgresql": "postgres", "mariadb": "root"}


def sql(backend: str, statement: str, database: str = "test") -> None:
    """``statement`` run by the server's administrator through psql or mysql."""
    if backend == "postgresql":
        client = require_tool("psql", "postgresql-client")
        command = [client, "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v"]
        command += ["ON_ERROR_STOP=1", "-qc", statement]
    else:
        client = require_tool("mysql", "mariadb-client")
        command = [client, "-h", "127.0.0.1", "-u", "root", database, "-e", statement]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0 and database == "test" and "connect" in done.stderr.lower():
        missing(f"{backend} on 127.0.0.1 is unreachable: {done.stderr.strip()}")
    assert done.returncode == 0, f"{statement}: {done.stderr}"


@contextmanager
def sql_database(backend: str, prefix: str, users: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh name ``heron_<prefix>_<random>`` for a database that the block creates (or
    that is created here when ``users`` is empty); the database and ``users`` (suffixes of
    its name) are dropped afterwards."""
    name = f"heron_{prefix}_{secrets.token_hex(4)}"
    if not users:
        sql(backend, f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        sql(backend, f"DROP DATABASE IF EXISTS {name}{force}")
        for user in (f"{name}{suffix}" for suffix in users):
            hosts = ["'127.0.0.1'", "'localhost'"] if backend == "mariadb" else [""]
            for host in hosts:
                sql(backend, f"DROP USER IF EXISTS {user}{'@' + host if host else ''}")


def coturn_sql(backend: str, database: str, users: Mapping[str, str], realm: str) -> None:
    """coturn's schema.sql loaded into ``database``, then ``turnadmin -a -e|-M CONNINFO``
    per user, as coturn's documentation sets up its PostgreSQL or MySQL user database."""
    turnadmin = require_tool("turnadmin", "coturn")
    schema = Path("/usr/share/coturn/schema.sql").read_text()
    for statement in filter(str.strip, schema.split(";")):
        sql(backend, statement, database)
    option = "-e" if backend == "postgresql" else "-M"
    conninfo = f"host=127.0.0.1 dbname={database} user={ROOT[backend]}"
    for name, password in users.items():
        run_tool([turnadmin, "-a", option, conninfo, "-u", name, "-r", realm, "-p", password])


def kamailio_sql(
    directory: Path,
    backend: str,
    database: str,
    domain: str,
    users: Mapping[str, str],
    hashed_only: Mapping[str, str] = {},
) -> None:
    """``kamdbctl create`` with DBENGINE=MYSQL or PGSQL (the database and its users
    ``<database>_rw``/``_ro``) and ``kamctl add`` per user (``hashed_only`` without the
    password kept)."""
    engine = "PGSQL" if backend == "postgresql" else "MYSQL"
    settings = (
        f"DBENGINE={engine}\nDBHOST=127.0.0.1\nDBNAME={database}\n"
        f"DBRWUSER={database}_rw\nDBRWPW=rw-pw\nDBROUSER={database}_ro\nDBROPW=ro-pw\n"
        f"DBROOTUSER={ROOT[backend]}\nCHARSET=utf8mb4\n"
    )
    kamctl_users(directory, settings, domain, users, hashed_only)


@contextmanager
def kamailio_serving(directory: Path, backend: str, database: str, domain: str) -> Iterator[str]:
    """Kamailio on Debian's kamailio.cfg with WITH_AUTH and WITH_USRLOCDB on ``database``
    (kamailio_sql's), usrloc writing each registration through (db_mode 1), on a free
    port of 127.0.0.1; yields ``host:port``."""
    binary = require_tool("kamailio", "kamailio")
    port = free_port()
    engine = "postgres" if backend == "postgresql" else "mysql"
    text = Path("/etc/kamailio/kamailio.cfg").read_text()
    edits = {
        "#!KAMAILIO\n": (
            "#!KAMAILIO\n#!define WITH_AUTH\n#!define WITH_USRLOCDB\n"
            + ("#!define WITH_MYSQL\n" if engine == "mysql" else "")
            + f'#!define DBURL "{engine}://{database}_rw:rw-pw@127.0.0.1/{database}"\n'
        ),
        'loadmodule "jsonrpcs.so"\n': (
            'loadmodule "db_postgres.so"\n' if engine == "postgres" else ""
        )
        + 'loadmodule "jsonrpcs.so"\n',
        'modparam("usrloc", "db_mode", 2)': 'modparam("usrloc", "db_mode", 1)',
        "####### Custom Parameters #########": (
            f'listen=udp:127.0.0.1:{port}\nlisten=tcp:127.0.0.1:{port}\nalias="{domain}"\n'
            "####### Custom Parameters #########"
        ),
    }
    for old, new in edits.items():
        assert text.count(old) == 1, f"kamailio.cfg: {old!r} is not there once"
        text = text.replace(old, new)
    config = directory / "kamailio.cfg"
    config.write_text(text)
    runtime = directory / "run"
    runtime.mkdir(exist_ok=True)
    output = directory / "kamailio.out"
    command = [binary, "-f", str(config), "-DD", "-E", "-Y", str(runtime), "-w", str(directory)]
    with _running(command, output) as process:
        _wait_listening(process, (port,), output)
        yield f"127.0.0.1:{port}"


def prosody_sql(
    directory: Path, backend: str, database: str, domain: str, users: Mapping[str, str]
) -> None:
    """``prosodyctl register`` per user, Prosody keeping its data in ``database``
    (mod_storage_sql through luadbi's PostgreSQL or MySQL driver)."""
    prosodyctl = require_tool("prosodyctl", "prosody")
    driver = "PostgreSQL" if backend == "postgresql" else "MySQL"
    settings = (
        f'{{ driver = "{driver}", database = "{database}", username = "{ROOT[backend]}", '
        'host = "127.0.0.1" }'
    )
    config = prosody_config(directory, domain, storage="sql", sql=settings)
    for name, password in users.items():
        run_tool([prosodyctl, "--config", str(config), "register", name, domain, password])
