"""A hostile or absent ACME directory: heron reads a bounded answer, says what went wrong
in one line, and keeps serving the certificate it had."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509

from heron.acme.messages import MAX_BODY
from tests.support.certs import CertificateAuthority
from tests.support.config import free_port, render_toml
from tests.support.heron import base_settings, heron_cli, merge, serving

LOCALHOST = "127.0.0.1"


class _Flood(BaseHTTPRequestHandler):
    """A directory four times the size heron reads, sent whole."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"{" + b" " * (4 * MAX_BODY) + b"}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # heron stopped reading at its limit, as it should

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def flooding_directory(directory: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS "ACME directory" on loopback that floods; its URL and CA file."""
    authority = CertificateAuthority("hostile CA")
    issued = authority.issue([x509.IPAddress(ipaddress.ip_address(LOCALHOST))])
    cert, key = issued.write(directory, "hostile")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer((LOCALHOST, 0), _Flood)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"https://{LOCALHOST}:{server.server_address[1]}/dir",
            authority.write(directory / "hostile-ca.crt"),
        )
    finally:
        server.shutdown()
        server.server_close()


def acme_config(directory: Path, url: str, ca: Path | None) -> Path:
    tls = {"acme": True, "acme_directory": url, **({"acme_ca": str(ca)} if ca else {})}
    settings = {"tls": tls, "mux": {"listen": [f"{LOCALHOST}:{free_port()}"]}}
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(base_settings(directory), settings)))
    return config


def test_a_directory_flooding_its_answer_is_cut_at_the_limit(tmp_path: Path) -> None:
    with flooding_directory(tmp_path) as (url, ca):
        with serving(acme_config(tmp_path, url, ca)) as heron:
            result = heron_cli(heron.config, "tls", "renew")
            assert result.returncode == 2, result.stdout + result.stderr
            assert result.stderr.splitlines() == [
                f"heron: error: tls renew: the CA answered more than {MAX_BODY} bytes"
            ]
            assert "state:     failed" in result.stdout
            assert heron.cli("tls", "status").returncode == 0  # still serving
        log = "".join(heron.log)
        assert "Traceback" not in log, log
    assert heron.process.returncode == 0


def test_an_unreachable_directory_is_one_line_and_status_2(tmp_path: Path) -> None:
    url = f"https://{LOCALHOST}:{free_port()}/dir"
    with serving(acme_config(tmp_path, url, None)) as heron:
        result = heron_cli(heron.config, "tls", "renew")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"heron: error: tls renew: cannot reach the CA at {url}: ")


def test_renew_without_a_running_heron_is_one_line_and_status_2(tmp_path: Path) -> None:
    config = acme_config(tmp_path, "https://ca.invalid/dir", None)
    result = heron_cli(config, "tls", "renew")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"heron: error: heron is not running on {tmp_path / 'var'} "
        f"(no control socket {tmp_path / 'var' / 'control.sock'})"
    ]
