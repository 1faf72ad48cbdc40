"""DNS for federation tests: the stub on port 53 of a loopback address of its own, and a mount
namespace whose /etc/resolv.conf names it, for reference servers that read only that file.

Prosody (through libunbound, its hosts file option off) and ejabberd (Erlang's inet_res for
SRV; for addresses its inetrc's order, which the runner makes the hosts file, then DNS) both
take their name servers from /etc/resolv.conf, which has no port: hence port 53 on a random
127.a.b.c, and a resolv.conf of our own mounted over /etc's in a namespace of the server's.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dns_stub import DnsStub, dns_stub_thread
from tests.support.tools import missing, require_tool

LOOPBACK = "127.0.0.1"
"""Where every server of the tests listens; the stub's A records point here."""
_TRIES = 50


@dataclass
class FederationDns:
    """The stub and a resolv.conf naming it; :meth:`add_domain` publishes an XMPP domain."""

    stub: DnsStub
    resolv_conf: Path
    domains: dict[str, int] = field(default_factory=dict)

    @property
    def server(self) -> str:
        """The stub's address, e.g. ``127.41.7.203``, on port 53."""
        return self.stub.host

    def add_domain(self, domain: str, s2s_port: int, direct_tls_port: int | None = None) -> None:
        """``_xmpp-server._tcp.DOMAIN SRV 0 0 PORT DOMAIN.`` and ``DOMAIN A 127.0.0.1``
        (RFC 6120 §3.2.1), which is how every server of the tests reaches ``domain``; with
        ``direct_tls_port`` also ``_xmpps-server._tcp.DOMAIN`` (XEP-0368), else none (a
        domain published again by a later peer loses its earlier record)."""
        self.stub.add(f"_xmpp-server._tcp.{domain}", "SRV", f"0 0 {s2s_port} {domain}.")
        direct = f"_xmpps-server._tcp.{domain}"
        if direct_tls_port is None:
            self.stub.remove(direct, "SRV")
        else:
            self.stub.add(direct, "SRV", f"0 0 {direct_tls_port} {domain}.")
        self.stub.add(domain, "A", LOOPBACK)
        self.domains[domain] = s2s_port

    def namespaced(self, *command: str) -> list[str]:
        """``command`` run in a new mount namespace where /etc/resolv.conf is ours."""
        unshare = require_tool("unshare", "util-linux")
        return [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"',
            str(self.resolv_conf),
            *command,
        ]


@contextmanager
def federation_dns(directory: Path) -> Iterator[FederationDns]:
    """The stub on port 53 of a free random 127.a.b.c (we run as root), and its resolv.conf."""
    rng = random.SystemRandom()
    for _ in range(_TRIES):
        host = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        with ExitStack() as stack:
            try:
                stub = stack.enter_context(dns_stub_thread({}, address=(host, 53)))
            except PermissionError:
                missing("the DNS stub binds port 53 and servers run under unshare: needs root")
                raise
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            directory.mkdir(parents=True, exist_ok=True)
            resolv_conf = directory / "resolv.conf"
            resolv_conf.write_text(f"nameserver {host}\noptions timeout:2 attempts:2\n")
            yield FederationDns(stub, resolv_conf)
            return
    raise AssertionError(f"no free loopback address for the DNS stub in {_TRIES} tries")
