"""``heron import`` reads what coturn's, Kamailio's and Prosody's own tools wrote."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.support.import_sources import coturn_db, kamailio_db, prosody_data

DOMAIN = "localhost"  # heron's default domain, SIP domain and TURN realm


def secrets_column(heron: Run) -> dict[str, str]:
    """Account -> what ``heron user list`` says of its secrets."""
    status, out, err = heron("user", "list")
    assert status == 0, err
    rows = [line.split(None, 1) for line in out.splitlines()[1:] if line.strip()]
    return {address: rest.split("UTC", 1)[1].strip() for address, rest in rows}


def test_coturn_users_become_accounts_with_their_turn_key_only(heron: Run, tmp_path: Path) -> None:
    db = coturn_db(tmp_path / "coturn", {"tina": "tpw", "tom": "tpw2"}, DOMAIN)
    status, out, err = heron("import", "coturn", str(db))
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == (
        f"imported from coturn {db}: 2 account(s) added, 0 completed, 0 unchanged; "
        "0 roster contact(s), 0 subscription request(s), 0 offline message(s), 0 vCard(s), "
        "0 PEP item(s) and 0 room(s) added"
    )
    assert secrets_column(heron) == {
        "tina@localhost": "only turn-md5",
        "tom@localhost": "only turn-md5",
    }


def test_coturn_admins_become_administrators_without_a_password(heron: Run, tmp_path: Path) -> None:
    db = coturn_db(tmp_path / "coturn", {}, DOMAIN, admins={"boss": "apw"})
    status, out, _ = heron("import", "coturn", str(db))
    assert status == 0
    assert "note: boss@localhost: administrator; coturn's admin password hash cannot be" in out
    status, listed, _ = heron("user", "list")
    assert "boss@localhost" in listed and "yes" in listed and "none: set a password" in listed


def test_coturn_keys_of_another_realm_are_skipped_with_the_reason(
    heron: Run, tmp_path: Path
) -> None:
    db = coturn_db(tmp_path / "coturn", {"tina": "tpw"}, "other.example")
    status, out, _ = heron("import", "coturn", str(db))
    assert status == 0
    assert (
        "skipped turnusers_lt 'tina' (realm 'other.example'): its key hashes realm "
        "'other.example', heron's is 'localhost'"
    ) in out
    assert secrets_column(heron) == {}


def test_dry_run_reports_and_writes_nothing(heron: Run, tmp_path: Path) -> None:
    db = coturn_db(tmp_path / "coturn", {"tina": "tpw"}, DOMAIN)
    status, out, _ = heron("import", "coturn", str(db), "--dry-run")
    assert status == 0
    assert out.startswith(f"dry run, nothing written: coturn {db} would add 1 account(s)")
    assert secrets_column(heron) == {}


def test_a_second_run_changes_nothing_and_says_so(heron: Run, tmp_path: Path) -> None:
    db = coturn_db(tmp_path / "coturn", {"tina": "tpw"}, DOMAIN)
    assert heron("import", "coturn", str(db))[0] == 0
    status, out, _ = heron("import", "coturn", str(db))
    assert (status, out) == (
        0,
        f"nothing to import from coturn {db}: its 1 account(s), 0 roster contact(s) and "
        "0 room(s) are here already\n",
    )
    status, out, _ = heron("import", "coturn", str(db), "--dry-run")
    assert "would add 0 account(s), complete 0, leave 1 unchanged" in out


def test_kamailio_subscribers_with_and_without_plaintext_passwords(
    heron: Run, tmp_path: Path
) -> None:
    db = kamailio_db(
        tmp_path / "kamailio", DOMAIN, {"sam": "spw", "sue": "spw2"}, hashed_only={"hal": "hpw"}
    )
    status, out, err = heron("import", "kamailio", str(db))
    assert (status, err) == (0, ""), out
    assert "3 account(s) added" in out
    assert secrets_column(heron) == {
        "hal@localhost": "only sip-md5",
        "sam@localhost": "all",
        "sue@localhost": "all",
    }
    assert heron("import", "kamailio", str(db))[1].startswith("nothing to import")


def test_prosody_accounts_keep_their_scram_sha1_keys(heron: Run, tmp_path: Path) -> None:
    data = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "ppw"})
    status, out, err = heron("import", "prosody", str(data))
    assert (status, err) == (0, ""), out
    assert secrets_column(heron) == {"pat@localhost": "only scram-sha1"}


def test_imports_from_two_servers_combine_into_one_account(heron: Run, tmp_path: Path) -> None:
    coturn = coturn_db(tmp_path / "coturn", {"pat": "turn pw"}, DOMAIN)
    prosody = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "xmpp pw"})
    assert heron("import", "coturn", str(coturn))[0] == 0
    status, out, _ = heron("import", "prosody", str(prosody))
    assert "0 account(s) added, 1 completed" in out
    assert secrets_column(heron) == {"pat@localhost": "only turn-md5, scram-sha1"}
    # A password change derives every secret from one password.
    assert heron("user", "passwd", "pat@localhost", "--password", "one pw")[0] == 0
    assert secrets_column(heron) == {"pat@localhost": "all"}


def test_hostile_prosody_records_are_skipped_not_run(heron: Run, tmp_path: Path) -> None:
    data = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "ppw"})
    accounts = data / "localhost" / "accounts"
    marker = tmp_path / "ran"
    (accounts / "evil.dat").write_text(f'return os.execute("touch {marker}");\n')
    good = (accounts / "pat.dat").read_text()
    (accounts / "slow.dat").write_text(good.replace("10000", "1000000000"))
    (accounts / "deep.dat").write_text("return " + "{" * 500 + "}" * 500)
    status, out, _ = heron("import", "prosody", str(data))
    assert status == 0
    assert not marker.exists()
    assert "skipped localhost/accounts/evil: expected a value" in out
    assert "skipped localhost/accounts/slow: iteration_count missing or outside" in out
    assert "skipped localhost/accounts/deep: tables nested deeper than 16" in out
    assert secrets_column(heron) == {"pat@localhost": "only scram-sha1"}


@pytest.mark.parametrize(
    ("kind", "make", "error"),
    [
        ("coturn", lambda d: d / "missing.db", "no such file (coturn's turndb expected)"),
        ("coturn", lambda d: d, "no such file"),
        ("kamailio", lambda d: _text(d / "k.db"), "not a SQLite database"),
        ("prosody", lambda d: _text(d / "p"), "not a SQLite database"),
        ("prosody", lambda d: d / "nothing", "no such file or directory (Prosody's data_path"),
        ("prosody", lambda d: d, "neither HOST/accounts/ nor prosody.sqlite"),
    ],
)
def test_a_bad_source_is_one_line_and_exit_2(
    heron: Run, tmp_path: Path, kind: str, make: Callable[[Path], Path], error: str
) -> None:
    source = make(tmp_path)
    status, out, err = heron("import", kind, str(source))
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and error in err, err


def test_a_turndb_is_not_a_kamailio_database(heron: Run, tmp_path: Path) -> None:
    db = coturn_db(tmp_path / "coturn", {"tina": "tpw"}, DOMAIN)
    status, _, err = heron("import", "kamailio", str(db))
    assert (
        status == 2 and err == f"heron: error: {db}: not Kamailio's database: no table subscriber\n"
    )


def _text(path: Path) -> Path:
    path.write_text("not a database\n")
    return path


def test_prosody_sql_storage_accounts_and_hostile_rows(heron: Run, tmp_path: Path) -> None:
    data = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "ppw", "eve": "epw"}, storage="sql")
    with sqlite3.connect(data / "prosody.sqlite") as db:
        db.execute(
            "INSERT INTO prosody VALUES ('localhost', 'eve', 'roster', 'x@y', 'json', ?)",
            ("[" * 100_000 + "]" * 100_000,),
        )
        db.execute(
            "UPDATE prosody SET value = '1e300' WHERE user = 'pat' AND key = 'iteration_count'"
        )
    status, out, err = heron("import", "prosody", str(data))
    assert (status, err) == (0, ""), out
    assert "skipped localhost/accounts/pat: iteration_count missing or outside" in out
    assert "skipped localhost/roster/eve: x@y: JSON nested" in out
    assert secrets_column(heron) == {"eve@localhost": "only scram-sha1"}


def test_prosody_rooms_that_cannot_be_heron_rooms_are_skipped(heron: Run, tmp_path: Path) -> None:
    data = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "ppw"})
    ours = data / "conference%2elocalhost" / "config"
    other = data / "chat%2eelsewhere%2eexample" / "config"
    ours.mkdir(parents=True)
    other.mkdir(parents=True)
    (ours / "temp.dat").write_text('return { ["_data"] = { ["persistent"] = false } };')
    (ours / "broken.dat").write_text('return { ["_jid"] = "broken@conference.localhost" };')
    (ours / "team.dat").write_text(
        'return { ["_data"] = { ["persistent"] = true; ["name"] = "Team"; ["whois"] = "anyone" };'
        ' ["pat@localhost"] = "owner"; ["x@y/z"] = "admin"; ["q@localhost"] = "king" };'
    )
    (other / "away.dat").write_text('return { ["_data"] = { ["persistent"] = true } };')
    status, out, _ = heron("import", "prosody", str(data))
    assert status == 0
    assert "1 room(s) added" in out
    assert "skipped room temp@conference.localhost: not persistent" in out
    assert "skipped room broken@conference.localhost: no _data table" in out
    assert (
        "skipped rooms of chat.elsewhere.example: heron's group-chat service is "
        "conference.localhost"
    ) in out
    assert "and 1 room(s) are here already" in heron("import", "prosody", str(data))[1]


def test_prosody_offline_messages_that_cannot_be_xml_are_skipped(
    heron: Run, tmp_path: Path
) -> None:
    data = prosody_data(tmp_path / "prosody", DOMAIN, {"pat": "ppw", "eve": "epw"})
    offline = data / "localhost" / "offline"
    offline.mkdir()
    (offline / "pat.list").write_text(
        'item({ ["name"] = "message"; ["attr"] = { ["to"] = "pat@localhost" };'
        ' { ["name"] = "body"; "hi" } });\n'
        'item({ ["name"] = "message"; { ["name"] = "body"; "bell \\7" } });\n'
        'item({ ["name"] = "iq" });\n'
        'item({ ["name"] = "message"; ["attr"] = { ["xmlns"] = 1 } });\n'
    )
    (offline / "eve.list").write_text('os.execute("id")\n')
    status, out, _ = heron("import", "prosody", str(data))
    assert status == 0
    assert "1 offline message(s)" in out
    assert "skipped localhost/offline/pat: 3 unusable message(s)" in out
    assert "skipped localhost/offline/eve: expected item(...)" in out
    again = heron("import", "prosody", str(data))[1]
    assert "kept out: 1 offline message(s) of users who have some in heron already" in again


def test_prosody_vcards_and_pep_items_heron_cannot_keep_are_skipped(
    heron: Run, tmp_path: Path
) -> None:
    users = {"pat": "ppw", "eve": "epw", "max": "mpw", "ivy": "ipw"}
    data = prosody_data(tmp_path / "prosody", DOMAIN, users)
    vcard = data / "localhost" / "vcard"
    vcard.mkdir()
    card = 'return {{ ["name"] = "vCard"; ["attr"] = {{ ["xmlns"] = "vcard-temp" }}; {} }};'
    photo = (
        '{{ ["name"] = "PHOTO"; {{ ["name"] = "TYPE"; "image/png" }};'
        ' {{ ["name"] = "BINVAL"; "{}" }} }}'
    )
    (vcard / "pat.dat").write_text(card.format('{ ["name"] = "FN"; "Pat" }'))
    (vcard / "eve.dat").write_text(card.format(photo.format("not base64!")))
    (vcard / "max.dat").write_text(card.format(f'{{ ["name"] = "NOTE"; "{"x" * 70_000}" }}'))
    (vcard / "ivy.dat").write_text('return { ["name"] = "vcard"; ["attr"] = {} };')
    (vcard / "zed.dat").write_text(card.format('{ ["name"] = "FN"; "no account" }'))
    metadata = data / "localhost" / "pep_urn%3axmpp%3aavatar%3adata"
    metadata.mkdir()
    big = "A" * 200_000
    (metadata / "pat.list").write_text(
        f'item({{ ["key"] = "1"; ["name"] = "data"; ["attr"] = {{}}; "{big}" }});\n'
    )
    (metadata / "eve.list").write_text('item({ ["name"] = "data"; ["attr"] = {} });\n')
    status, out, _ = heron("import", "prosody", str(data))
    assert status == 0, out
    assert "2 vCard(s), 0 PEP item(s)" in out  # eve's without its PHOTO
    lines = out.splitlines()
    assert "skipped localhost/vcard/eve PHOTO: PHOTO needs a base64 BINVAL" in lines
    assert "skipped localhost/vcard/max: larger than 65536 bytes without its PHOTO" in lines
    assert "skipped localhost/vcard/ivy: not a vcard-temp <vCard/>" in lines
    assert "skipped localhost/vcard/zed: no account imported for it" in lines
    assert "skipped localhost/pep_urn:xmpp:avatar:data/pat: larger than 131072 bytes" in lines
    assert "skipped localhost/pep_urn:xmpp:avatar:data/eve: no usable item" in lines
    assert (
        "kept: 2 vCard(s) and 0 PEP item(s) heron has already"
        in heron("import", "prosody", str(data))[1]
    )


def test_kamailio_location_rows_become_bindings_when_they_can_still_work(
    heron: Run, tmp_path: Path, data_dir: Path
) -> None:
    """usrloc's rows as kamdbctl's SQLite schema keeps them: the live UDP one comes over
    (to the address Kamailio saw it from); each other is one line saying why not."""
    db = kamailio_db(tmp_path / "kamailio", DOMAIN, {"sam": "spw"})
    later, earlier = "2099-01-01 00:00:00", "2001-01-01 00:00:00"
    rows = [
        ("sam", DOMAIN, "sip:sam@192.0.2.10:5062", "sip:198.51.100.7:40000", later, 0.5),
        ("sam", DOMAIN, "sip:sam@192.0.2.11:5062", "", earlier, 1.0),
        ("sam", DOMAIN, "sip:sam@192.0.2.12:5062;transport=tcp", "", later, 1.0),
        ("sam", "elsewhere.example", "sip:sam@192.0.2.13", "", later, 1.0),
        ("sam", DOMAIN, "<not a uri>", "", later, 1.0),
        ("sam", DOMAIN, "sip:sam@192.0.2.14", "", later, 7.0),
        ("sam", DOMAIN, "sip:" + "a" * 2000 + "@192.0.2.15", "", later, 1.0),
        ("sam", DOMAIN, "sip:sam@192.0.2.16", "", "not a date", 1.0),
    ]
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "INSERT INTO location (ruid, username, domain, contact, received, expires, q, "
            "last_modified) VALUES (hex(randomblob(8)), ?, ?, ?, ?, ?, ?, ?)",
            [(*row, earlier) for row in rows],
        )
    status, out, err = heron("import", "kamailio", str(db))
    assert (status, err) == (0, "")
    skipped = [line for line in out.splitlines() if line.startswith("skipped location")]
    assert skipped == [
        "skipped location sam@localhost '<not a uri>': Bad URI scheme: <not a uri>",
        "skipped location sam@localhost 'sip:" + "a" * 116 + "': a value of more than 1024 "
        "characters",
        "skipped location sam@localhost 'sip:sam@192.0.2.11:5062': expired",
        "skipped location sam@localhost 'sip:sam@192.0.2.12:5062;transport=tcp': a tcp binding: "
        "its connection ended with Kamailio",
        "skipped location sam@elsewhere.example 'sip:sam@192.0.2.13': heron registers users "
        "of its SIP domain localhost",
        "skipped location sam@localhost 'sip:sam@192.0.2.14': Binding q out of range: 7.0",
        "skipped location sam@localhost 'sip:sam@192.0.2.16': Invalid isoformat string: "
        "'not a date'",
    ], out
    assert "SIP registrations: added 1, kept 0 heron has already" in out
    with sqlite3.connect(data_dir / "heron.db") as heron_db:
        bindings = heron_db.execute(
            "SELECT aor, contact, received_transport, received_host, received_port, q "
            "FROM sip_bindings"
        ).fetchall()
    assert bindings == [
        ("sam@localhost", "sip:sam@192.0.2.10:5062", "udp", "198.51.100.7", 40000, 0.5)
    ]
    again = heron("import", "kamailio", str(db))[1]
    assert "SIP registrations: added 0, kept 1 heron has already" in again
