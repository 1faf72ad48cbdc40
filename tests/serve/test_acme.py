"""``[tls] acme`` against pebble (issue 16): the certificate is issued by TLS-ALPN-01 on
the mux port, served on every TLS listener, and renewed when forced without a drop."""

from __future__ import annotations

import re
import socket
import ssl
import stat
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, base_settings, heron_cli, merge, serving
from tests.support.pebble import Pebble, pebble

DOMAIN = "heron.test"
NAMES = (DOMAIN, f"conference.{DOMAIN}")
LOCALHOST = "127.0.0.1"


@dataclass
class AcmeHeron:
    heron: RunningHeron
    pebble: Pebble
    data: Path
    listeners: dict[str, tuple[int, str | None]]
    """Every TLS listener: its port and the ALPN protocol a client of it offers."""

    def root(self, directory: Path) -> Path:
        """pebble's issuing root, made at its start: what clients verify heron with."""
        trust = ssl.create_default_context(cafile=self.pebble.ca_file)
        url = f"{self.pebble.management_url}/roots/0"
        with urllib.request.urlopen(url, context=trust, timeout=30) as answer:
            path = directory / "pebble-root.pem"
            path.write_bytes(answer.read())
        return path


@pytest.fixture(scope="module")
def acme_heron(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHeron]:
    directory = tmp_path_factory.mktemp("acme")
    mux = free_port()
    listeners: dict[str, tuple[int, str | None]] = {
        "mux": (mux, "http/1.1"),
        "web.listen": (free_port(), "http/1.1"),
        "turn.tls_listen": (free_port(), "stun.turn"),
        "sip.tls_listen": (free_port(), "sip/2"),
        "xmpp.tls_listen": (free_port(), "xmpp-client"),
        "xmpp.s2s_tls_listen": (free_port(), "xmpp-server"),
    }
    # The mux hands each service's TLS to that service's context.
    for alpn in ("stun.turn", "sip/2", "xmpp-client", "xmpp-server"):
        listeners[f"mux {alpn}"] = (mux, alpn)

    def at(key: str) -> list[str]:
        return [f"{LOCALHOST}:{listeners[key][0]}"]

    with pebble(directory / "pebble", tls_port=mux) as ca:
        settings = merge(
            base_settings(directory),
            {
                "domain": DOMAIN,
                "tls": {
                    "acme": True,
                    "acme_directory": ca.directory_url,
                    "acme_ca": str(ca.ca_file),
                    "acme_email": f"admin@{DOMAIN}",
                },
                "mux": {"listen": at("mux")},
                "web": {"listen": at("web.listen")},
                "turn": {"enabled": True, "listen": [], "tls_listen": at("turn.tls_listen")},
                "sip": {"enabled": True, "listen": [], "tls_listen": at("sip.tls_listen")},
                "xmpp": {
                    "enabled": True,
                    "listen": [],
                    "tls_listen": at("xmpp.tls_listen"),
                    "s2s_listen": [],
                    "s2s_tls_listen": at("xmpp.s2s_tls_listen"),
                },
                "media": {"enabled": False},
            },
        )
        config = directory / "heron.toml"
        config.write_text(render_toml(settings))
        with serving(config) as heron:
            yield AcmeHeron(heron, ca, Path(settings["data_dir"]), listeners)
        log = "".join(heron.log)
        assert heron.process.returncode == 0, log
        assert "Traceback" not in log, log


def served(port: int, alpn: str | None, root: Path | None = None) -> bytes:
    """The leaf a TLS client gets on ``port`` asking for heron's domain, verified against
    ``root`` (the chain heron sends must lead there) when given."""
    if root is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=root)
    if alpn:
        context.set_alpn_protocols([alpn])
    with socket.create_connection((LOCALHOST, port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def leaf_on_disk(data: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((data / "acme" / "heron.crt").read_bytes())


def renew(heron: RunningHeron) -> str:
    result = heron_cli(heron.config, "tls", "renew")
    assert result.returncode == 0, result.stderr + "".join(heron.log)
    return result.stdout


def test_rfc8555_certificate_issued_by_tls_alpn_01_and_served_on_every_tls_listener(
    acme_heron: AcmeHeron, tmp_path: Path
) -> None:
    # The order heron placed at start comes first; this one waits behind it.
    answer = renew(acme_heron.heron)
    assert re.search(r"state:\s+valid", answer), answer
    issued = re.search(r"issued:\s+(\d+) since start", answer)
    assert issued and int(issued[1]) >= 2, answer  # the one at start, then this one
    leaf = leaf_on_disk(acme_heron.data)
    assert leaf.issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(NAMES)
    root = acme_heron.root(tmp_path)
    for key, (port, alpn) in acme_heron.listeners.items():
        der = served(port, alpn, root)
        assert x509.load_der_x509_certificate(der) == leaf, key
    for name in ("account.key", "heron.key", "heron.crt"):
        mode = stat.S_IMODE((acme_heron.data / "acme" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_forced_renewal_is_served_by_new_handshakes_and_open_connections_stay(
    acme_heron: AcmeHeron,
) -> None:
    web_port = acme_heron.listeners["web.listen"][0]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((LOCALHOST, web_port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as kept:
            before = kept.getpeercert(binary_form=True)
            renew(acme_heron.heron)
            after = leaf_on_disk(acme_heron.data)
            assert x509.load_der_x509_certificate(before or b"") != after
            for key, (port, alpn) in acme_heron.listeners.items():
                assert x509.load_der_x509_certificate(served(port, alpn)) == after, key
            # The connection opened before the renewal still serves, on its old certificate.
            kept.sendall(f"GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
            assert kept.recv(4096).startswith(b"HTTP/1.1 200")


def test_rfc8737_acme_tls_handshake_for_a_name_not_being_proven_is_refused(
    acme_heron: AcmeHeron,
) -> None:
    """A client offering ``acme-tls/1`` gets no certificate outside an order: not heron's
    real one, and no challenge certificate for a name nobody asked the CA about."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["acme-tls/1"])
    port = acme_heron.listeners["mux"][0]
    for name in (DOMAIN, "elsewhere.test"):
        with socket.create_connection((LOCALHOST, port), timeout=30) as raw:
            # An unrecognized_name alert, which asyncio may close on before it leaves.
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname=name)


def test_acme_without_the_mux_is_one_line_and_status_2(tmp_path: Path) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(merge(base_settings(tmp_path), {"tls": {"acme": True}})))
    result = heron_cli(config, "serve")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"heron: error: {config}: (top level): tls.acme proves names by TLS-ALPN-01 on port 443: "
        "set [mux] listen"
    ]


def test_heron_check_reports_the_acme_certificate(acme_heron: AcmeHeron) -> None:
    renew(acme_heron.heron)  # issued, whatever ran before
    result = heron_cli(acme_heron.heron.config, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"ok    certificate {acme_heron.data / 'acme' / 'heron.crt'}" in lines
    assert (
        "warn  tls.acme: no [mux] listen address has port 443, where a public CA validates "
        "TLS-ALPN-01 (RFC 8737 §3); fix: listen on 443"
    ) in lines
    assert "self-signed" not in result.stdout
