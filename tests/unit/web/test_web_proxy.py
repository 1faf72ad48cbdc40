"""X-Forwarded-For believed from trusted proxies only, as nginx's real_ip_recursive."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.config import load_config
from heron.errors import ConfigError
from heron.web.proxy import Client, real_client

PROXY = [ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "header", "tls", "client"),
    [
        # Not from a proxy: its own address over HTTPS, whatever it claims.
        ("192.0.2.7", ["198.51.100.1"], True, Client("192.0.2.7", False)),
        # The plain listener's peer is a proxy; an untrusted one leaves the client unknown.
        ("192.0.2.7", ["198.51.100.1"], False, Client(None, False)),
        ("127.0.0.1", [], False, Client("127.0.0.1", False)),  # a local scraper, no proxy
        ("127.0.0.1", ["198.51.100.1"], False, Client("198.51.100.1", True)),
        ("::ffff:127.0.0.1", ["198.51.100.1"], False, Client("198.51.100.1", True)),
        # What the client wrote sits left of what the proxy appended: never reached.
        ("127.0.0.1", ["127.0.0.1, 198.51.100.1"], False, Client("198.51.100.1", True)),
        ("127.0.0.1", ["127.0.0.1", "198.51.100.1"], False, Client("198.51.100.1", True)),
        # Proxies behind proxies are skipped; all trusted: the leftmost.
        ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], False, Client("198.51.100.1", True)),
        ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], False, Client("10.9.9.9", True)),
        # Garbage where a trusted hop should be: nothing beyond it is believed.
        ("127.0.0.1", ["198.51.100.1, junk, 10.1.2.3"], False, Client("10.1.2.3", True)),
        ("127.0.0.1", ["[2001:db8::1]"], True, Client("2001:db8::1", True)),
        (None, ["198.51.100.1"], True, Client(None, False)),
    ],
)
def test_real_client(peer: str | None, header: list[str], tls: bool, client: Client) -> None:
    assert real_client(peer, header, PROXY, tls=tls) == client


def test_nobody_is_trusted_by_default() -> None:
    assert real_client("127.0.0.1", ["198.51.100.1"], [], tls=True) == Client("127.0.0.1", False)
    assert real_client("127.0.0.1", ["198.51.100.1"], [], tls=False) == Client(None, False)


def test_an_unknown_client_is_never_loopback() -> None:
    assert not Client(None, False).is_loopback
    assert Client("127.0.0.1", True).is_loopback


@given(
    forged=st.lists(st.ip_addresses(v=4).map(str) | st.text(max_size=20), max_size=8),
    client=st.ip_addresses(v=4).filter(lambda a: not any(a in n for n in PROXY)),
)
def test_what_a_client_writes_never_changes_who_it_is(
    forged: list[str], client: IPv4Address
) -> None:
    """Whatever the header held, the proxy appends the address it saw, and that wins."""
    header = [", ".join([*forged, str(client)])]
    assert real_client("127.0.0.1", header, PROXY, tls=False) == Client(str(client), True)


@pytest.mark.parametrize("value", ["'127.0.0.1/32'", "['nginx']", "['10.0.0.1/33']"])
def test_a_bad_trusted_proxies_setting_is_one_line_naming_the_key(
    tmp_path: Path, value: str
) -> None:
    path = tmp_path / "heron.toml"
    path.write_text(f"[web]\ntrusted_proxies = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "web.trusted_proxies" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_trusted_proxies_default_to_none(tmp_path: Path) -> None:
    path = tmp_path / "heron.toml"
    path.write_text("[web]\nplain_listen = ['127.0.0.1:8080']\n")
    assert load_config(path).web.trusted_proxies == []
