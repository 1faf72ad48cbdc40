"""Let's Encrypt's test CA on loopback: pebble, and pebble-challtestsrv as its DNS.

Debian's ``pebble`` ships both programs but no configuration or certificates: the
directory's HTTPS certificate is made here, and every port is a free one. The DNS
server answers every A query with 127.0.0.1 (and no AAAA), so any name a test gives
heron is validated against heron on loopback, at the port ``tls_port`` names.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tests.support.certs import CertificateAuthority
from tests.support.config import free_port
from tests.support.tools import require_tool, stop

LOCALHOST = "127.0.0.1"
_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    ca_file: Path
    """The CA of the directory's own HTTPS certificate (``tls.acme_ca``)."""
    management_url: str
    """Where pebble gives its issuing root (``/roots/0``), made afresh at each start."""
    log: list[str]


def _started(process: subprocess.Popen[str], marker: str, log: list[str]) -> None:
    """Read ``process``'s output until ``marker``; then keep draining it in a thread."""
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        if marker in line:
            break
    else:
        raise AssertionError("did not start:\n" + "".join(log))
    threading.Thread(target=log.extend, args=(process.stdout,), daemon=True).start()


def _answering(port: int) -> None:
    """Wait until challtestsrv's DNS takes TCP connections: it logs before it listens."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=_START_TIMEOUT):
                return
        except ConnectionRefusedError:
            continue
    raise AssertionError(f"challtestsrv's DNS never listened on {port}")


@contextmanager
def _process(command: list[str], marker: str, log: list[str]) -> Iterator[None]:
    environment = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    # Every order proves its names again, so a forced renewal is validated too.
    environment["PEBBLE_AUTHZREUSE"] = "0"
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    )
    try:
        _started(process, marker, log)
        yield
    finally:
        stop(process)


@contextmanager
def pebble(directory: Path, tls_port: int) -> Iterator[Pebble]:
    """pebble validating TLS-ALPN-01 on ``tls_port`` of 127.0.0.1, for any name."""
    directory.mkdir(parents=True, exist_ok=True)
    server = require_tool("pebble", "pebble")
    challtestsrv = require_tool("pebble-challtestsrv", "pebble")
    authority = CertificateAuthority("pebble directory test CA")
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOCALHOST))]
    certificate, key = authority.issue(names, server_auth_only=True).write(directory, "wfe")
    ca_file = authority.write(directory / "wfe-ca.crt")
    dns_port, api_port, management_port = free_port(), free_port(), free_port()
    config = directory / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{LOCALHOST}:{api_port}",
                    "managementListenAddress": f"{LOCALHOST}:{management_port}",
                    "certificate": str(certificate),
                    "privateKey": str(key),
                    "httpPort": free_port(),
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    log: list[str] = []
    dns = [
        challtestsrv,
        *("-dns01", f"{LOCALHOST}:{dns_port}", "-management", f"{LOCALHOST}:{free_port()}"),
        *("-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""),
    ]
    with _process(dns, "Starting challenge servers", log):
        _answering(dns_port)
        acme = [server, "-config", str(config), "-dnsserver", f"{LOCALHOST}:{dns_port}"]
        with _process(acme, "ACME directory available", log):
            yield Pebble(
                f"https://{LOCALHOST}:{api_port}/dir",
                ca_file,
                f"https://{LOCALHOST}:{management_port}",
                log,
            )
