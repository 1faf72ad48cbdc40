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
import sqlite3
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from slixmpp import JID

from heron.xmpp.pep.avatar import VCARD4
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
from tests.interop.turn.support import (
    coturn_peer,
    uclient,
)
from tests.interop.xmpp.support import (
    MUC_PLUGINS,
    TIMEOUT,
    join_room,
    log_out,
    make_persistent,
)
from tests.support.import_sources import coturn_db, kamailio_db, prosody_running

# The module's fixture runs turnadmin, kamdbctl and kamctl, prosodyctl and Prosody, three
# imports and heron: past the default 120 s on a loaded machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

ROOM = JID(f"team@conference.{DOMAIN}")
OFFLINE_BODY = "while you were away <é & ü>"
VCARD_NAME = "Pat Prosody"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def build_roster(port: int, *, room: bool = False) -> None:
    """pat names quinn in a group and asks to see her presence, and sets a vCard with a
    PHOTO (mod_vcard), on Prosody; with ``room``, pat also makes the persistent room
    ``ROOM`` and quinn a member of it."""
    pat = await xmpp_login(f"pat@{DOMAIN}/setup", PROSODY_USERS["pat"], port, None, "SCRAM-SHA-1")
    assert pat is not None
    pat.register_plugin("xep_0054")
    card = pat.plugin["xep_0054"].make_vcard()
    card["FN"] = VCARD_NAME
    card["PHOTO"]["TYPE"] = "image/png"
    card["PHOTO"]["BINVAL"] = PNG
    await pat.plugin["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
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
    # Hostile: a vCard whose PHOTO points elsewhere (EXTVAL) has no image to import.
    (prosody_data / DOMAIN / "vcard" / "quinn.dat").write_text(
        'return { name = "vCard"; attr = { xmlns = "vcard-temp" };'
        ' { name = "PHOTO"; attr = { xmlns = "vcard-temp" };'
        ' { name = "EXTVAL"; attr = { xmlns = "vcard-temp" }; "https://example.com/a.png" } } }'
    )

    with importing_heron(
        base,
        [
            ("coturn", str(turndb)),
            ("kamailio", str(kamailio)),
            ("prosody", str(prosody_data)),
        ],
    ) as imported:
        yield imported


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
        "1 roster contact(s), 1 subscription request(s), 1 offline message(s), 2 vCard(s), "
        "2 PEP item(s) and 1 room(s) added"
    )
    assert summary in imported.import_output, imported.import_output
    skipped = f"skipped {DOMAIN}/vcard/quinn PHOTO: PHOTO needs a base64 BINVAL"
    assert skipped in imported.import_output.splitlines(), imported.import_output


async def assert_vcard_served(port: int, certificate: Path, *, vcard4: bool = False) -> None:
    """pat reads the vCard set on Prosody from heron: its fields (vcard-temp, and with
    ``vcard4`` the XEP-0292 one Prosody's mod_vcard_legacy made of it), and its PHOTO,
    which heron serves from the XEP-0084 avatar the import published (XEP-0398 §3.1)."""
    context = ssl.create_default_context(cafile=str(certificate))
    pat = await xmpp_login(f"pat@{DOMAIN}/v", PROSODY_USERS["pat"], port, context, "SCRAM-SHA-1")
    assert pat is not None
    pat.register_plugin("xep_0054")
    result = await pat.plugin["xep_0054"].get_vcard(JID(f"pat@{DOMAIN}"), timeout=TIMEOUT)
    assert result["vcard_temp"]["PHOTO"]["TYPE"] == "image/png"
    assert result["vcard_temp"]["PHOTO"]["BINVAL"] == PNG
    assert result["vcard_temp"]["FN"] == VCARD_NAME
    if vcard4:
        iq = pat.make_iq_get(ito=f"pat@{DOMAIN}")
        iq.append(ET.Element(f"{{{VCARD4}}}vcard"))
        answer = await iq.send(timeout=TIMEOUT)
        name = answer.xml.findtext(f"{{{VCARD4}}}vcard/{{{VCARD4}}}fn/{{{VCARD4}}}text")
        assert name == VCARD_NAME
    await log_out([pat])


def test_prosody_vcard_is_served_with_its_photo_as_the_avatar(imported: Imported) -> None:
    asyncio.run(assert_vcard_served(imported.xmpp_port, imported.certificate))


def test_coturn_user_relays_with_the_old_password(imported: Imported) -> None:
    assert_relays(imported, "tina", COTURN_USERS["tina"])


@pytest.mark.parametrize("user", ["sam", "hal"])
def test_kamailio_users_register_with_their_old_password(
    imported: Imported, tmp_path: Path, user: str
) -> None:
    assert_registers(imported, tmp_path, user, {**KAMAILIO_USERS, **KAMAILIO_HASHED}[user])


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


def add_hostile_rows(sqlite: Path) -> None:
    """An oversize vCard for quinn, and offline messages that are no well-formed XML or
    use an entity heron's parser refuses, beside the ones Prosody wrote."""
    oversize = f'[{{"name":"FN","attr":{{"xmlns":"vcard-temp"}},"__array":["{"x" * 70_000}"]}}]'
    vcard = [("name", "string", "vCard"), ("attr", "json", '{"xmlns":"vcard-temp"}')]
    offline = ["<message to='quinn@localhost'><body>cut", "<message>&lol;</message>"]
    with sqlite3.connect(sqlite) as db:
        db.executemany(
            "INSERT INTO prosody (host, user, store, key, type, value) VALUES (?, ?, ?, ?, ?, ?)",
            [(DOMAIN, "quinn", "vcard", *row) for row in [*vcard, ("", "json", oversize)]],
        )
        db.executemany(
            'INSERT INTO prosodyarchive (host, user, store, key, "when", "with", type, value)'
            " VALUES (?, ?, ?, ?, ?, '', ?, ?)",
            [(DOMAIN, "quinn", "offline", f"bad{i}", 1, "xml", v) for i, v in enumerate(offline)],
        )


def test_prosody_sql_storage_accounts_roster_vcards_and_offline_are_imported(
    tmp_path: Path,
) -> None:
    # Prosody 0.12's default modules: the vCard goes to PEP (vCard4 and avatar nodes).
    modules = '"pep"; "vcard_legacy"'
    with prosody_running(tmp_path / "prosody", DOMAIN, PROSODY_USERS, "sql", modules) as port:
        asyncio.run(build_roster(port))
    sqlite = tmp_path / "prosody" / "data" / "prosody.sqlite"
    add_hostile_rows(sqlite)
    with importing_heron(tmp_path, [("prosody", str(sqlite))]) as imported:
        lines = imported.import_output.splitlines()
        assert lines[0] == (
            f"imported from prosody {sqlite}: 2 account(s) added, 0 completed, 0 unchanged; "
            "1 roster contact(s), 1 subscription request(s), 1 offline message(s), "
            "1 vCard(s), 3 PEP item(s) and 0 room(s) added"
        ), imported.import_output
        assert f"skipped {DOMAIN}/vcard/quinn: larger than 65536 bytes without its PHOTO" in lines
        assert f"skipped {DOMAIN}/offline/quinn: 2 unusable message(s)" in lines
        asyncio.run(assert_vcard_served(imported.xmpp_port, imported.certificate, vcard4=True))
        again = imported.heron.cli("import", "prosody", str(sqlite.parent))
        assert again.stdout.startswith("nothing to import"), again.stdout
        assert "kept: 1 vCard(s) and 3 PEP item(s) heron has already" in again.stdout
        listed = imported.heron.cli("user", "list").stdout
        assert listed.count("only scram-sha1") == 2, listed
