"""``heron import --db URL``: coturn's, Kamailio's and Prosody's PostgreSQL and MySQL
databases, each made by the daemon's own tool (turnadmin -e/-M, kamdbctl and kamctl with
DBENGINE=PGSQL/MYSQL, prosodyctl with mod_storage_sql), and their users log in to heron with
their old passwords: turnutils_uclient relays, sipp registers by digest, slixmpp logs in over
SCRAM-SHA-1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.interop.importing.support import (
    COTURN_USERS,
    DOMAIN,
    KAMAILIO_HASHED,
    KAMAILIO_USERS,
    PROSODY_USERS,
    Imported,
    assert_registers,
    assert_relays,
    importing_heron,
    xmpp_login,
)
from tests.interop.sip.support import run_sipp
from tests.interop.xmpp.support import log_out
from tests.support.config import free_port, render_toml
from tests.support.heron import base_settings, heron_cli
from tests.support.import_sql import (
    BACKENDS,
    URLS,
    coturn_sql,
    kamailio_serving,
    kamailio_sql,
    prosody_sql,
    sql,
    sql_database,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

PHONES = (free_port(), free_port())
"""The UDP ports of sam's two phones, which register with Kamailio before the import."""


def sam_credentials() -> tuple[str, ...]:
    return ("-s", "sam", "-au", "sam", "-ap", KAMAILIO_USERS["sam"])


@pytest.fixture(scope="module", params=BACKENDS)
def imported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Imported]:
    backend: str = request.param
    base = tmp_path_factory.mktemp(f"import-{backend}")
    with ExitStack() as databases:
        turn = databases.enter_context(sql_database(backend, "turn"))
        coturn_sql(backend, turn, COTURN_USERS, DOMAIN)
        kamailio = databases.enter_context(sql_database(backend, "kam", users=("_rw", "_ro")))
        kamailio_sql(base / "kamailio", backend, kamailio, DOMAIN, KAMAILIO_USERS, KAMAILIO_HASHED)
        with kamailio_serving(base / "kamailio", backend, kamailio, DOMAIN) as address:
            for phone in PHONES:
                run = run_sipp(base, "register.xml", *sam_credentials(), port=phone, remote=address)
                assert run.statuses() == [(401, "REGISTER"), (200, "REGISTER")], run.explain()
        # An hour later, the second phone's registration (300 s) would have lapsed.
        hour = "INTERVAL '1 hour'" if backend == "postgresql" else "INTERVAL 1 HOUR"
        aged = (
            f"UPDATE location SET expires = expires - {hour} WHERE contact LIKE '%:{PHONES[1]};%'"
        )
        sql(backend, aged, kamailio)
        prosody = databases.enter_context(sql_database(backend, "prosody"))
        prosody_sql(base / "prosody", backend, prosody, DOMAIN, PROSODY_USERS)
        imports = [
            ("coturn", "--db", f"{URLS[backend]}/{turn}"),
            ("kamailio", "--db", f"{URLS[backend]}/{kamailio}"),
            ("prosody", "--db", f"{URLS[backend]}/{prosody}"),
        ]
        with importing_heron(base, imports) as heron:
            yield heron


def test_every_account_is_imported_from_the_sql_databases(imported: Imported) -> None:
    listed = imported.heron.cli("user", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 1) for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert {address: rest.split("UTC", 1)[1].strip() for address, rest in rows} == {
        "tina@localhost": "only turn-md5",
        "sam@localhost": "all",
        "hal@localhost": "only sip-md5",
        "pat@localhost": "only scram-sha1",
        "quinn@localhost": "only scram-sha1",
    }
    assert "imported from coturn postgresql://" in imported.import_output or (
        "imported from coturn mysql://" in imported.import_output
    ), imported.import_output


def test_live_kamailio_registrations_come_over_and_expired_ones_do_not(
    imported: Imported,
) -> None:
    assert "SIP registrations: added 1, kept 0 heron has already" in imported.import_output
    contact = f"sip:sam@127.0.0.1:{PHONES[1]};transport=UDP"
    expired = f"skipped location sam@{DOMAIN} {contact!r}: expired"
    assert expired in imported.import_output, imported.import_output
    listed = imported.heron.cli("sip", "registrations")
    assert listed.returncode == 0, listed.stderr
    assert f"sip:sam@127.0.0.1:{PHONES[0]};transport=UDP" in listed.stdout, listed.stdout
    assert f":{PHONES[1]};" not in listed.stdout and "1 binding(s)" in listed.stdout


def test_coturn_sql_user_relays_with_the_old_password(imported: Imported) -> None:
    assert_relays(imported, "tina", COTURN_USERS["tina"])


@pytest.mark.parametrize("user", ["sam", "hal"])
def test_kamailio_sql_subscribers_register_with_their_old_password(
    imported: Imported, tmp_path: Path, user: str
) -> None:
    assert_registers(imported, tmp_path, user, {**KAMAILIO_USERS, **KAMAILIO_HASHED}[user])


def test_prosody_sql_user_logs_in_over_scram_sha1(imported: Imported) -> None:
    async def check() -> None:
        context = ssl.create_default_context(cafile=str(imported.certificate))
        jid, password = f"pat@{DOMAIN}/t", PROSODY_USERS["pat"]
        pat = await xmpp_login(jid, password, imported.xmpp_port, context, "SCRAM-SHA-1")
        assert pat is not None
        await log_out([pat])
        assert await xmpp_login(jid, "wrong", imported.xmpp_port, context, "SCRAM-SHA-1") is None

    asyncio.run(check())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_without_the_tables_is_not_the_daemons(backend: str, tmp_path: Path) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(base_settings(tmp_path)))
    with sql_database(backend, "empty") as empty:
        done = heron_cli(config, "import", "kamailio", "--db", f"{URLS[backend]}/{empty}")
    assert done.returncode == 2
    assert done.stderr == (
        f"heron: error: {URLS[backend]}/{empty}: not Kamailio's database: no table subscriber\n"
    )


def test_an_unreachable_database_is_one_line_and_status_2_without_the_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(base_settings(tmp_path)))
    url = f"postgresql://kamailioro:secret@127.0.0.1:{free_port()}/kamailio"
    done = heron_cli(config, "import", "kamailio", "--db", url)
    assert done.returncode == 2
    shown = url.replace(":secret@", ":***@")
    assert done.stderr.startswith(f"heron: error: {shown}: ") and done.stderr.count("\n") == 1
    assert "secret" not in done.stderr


def test_path_and_db_exclude_each_other(tmp_path: Path) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(base_settings(tmp_path)))
    done = heron_cli(config, "import", "coturn", str(tmp_path), "--db", URLS["postgresql"])
    assert done.returncode == 2
    assert done.stderr == "heron: error: heron import: give either PATH or --db URL\n"
