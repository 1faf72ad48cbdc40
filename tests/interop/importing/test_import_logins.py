"""Accounts imported from coturn, Kamailio and Prosody log in to heron with their old passwords.

The sources are made by the daemons' own tools in the test: turnadmin (coturn), kamdbctl
and kamctl (Kamailio, SQLite), prosodyctl, plus a roster a slixmpp client builds against a
running Prosody. heron then imports them all and serves; coturn's turnutils_uclient relays
with the TURN user's old password, sipp registers the SIP users with digest, and slixmpp
logs the Prosody users in over SCRAM-SHA-1, the one mechanism their imported keys serve,
until a PLAIN login inside TLS gives heron the password to derive the rest.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slixmpp import JID

from tests.interop.sip.support import SipServer, register, sip_settings
from tests.interop.turn.support import (
    TurnServer,
    assert_all_echoed,
    coturn_peer,
    relay_window,
    uclient,
)
from tests.interop.xmpp.support import (
    MUC_PLUGINS,
    TIMEOUT,
    Client,
    join_room,
    log_out,
    make_persistent,
)
from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, heron_cli, merge, provision, serving
from tests.support.import_sources import coturn_db, kamailio_db, prosody_running

# The module's fixture runs turnadmin, kamdbctl and kamctl, prosodyctl and Prosody, three
# imports and heron: past the default 120 s on a loaded machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

DOMAIN = "localhost"
COTURN_USERS = {"tina": "turn pw"}
# kamctl 5.6 hashes only a password's first word into HA1 ("a b" as "a"): none have spaces.
KAMAILIO_USERS = {"sam": "sip-pw"}
KAMAILIO_HASHED = {"hal": "hashed-sip-pw"}
PROSODY_USERS = {"pat": "xmpp pw", "quinn": "other xmpp pw"}
ROOM = JID(f"team@conference.{DOMAIN}")
OFFLINE_BODY = "while you were away <é & ü>"


@dataclass
class Imported:
    heron: RunningHeron
    turn: TurnServer
    sip: SipServer
    xmpp_port: int
    certificate: Path
    import_output: str


async def xmpp_login(
    jid: str, password: str, port: int, context: ssl.SSLContext | None, mechanism: str
) -> Client | None:
    """``jid`` logged in with ``mechanism`` only (STARTTLS when ``context`` is given, plain
    TCP otherwise); None if the server refused the credentials."""
    client = Client(jid, password)
    client.plugin["feature_mechanisms"].use_mech = mechanism
    # Prosody on loopback without TLS: slixmpp only runs SCRAM there when told to.
    client.plugin["feature_mechanisms"].unencrypted_scram = context is None
    client.enable_plaintext = context is None
    client.enable_starttls = context is not None
    client.enable_direct_tls = False
    if context is not None:
        client.ssl_context = context
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(logged_in: bool) -> None:
        if not outcome.done():
            outcome.set_result(logged_in)

    client.add_event_handler("session_start", lambda _: settle(True))
    client.add_event_handler("failed_auth", lambda _: settle(False))
    client.connect("127.0.0.1", port)
    if await asyncio.wait_for(outcome, TIMEOUT):
        return client
    client.abort()
    return None


async def build_roster(port: int, *, room: bool = False) -> None:
    """pat names quinn in a group and asks to see her presence, on Prosody; with ``room``,
    pat also makes the persistent room ``ROOM`` and quinn a member of it."""
    pat = await xmpp_login(f"pat@{DOMAIN}/setup", PROSODY_USERS["pat"], port, None, "SCRAM-SHA-1")
    assert pat is not None
    await pat.update_roster(f"quinn@{DOMAIN}", name="Quinn", groups=["Friends"], timeout=TIMEOUT)
    pat.send_presence(pto=f"quinn@{DOMAIN}", ptype="subscribe")
    pat.send_message(mto=f"quinn@{DOMAIN}", mbody=OFFLINE_BODY, mtype="chat")
    await asyncio.wait_for(pat.get_roster(), TIMEOUT)  # a round trip: both were handled
    if room:
        for plugin in MUC_PLUGINS:
            pat.register_plugin(plugin)
        await join_room(pat, ROOM, "pat")
        await make_persistent(pat, ROOM)
        muc = pat.plugin["xep_0045"]
        await muc.set_affiliation(ROOM, "member", jid=JID(f"quinn@{DOMAIN}"), timeout=TIMEOUT)
    await log_out([pat])


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    base = tmp_path_factory.mktemp("import")
    turndb = coturn_db(base / "coturn", COTURN_USERS, DOMAIN)
    kamailio = kamailio_db(base / "kamailio", DOMAIN, KAMAILIO_USERS, KAMAILIO_HASHED)
    with prosody_running(base / "prosody", DOMAIN, PROSODY_USERS) as port:
        asyncio.run(build_roster(port, room=True))
    prosody_data = base / "prosody" / "data"

    directory = base / "heron"
    directory.mkdir()
    turn_port, sip_port, sip_tls_port, xmpp_port = (free_port() for _ in range(4))
    low, high = relay_window()
    settings = merge(
        merge(base_settings(directory), sip_settings(sip_port, sip_tls_port)),
        {
            "turn": {
                "enabled": True,
                "listen": [f"127.0.0.1:{turn_port}"],
                "tls_listen": [],
                "relay_addresses": ["127.0.0.1"],
                "relay_port_min": low,
                "relay_port_max": high,
                "allowed_peer_ranges": ["127.0.0.0/8"],
            },
            "xmpp": {
                "enabled": True,
                "listen": [f"127.0.0.1:{xmpp_port}"],
                "tls_listen": [],
                "s2s_listen": [],
                "s2s_tls_listen": [],
            },
        },
    )
    config = directory / "heron.toml"
    config.write_text(render_toml(settings))
    provision(config, {})
    output = ""
    for kind, source in (("coturn", turndb), ("kamailio", kamailio), ("prosody", prosody_data)):
        done = heron_cli(config, "import", kind, str(source))
        assert done.returncode == 0, done.stdout + done.stderr
        output += done.stdout
    certificate = directory / "var" / "tls" / "heron.crt"
    with serving(config) as heron:
        web_port = int(re.findall(r"web listening on https://[^:]+:(\d+)/", "".join(heron.log))[0])
        yield Imported(
            heron,
            TurnServer(heron, turn_port, 0, (low, high), certificate),
            SipServer(heron, directory, sip_port, sip_tls_port, web_port, certificate),
            xmpp_port,
            certificate,
            output,
        )
    log = "".join(heron.log)
    assert heron.process.returncode == 0, log
    assert "Traceback" not in log, log


def secrets_of(imported: Imported) -> dict[str, str]:
    listed = imported.heron.cli("user", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 1) for line in listed.stdout.splitlines()[1:] if line.strip()]
    return {address: rest.split("UTC", 1)[1].strip() for address, rest in rows}


def test_every_account_is_imported_with_the_secrets_its_server_kept(imported: Imported) -> None:
    # Runs first: the PLAIN login test below completes quinn.
    assert secrets_of(imported) == {
        "tina@localhost": "only turn-md5",
        "sam@localhost": "all",
        "hal@localhost": "only sip-md5",
        "pat@localhost": "only scram-sha1",
        "quinn@localhost": "only scram-sha1",
    }
    summary = (
        "1 roster contact(s), 1 subscription request(s), 1 offline message(s) and 1 room(s) added"
    )
    assert summary in imported.import_output, imported.import_output


def test_coturn_user_relays_with_the_old_password(imported: Imported) -> None:
    with coturn_peer() as echo:
        credentials = ("-u", "tina", "-w", COTURN_USERS["tina"])
        run = uclient(imported.turn, echo, *credentials, "-c", "-n", "10", "-l", "120")
    assert_all_echoed(run, 10, imported.turn)


@pytest.mark.parametrize("user", ["sam", "hal"])
def test_kamailio_users_register_with_their_old_password(
    imported: Imported, tmp_path: Path, user: str
) -> None:
    password = {**KAMAILIO_USERS, **KAMAILIO_HASHED}[user]
    run = register(imported.sip, tmp_path, user, password, port=free_port())
    assert run.returncode == 0, run.explain()
    assert run.statuses() == [(401, "REGISTER"), (200, "REGISTER")], run.explain()


def test_prosody_user_logs_in_over_scram_sha1_and_finds_the_roster(imported: Imported) -> None:
    async def check() -> None:
        context = ssl.create_default_context(cafile=str(imported.certificate))
        pat = await xmpp_login(
            f"pat@{DOMAIN}/t", PROSODY_USERS["pat"], imported.xmpp_port, context, "SCRAM-SHA-1"
        )
        assert pat is not None
        roster = await asyncio.wait_for(pat.get_roster(), TIMEOUT)
        items = roster["roster"]["items"]
        quinn = items[JID(f"quinn@{DOMAIN}")]
        assert quinn["name"] == "Quinn" and quinn["groups"] == ["Friends"], items
        assert quinn["subscription"] == "none" and quinn["ask"] == "subscribe", items
        await log_out([pat])
        wrong = await xmpp_login(
            f"pat@{DOMAIN}/t", "wrong", imported.xmpp_port, context, "SCRAM-SHA-1"
        )
        assert wrong is None

    asyncio.run(check())


def test_prosody_room_is_there_with_its_owner_and_members(imported: Imported) -> None:
    async def check() -> None:
        context = ssl.create_default_context(cafile=str(imported.certificate))
        password = PROSODY_USERS["pat"]
        pat = await xmpp_login(
            f"pat@{DOMAIN}/r", password, imported.xmpp_port, context, "SCRAM-SHA-1"
        )
        assert pat is not None
        for plugin in MUC_PLUGINS:
            pat.register_plugin(plugin)
        muc = pat.plugin["xep_0045"]
        joined, _, _, _ = await muc.join_muc_wait(ROOM, "pat", timeout=TIMEOUT)
        assert "201" not in {str(code) for code in joined["muc"]["status_codes"]}  # not new
        assert joined["muc"]["affiliation"] == "owner"
        members = await muc.get_affiliation_list(ROOM, "member", timeout=TIMEOUT)
        assert [str(jid) for jid in members] == [f"quinn@{DOMAIN}"]
        await log_out([pat])

    asyncio.run(check())


def test_a_plain_login_inside_tls_completes_the_prosody_account(imported: Imported) -> None:
    async def check() -> None:
        context = ssl.create_default_context(cafile=str(imported.certificate))
        password = PROSODY_USERS["quinn"]
        jid = f"quinn@{DOMAIN}/t"
        # Imported with SCRAM-SHA-1 keys alone: SCRAM-SHA-256 cannot succeed yet.
        assert await xmpp_login(jid, password, imported.xmpp_port, context, "SCRAM-SHA-256") is None
        quinn = await xmpp_login(jid, password, imported.xmpp_port, context, "PLAIN")
        assert quinn is not None
        # pat's request, unanswered on Prosody, comes again as quinn gets online, and
        quinn.send_presence()
        await quinn.presence_from(f"pat@{DOMAIN}", "subscribe")
        # pat's message, stored by Prosody while quinn was away, with its time.
        message = await quinn.next_message(OFFLINE_BODY)
        assert str(message["from"]) == f"pat@{DOMAIN}/setup"
        assert message["delay"]["stamp"] is not None
        await log_out([quinn])
        assert secrets_of(imported)["quinn@localhost"] == "all"
        again = await xmpp_login(jid, password, imported.xmpp_port, context, "SCRAM-SHA-256")
        assert again is not None
        await log_out([again])

    asyncio.run(check())


def test_coturn_user_with_a_wrong_password_gets_no_allocation(imported: Imported) -> None:
    # Last: the failure counts in the guess throttle of tina and of 127.0.0.1.
    with coturn_peer() as echo:
        run = uclient(imported.turn, echo, "-u", "tina", "-w", "not the password", "-c")
    assert run.returncode != 0
    # "Cannot complete Allocation", or the guess throttle's 401 as uclient retries.
    assert "Cannot complete Allocation" in run.output or "error 401" in run.output, run.output


def test_prosody_sql_storage_accounts_and_roster_are_imported(tmp_path: Path) -> None:
    with prosody_running(tmp_path / "prosody", DOMAIN, PROSODY_USERS, storage="sql") as port:
        asyncio.run(build_roster(port))
    sqlite = tmp_path / "prosody" / "data" / "prosody.sqlite"
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(base_settings(tmp_path)))
    done = heron_cli(config, "import", "prosody", str(sqlite))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"imported from prosody {sqlite}: 2 account(s) added, 0 completed, 0 unchanged; "
        "1 roster contact(s), 1 subscription request(s), 0 offline message(s) and 0 room(s) "
        "added"
    ), done.stdout
    again = heron_cli(config, "import", "prosody", str(sqlite.parent))
    assert again.stdout.startswith("nothing to import"), again.stdout
    listed = heron_cli(config, "user", "list").stdout
    assert listed.count("only scram-sha1") == 2, listed
