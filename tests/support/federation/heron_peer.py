"""heron as a federation peer, shaped like the reference servers so one test drives either.

:func:`heron` starts ``heron serve`` for one domain (and its ``conference.`` MUC service) on
free loopback ports, publishes both in the test's DNS stub, and reaches that stub through
``dns.servers``: heron runs in the machine's own namespace. Its certificate serves c2s and s2s
alike; it trusts the test CA for peers (``xmpp.s2s_ca_file``) and may connect to loopback
(``xmpp.s2s_allowed_destinations``), which a default install refuses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.config import free_port, render_toml
from tests.support.federation.ca import CertFiles
from tests.support.federation.dns import FederationDns
from tests.support.federation.reference import ReferenceServer
from tests.support.heron import HERON, RunningHeron, base_settings, heron_cli, merge, serving


@dataclass
class HeronServer(ReferenceServer):
    """A running heron; ``ctl`` is the ``heron`` command on its configuration."""

    running: RunningHeron | None = field(default=None, repr=False)

    def logs(self) -> str:
        return "".join(self.running.log) if self.running is not None else ""


@contextmanager
def heron(
    directory: Path,
    domain: str,
    *,
    tls: CertFiles,
    cafile: Path,
    dns: FederationDns,
    muc_domain: str | None = None,
    secure_auth: bool = False,
    direct_tls: bool = False,
    users: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Iterator[HeronServer]:
    """heron serving ``domain`` with ``users`` (local part -> password); ``settings`` are
    merged over the federation ones, one section deep. ``direct_tls`` adds an
    ``s2s_tls_listen`` port and publishes it as ``_xmpps-server._tcp`` (XEP-0368)."""
    directory.mkdir(parents=True, exist_ok=True)
    c2s_port, s2s_port = free_port(), free_port()
    tls_port = free_port() if direct_tls else None
    muc = muc_domain or f"conference.{domain}"
    for name in (domain, muc):
        dns.add_domain(name, s2s_port, tls_port)
    federation = {
        "domain": domain,
        "tls": {"certificate": str(tls.cert), "key": str(tls.key)},
        "dns": {"servers": [dns.stub.address]},
        "xmpp": {
            "enabled": True,
            "muc": muc,
            "listen": [f"127.0.0.1:{c2s_port}"],
            "tls_listen": [],
            "s2s_listen": [f"127.0.0.1:{s2s_port}"],
            "s2s_tls_listen": [f"127.0.0.1:{tls_port}"] if tls_port else [],
            "s2s_allowed_destinations": ["127.0.0.0/8"],
            "s2s_ca_file": str(cafile),
            "s2s_secure_auth": secure_auth,
        },
    }
    config = directory / "heron.toml"
    config.write_text(
        render_toml(merge(merge(base_settings(directory), federation), dict(settings or {})))
    )
    accounts = dict(users or {})
    started = time.monotonic()
    lines = "".join(f"{user}@{domain} {password}\n" for user, password in accounts.items())
    imported = heron_cli(config, "user", "import", "-", stdin=lines)
    assert imported.returncode == 0, imported.stderr
    with serving(config) as running:
        yield HeronServer(
            kind="heron",
            domain=domain,
            muc_domain=muc,
            c2s_port=c2s_port,
            s2s_port=s2s_port,
            users=accounts,
            cafile=cafile,
            directory=directory,
            log_files=(),
            startup_seconds=time.monotonic() - started,
            _ctl=[*HERON, "-c", str(config)],
            running=running,
        )
