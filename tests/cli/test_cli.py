"""Every ``heron`` command, good paths and bad: bad input is one line on stderr, status 2."""

from __future__ import annotations

import io
import socket
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.support.config import free_port


def assert_one_line_error(result: tuple[int, str, str], text: str) -> None:
    status, _, err = result
    assert status == 2
    assert err.count("\n") == 1, err
    assert text in err
    assert "Traceback" not in err


def test_user_add_list_passwd_del(heron: Run) -> None:
    assert heron("user", "add", "Roland@localhost", "--password", "s3cret") == (
        0,
        "added roland@localhost\n",
        "",
    )
    assert heron("user", "add", "admin@localhost", "--admin", "--password", "x")[0] == 0
    status, out, _ = heron("user", "list")
    assert status == 0
    assert "roland@localhost" in out
    admin_line = next(line for line in out.splitlines() if "admin@localhost" in line)
    assert "yes" in admin_line
    assert heron("user", "passwd", "roland@localhost", stdin="n3w\nn3w\n")[0] == 0
    assert heron("user", "passwd", "roland@localhost", "--password-stdin", stdin="n3w\n") == (
        0,
        "changed the password of roland@localhost\n",
        "",
    )
    assert heron("user", "del", "roland@localhost") == (0, "deleted roland@localhost\n", "")
    assert "roland@localhost" not in heron("user", "list")[1]


def test_password_prompt_asks_twice(heron: Run) -> None:
    status, out, _ = heron("user", "add", "roland@localhost", stdin="pw\npw\n")
    assert status == 0
    assert "added roland@localhost" in out
    status, out, _ = heron("user", "add", "other@localhost", stdin="pw\nwp\n")
    assert status == 1
    assert "do not match" in out


def test_duplicate_user(heron: Run) -> None:
    heron("user", "add", "roland@localhost", "--password", "x")
    result = heron("user", "add", "roland@localhost", "--password", "y")
    assert_one_line_error(result, "heron: error: roland@localhost already exists")


@pytest.mark.parametrize(
    "args",
    [
        ("user", "del", "ghost@localhost"),
        ("user", "passwd", "ghost@localhost", "--password", "x"),
        ("admin", "add", "ghost@localhost"),
        ("admin", "del", "ghost@localhost"),
    ],
)
def test_unknown_user(heron: Run, args: tuple[str, ...]) -> None:
    assert_one_line_error(heron(*args), "heron: error: ghost@localhost does not exist")


def test_domain_not_served(heron: Run) -> None:
    result = heron("user", "add", "roland@falcot.com", "--password", "x")
    assert_one_line_error(result, "domain falcot.com is not served here (configured: localhost)")


def test_malformed_address(heron: Run) -> None:
    result = heron("user", "add", "roland", "--password", "x")
    assert_one_line_error(result, "'roland' is not an address of the form user@domain")


def test_both_password_sources(heron: Run) -> None:
    result = heron("user", "add", "r@localhost", "--password", "x", "--password-stdin", stdin="y")
    assert_one_line_error(result, "give either --password or --password-stdin, not both")


def test_empty_password_on_stdin(heron: Run) -> None:
    result = heron("user", "add", "r@localhost", "--password-stdin", stdin="\n")
    assert_one_line_error(result, "--password-stdin: no password on standard input")


def test_admin_add_and_del(heron: Run) -> None:
    heron("user", "add", "roland@localhost", "--password", "x")
    assert heron("admin", "add", "roland@localhost")[1] == "roland@localhost is an administrator\n"
    assert "yes" in heron("user", "list")[1]
    assert heron("admin", "del", "roland@localhost")[0] == 0
    assert "yes" not in heron("user", "list")[1]


def test_config_admins_show_as_admins(heron: Run, write_config: Callable[..., Path]) -> None:
    config = str(write_config(admins=["boss@localhost"]))
    heron("-c", config, "user", "add", "boss@localhost", "--password", "x")
    listing = heron("-c", config, "user", "list")[1]
    line = next(row for row in listing.splitlines() if "boss" in row)
    assert "yes" in line


def test_bad_config_key(heron: Run, write_config: Callable[..., Path]) -> None:
    config = str(write_config(turn={"relay_colour": "blue"}))
    assert_one_line_error(heron("-c", config, "user", "list"), "turn.relay_colour: unknown key")


def test_missing_config_file(heron: Run) -> None:
    assert_one_line_error(heron("-c", "nothere.toml", "dns"), "nothere.toml: cannot read")


def test_wrong_arguments(heron: Run) -> None:
    assert_one_line_error(heron("user", "frobnicate"), "heron user: No such command 'frobnicate'")
    assert_one_line_error(heron("--bogus"), "heron: No such option '--bogus'.")
    assert_one_line_error(heron("user", "add"), "heron user add: Missing argument 'ADDRESS'.")


def test_unreachable_database(heron: Run, write_config: Callable[..., Path]) -> None:
    config = str(write_config(database={"url": "postgresql://nobody@127.0.0.1:1/x"}))
    result = heron("-c", config, "user", "list")
    assert_one_line_error(
        result, "heron: error: database postgresql+asyncpg://nobody@127.0.0.1:1/x"
    )


def test_password_is_nowhere_in_the_data_directory(heron: Run, data_dir: Path) -> None:
    password = "Tr0ub4dor&3-unique-marker"
    heron("user", "add", "roland@localhost", "--password", password)
    heron("user", "passwd", "roland@localhost", "--password", password + "2")
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "heron.db" for p in files)
    for path in files:
        assert password.encode() not in path.read_bytes(), path


def test_cert_then_check(heron: Run, write_config: Callable[..., Path]) -> None:
    config = str(write_config(domain="falcot.com", sip={"domain": "sip.falcot.com"}))
    status, out, _ = heron("-c", config, "cert")
    assert status == 0 and "falcot.com, sip.falcot.com" in out
    assert_one_line_error(heron("-c", config, "cert"), "exists; --force replaces them")
    assert heron("-c", config, "cert", "--if-missing")[0] == 0
    assert heron("-c", config, "cert", "--force")[0] == 0
    status, out, _ = heron("-c", config, "check")
    assert status == 0, out
    assert "ok    certificate" in out and "ok    database" in out
    assert "FAIL" not in out


def test_check_reports_missing_certificate(heron: Run, write_config: Callable[..., Path]) -> None:
    status, out, err = heron("-c", str(write_config()), "check")
    assert status == 1
    assert "FAIL  tls.certificate:" in out and "does not exist" in out
    assert err.startswith("heron: 1 problem(s); first: tls.certificate:")


def test_check_reports_certificate_without_the_names(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    heron("-c", str(write_config()), "cert")
    config = str(write_config(domain="falcot.com"))
    status, out, _ = heron("-c", config, "check")
    assert status == 1
    assert "FAIL  tls.certificate: does not cover falcot.com" in out


def test_check_reports_a_port_in_use(heron: Run, write_config: Callable[..., Path]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = str(write_config(web={"listen": [f"127.0.0.1:{port}"]}))
        heron("-c", config, "cert")
        status, out, _ = heron("-c", config, "check")
    assert status == 1
    assert f"FAIL  web.listen: tcp 127.0.0.1:{port}: address already in use" in out


def test_check_probes_the_mux_port_for_tcp_and_turn_s_udp(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    port = free_port()
    config = str(write_config(mux={"listen": [f"127.0.0.1:{port}"]}))
    heron("-c", config, "cert")
    status, out, _ = heron("-c", config, "check")
    assert status == 0, out
    assert f"ok    mux.listen tcp 127.0.0.1:{port} is free" in out
    assert f"ok    mux.listen udp 127.0.0.1:{port} is free" in out
    config = str(write_config(mux={"listen": [f"127.0.0.1:{port}"]}, turn={"enabled": False}))
    status, out, _ = heron("-c", config, "check")
    assert status == 0, out
    assert "mux.listen udp" not in out


@pytest.mark.parametrize(
    ("web", "mux"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("localhost", "[::1]")],
)
def test_check_fails_two_listeners_of_heron_on_one_address(
    heron: Run, write_config: Callable[..., Path], web: str, mux: str
) -> None:
    """Each port probe alone finds the port free; heron's own two listeners would clash."""
    port = free_port()
    config = str(write_config(web={"listen": [f"{web}:{port}"]}, mux={"listen": [f"{mux}:{port}"]}))
    heron("-c", config, "cert")
    status, out, _ = heron("-c", config, "check")
    assert status == 1
    assert f"FAIL  web.listen: tcp {web}:{port} is also mux.listen {mux}:{port}" in out, out


def test_check_lets_an_ipv4_wildcard_and_an_ipv6_address_share_a_port(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    port = free_port()
    settings = {"web": {"listen": [f"0.0.0.0:{port}"]}, "mux": {"listen": [f"[::1]:{port}"]}}
    config = str(write_config(**settings))
    heron("-c", config, "cert")
    _, out, _ = heron("-c", config, "check")
    assert "is also" not in out, out


def test_dns_prints_zone_records(heron: Run, write_config: Callable[..., Path]) -> None:
    config = str(write_config(domain="falcot.com", public_addresses=["198.51.100.19"]))
    status, out, _ = heron("-c", config, "dns")
    assert status == 0
    assert "198.51.100.19" in out
    assert "_xmpp-client._tcp.falcot.com." not in out  # xmpp has no client listener here
    assert "_turn._udp.falcot.com." in out


def test_dns_prints_the_mux_port_as_each_service_s_fallback(
    heron: Run, write_config: Callable[..., Path]
) -> None:
    """``[mux] listen`` puts 443 in the SRV sets, after each service's own port."""
    config = write_config(
        domain="falcot.com",
        hostname="heron.falcot.com",
        public_addresses=["198.51.100.19"],
        sip={"domain": "sip.falcot.com", "tls_listen": ["127.0.0.1:5061"]},
        xmpp={"tls_listen": ["127.0.0.1:5223"]},
        mux={"listen": ["198.51.100.19:443"]},
    )
    status, out, _ = heron("-c", str(config), "dns")
    assert status == 0
    lines = [line.split() for line in out.splitlines() if not line.startswith(";")]
    srv = [(r[0], r[3], r[5]) for r in lines if r[2] == "SRV"]
    for owner in ["_turn._udp.falcot.com.", "_turn._tcp.falcot.com."]:
        assert (owner, "10", "443") in srv, owner
    assert ("_turns._tcp.falcot.com.", "0", "443") in srv  # no TLS port of its own here
    assert ("_sips._tcp.sip.falcot.com.", "0", "5061") in srv
    assert ("_sips._tcp.sip.falcot.com.", "10", "443") in srv
    assert ("_sip._tcp.sip.falcot.com.", "10", "443") in srv
    assert ("_xmpps-client._tcp.falcot.com.", "15", "443") in srv
    assert ("_xmpp-client._tcp.falcot.com.", "5", "443") in srv  # no port of its own here
    naptr = [r[6] for r in lines if r[2] == "NAPTR" and r[0] == "sip.falcot.com."]
    assert naptr == ['"SIPS+D2T"', '"SIP+D2T"', '"SIP+D2U"']


def test_data_dir_option_and_environment(
    heron: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heron("--data-dir", str(tmp_path / "opt"), "user", "add", "a@localhost", "--password", "x")
    assert (tmp_path / "opt" / "heron.db").exists()
    monkeypatch.setenv("HERON_DATA_DIR", str(tmp_path / "env"))
    heron("user", "add", "b@localhost", "--password", "x")
    assert (tmp_path / "env" / "heron.db").exists()


def test_version(heron: Run) -> None:
    status, out, _ = heron("--version")
    assert status == 0 and out.startswith("heron, version ")


def test_user_import_adds_every_line(heron: Run) -> None:
    listing = "# staff\nroland@localhost s3cret one\n\nsally@localhost pw2\n"
    assert heron("user", "import", "-", stdin=listing) == (0, "added 2 account(s)\n", "")
    accounts = heron("user", "list")[1]
    assert "roland@localhost" in accounts and "sally@localhost" in accounts
    # The password is the rest of the line, spaces included.
    assert heron("user", "passwd", "roland@localhost", "--password", "x")[0] == 0


def test_user_import_refuses_a_line_without_password_before_writing(heron: Run) -> None:
    result = heron("user", "import", "-", stdin="ok@localhost pw\nbroken@localhost\n")
    assert_one_line_error(result, '<stdin>:2: expected "user@domain password"')
    assert "ok@localhost" not in heron("user", "list")[1]


def test_user_import_stops_at_an_existing_account(heron: Run) -> None:
    heron("user", "add", "roland@localhost", "--password", "x")
    result = heron("user", "import", "-", stdin="roland@localhost pw\n")
    assert_one_line_error(result, "roland@localhost already exists")


def _archive(path: Path, *entries: tarfile.TarInfo) -> Path:
    manifest = b'{"format": 1, "members": []}'
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("heron-backup.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for entry in entries:
            tar.addfile(entry, io.BytesIO(b"x" * entry.size))
    return path


def test_restore_writes_no_link_and_nothing_outside_the_data_directory(
    heron: Run, data_dir: Path, tmp_path: Path
) -> None:
    link = tarfile.TarInfo("sip_secret")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    escape = tarfile.TarInfo("../escaped")
    escape.size = 4
    archive = _archive(tmp_path / "hostile.tar.gz", link, escape)
    status, out, err = heron("restore", str(archive))
    assert (status, out, err) == (0, "", "")
    assert not (data_dir / "sip_secret").exists()
    assert not (tmp_path / "escaped").exists()


def test_backup_then_restore_round_trips_the_database_and_the_tls_key(
    heron: Run, data_dir: Path, tmp_path: Path
) -> None:
    assert heron("cert")[0] == 0
    assert heron("user", "add", "alice@localhost", "--password-stdin", stdin="secret\n")[0] == 0
    key = (data_dir / "tls" / "heron.key").read_bytes()
    status, out, err = heron("backup", str(tmp_path / "b.tar.gz"))
    assert status == 0, err
    assert f"saved {Path('var') / 'heron.db'}" in out
    status, _, err = heron(
        "--data-dir", str(tmp_path / "other"), "restore", str(tmp_path / "b.tar.gz")
    )
    assert status == 0, err
    assert (tmp_path / "other" / "tls" / "heron.key").read_bytes() == key
    assert stat.S_IMODE((tmp_path / "other" / "heron.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(("days", "status", "line"), [(10, 1, "FAIL"), (20, 0, "warn")])
def test_check_fails_a_certificate_that_expires_within_14_days_and_warns_within_30(
    heron: Run, write_config: Callable[..., Path], days: int, status: int, line: str
) -> None:
    config = str(write_config())
    assert heron("-c", config, "cert", "--days", str(days))[0] == 0
    checked, out, _ = heron("-c", config, "check")
    assert checked == status, out
    finding = next(text for text in out.splitlines() if "tls.certificate: expires on" in text)
    assert finding.startswith(line)
    assert "renew it" in finding


@pytest.mark.parametrize("manifest", [b"not json", b"[1]", b'{"format": 99}'])
def test_restore_refuses_a_malformed_manifest_in_one_line(
    heron: Run, tmp_path: Path, manifest: bytes
) -> None:
    archive = tmp_path / "odd.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("heron-backup.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    assert_one_line_error(heron("restore", str(archive)), "not a heron backup of format 1")


def test_restore_refuses_a_file_that_is_not_an_archive(heron: Run, tmp_path: Path) -> None:
    archive = tmp_path / "random.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)
    assert_one_line_error(heron("restore", str(archive)), "not a heron backup")
