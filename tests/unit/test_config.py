"""Configuration: working defaults, and one line naming the key for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from heron.config import Config, ListenAddress, load_config, parse_address
from heron.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "heron.toml"
    path.write_text(text)
    return path


def test_without_a_file_heron_serves_localhost_on_the_default_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HERON_DATA_DIR", raising=False)
    config = load_config()
    assert config.domain == "localhost"
    assert config.data_dir == Path("var")
    assert config.database_url == "sqlite:///var/heron.db"
    assert [str(a) for a in config.turn.listen] == ["0.0.0.0:3478"]
    assert [str(a) for a in config.turn.tls_listen] == ["0.0.0.0:5349"]
    assert [str(a) for a in config.sip.listen + config.sip.tls_listen] == [
        "0.0.0.0:5060",
        "0.0.0.0:5061",
    ]
    xmpp = config.xmpp
    assert [a.port for a in xmpp.listen + xmpp.tls_listen] == [5222, 5223]
    assert [a.port for a in xmpp.s2s_listen + xmpp.s2s_tls_listen] == [5269, 5270]
    assert xmpp.s2s_require_encryption and not xmpp.s2s_secure_auth
    assert [a.port for a in config.web.listen] == [8443]
    assert config.mux.listen == []


def test_shared_names_default_to_the_main_domain(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'domain = "Falcot.COM"\n'))
    assert config.domain == "falcot.com"
    assert config.sip_domain == config.turn_realm == "falcot.com"
    assert config.xmpp_hosts == ["falcot.com"]
    assert config.muc_domain == "conference.falcot.com"


def test_handbook_names_are_kept(tmp_path: Path) -> None:
    text = """
domain = "falcot.com"
admins = ["Admin@falcot.com"]
[sip]
domain = "sip.falcot.com"
listen = ["[2001:db8::19]:5060", "198.51.100.19:5060"]
[xmpp]
hosts = ["falcot.com", "example.org"]
"""
    config = load_config(write(tmp_path, text))
    assert config.sip_domain == "sip.falcot.com"
    assert config.admins == ["admin@falcot.com"]
    assert config.sip.listen[0] == ListenAddress("2001:db8::19", 5060)
    assert str(config.sip.listen[0]) == "[2001:db8::19]:5060"
    assert config.account_domains == ["falcot.com", "example.org"]
    assert "sip.falcot.com" in config.tls_names
    assert "conference.falcot.com" in config.tls_names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[turn]\nrelm = 'x'\n", "turn.relm: unknown key"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[sip]\nlisten = '0.0.0.0:5060'\n", "sip.listen: Input should be a valid list"),
        ("[web]\nlisten = ['0.0.0.0:99999']\n", "web.listen.0: '0.0.0.0:99999': the port must"),
        ("[web]\nlisten = ['example.com:443']\n", "web.listen.0: 'example.com:443': the host must"),
        ("[web]\nlisten = ['8443']\n", "web.listen.0: '8443' is not of the form host:port"),
        ("domain = 'bad_domain'\n", "domain: 'bad_domain' is not a valid domain name"),
        ("admins = ['nobody']\n", "admins.0: 'nobody' is not an address of the form user@domain"),
        ("[turn]\nenabled = 'maybe'\n", "turn.enabled: Input should be a valid boolean"),
        ("log_level = 'loud'\n", "log_level: String should match pattern"),
        ("domain = \n", "not valid TOML"),
        ("[dns]\nservers = ['ns.example.com']\n", "dns.servers.0: 'ns.example.com': a name"),
        ("[dns]\nservers = ['127.0.0.1:0']\n", "dns.servers.0: '127.0.0.1:0': the port must"),
        ("[sip]\ndns_servers = ['127.0.0.1']\n", "sip.dns_servers: unknown key"),
        ("[sip]\nmedia_relay = 'sometimes'\n", "sip.media_relay: Input should be 'never'"),
        ("[sip]\necho = '6 00'\n", "sip.echo: String should match pattern"),
        ("[sip]\necho = '600'\n[media]\nenabled = false\n", "sip.echo = '600' needs the media"),
        ("[xmpp]\narchive_expires = '1h'\n", "xmpp.archive_expires: '1h': use \"never\""),
        ("[xmpp]\narchive_expires = 7\n", 'xmpp.archive_expires: 7: use "never"'),
        ("[xmpp]\narchive_page = 1000\n", "xmpp.archive_page: Input should be less than"),
    ],
)
def test_bad_values_name_the_key_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothere.toml: cannot read: No such file"):
        load_config(tmp_path / "nothere.toml")


def test_data_dir_option_beats_environment_beats_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'data_dir = "/from/file"\n')
    monkeypatch.delenv("HERON_DATA_DIR", raising=False)
    assert load_config(path).data_dir == Path("/from/file")
    monkeypatch.setenv("HERON_DATA_DIR", "/from/env")
    assert load_config(path).data_dir == Path("/from/env")
    assert load_config(path, Path("/from/option")).data_dir == Path("/from/option")
    assert load_config(path, Path("/from/option")).certificate_path == Path(
        "/from/option/tls/heron.crt"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Roland@Falcot.com", ("roland", "falcot.com")), ("a.b+c@x.org.", ("a.b+c", "x.org"))],
)
def test_addresses_are_normalised(raw: str, expected: tuple[str, str]) -> None:
    assert parse_address(raw) == expected


@pytest.mark.parametrize(
    "raw", ["roland", "@falcot.com", "ro land@falcot.com", "r@bad..com", "r:1@x.org"]
)
def test_bad_addresses_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_address(raw)


def test_the_certificate_covers_the_names_clients_ask_the_mux_for() -> None:
    config = Config.model_validate(
        {"domain": "falcot.com", "mux": {"sni": {"turn.falcot.com": "turn"}}}
    )
    assert "turn.falcot.com" in config.tls_names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[media]\nport_min = 50000\nport_max = 50002\n", "media: port_min must be at least 3"),
        ("[media]\nport_min = 50000\nport_max = 50100\n", "media ports 50000-50100 overlap TURN"),
        ("[media]\naddress = 'eth0'\n", "Input is not a valid IPv4 address"),
        ("[media]\ntimeout = 0\n", "media.timeout: Input should be greater than or equal to 1"),
        ("[media]\nadvertise = '2001:db8::5'\n", "media: advertise must be of the IP version"),
    ],
)
def test_bad_media_values_name_the_key_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    test_bad_values_name_the_key_in_one_line(tmp_path, text, message)


def test_media_defaults_clear_of_turn_and_advertised_address() -> None:
    config = Config()
    assert config.media.port_max < config.turn.relay_port_min
    assert str(config.media_advertise) == "127.0.0.1"
    public = Config.model_validate({"public_addresses": ["2001:db8::1", "192.0.2.7"]})
    assert str(public.media_advertise) == "192.0.2.7"
    told = Config.model_validate({"media": {"advertise": "198.51.100.2"}})
    assert str(told.media_advertise) == "198.51.100.2"
    bound = Config.model_validate({"media": {"address": "192.0.2.9"}})
    assert str(bound.media_advertise) == "192.0.2.9"
    # with TURN off, the media range may take the relay range's ports
    Config.model_validate(
        {"turn": {"enabled": False}, "media": {"port_min": 50000, "port_max": 60000}}
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("never", None), ("1w", 604_800.0), ("3d", 259_200.0), ("1y", 31_556_952.0)],
)
def test_archive_expires_reads_prosodys_units(tmp_path: Path, text: str, seconds: float) -> None:
    config = load_config(write(tmp_path, f"[xmpp]\narchive_expires = '{text}'\n"))
    assert config.xmpp.archive_expires == seconds


def test_acme_keeps_its_files_in_the_data_directory(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, 'data_dir = "d"\n[tls]\nacme = true\n[mux]\nlisten = ["0.0.0.0:443"]\n')
    )
    assert config.certificate_path == Path("d/acme/heron.crt")
    assert config.key_path == Path("d/acme/heron.key")
    assert config.tls.acme_directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert config.tls.acme_renew_before == 30


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tls]\nacme = true\n", "(top level): tls.acme proves names by TLS-ALPN-01 on port 443"),
        (
            '[tls]\nacme = true\ncertificate = "/etc/c.pem"\n[mux]\nlisten = ["0.0.0.0:443"]\n',
            "tls: tls.certificate and tls.key are ACME's own with tls.acme; remove them",
        ),
        ('[tls]\nacme_directory = "http://ca/dir"\n', "tls.acme_directory: 'http://ca/dir' is"),
        ('[tls]\nacme_email = "root"\n', "tls.acme_email: 'root' is not an e-mail address"),
        ("[tls]\nacme_renew_before = 0\n", "tls.acme_renew_before: Input should be greater"),
    ],
)
def test_bad_acme_values_name_the_key_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert message in str(error.value)
    assert "\n" not in str(error.value)
