"""The federation load's world: two domains, each served by its own server of one kind, that
find each other through a name server of the bench and trust each other's certificate.

- **Certificates**: :class:`Authority`, a CA made for the run (ECDSA P-256, as ``heron
  cert``), issues each server a certificate for its domain and MUC domain (DNS-IDs, RFC
  6125), for server and client authentication: each server then authenticates the other
  with SASL EXTERNAL (XEP-0178), heron and Prosody alike, and neither uses dialback.
- **DNS**: :class:`NameServer` answers ``_xmpp-server._tcp.DOMAIN SRV`` and ``DOMAIN A
  127.0.0.1`` (RFC 6120 §3.2.1) on port 53 of a random 127.a.b.c, from a thread. heron
  asks it through ``[dns] servers``; Prosody reads only /etc/resolv.conf (port 53, no port
  field), so it runs in a mount namespace with the bench's resolv.conf over that file.
  Port 53 and the namespace need root.
- :class:`Federation` is the two servers as the load sees them: it starts both and yields
  a :class:`Served` with both processes (their CPU is summed) and each domain's client port.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.proc import ServerUnavailable, free_port
from bench.xmpp import Account, S2s, Served, Server

__all__ = ["DOMAINS", "Authority", "Federation", "NameServer", "accounts"]

DOMAINS = ("one.example", "two.example")
"""The two domains. ``.example``: Prosody's libunbound answers ``.test`` itself (RFC 6761)."""
LOOPBACK = "127.0.0.1"
TTL = 60
MAX_QUERY = 512
"""A DNS question over UDP without EDNS fits in 512 bytes (RFC 1035 §4.2.1)."""


def accounts(pairs: int) -> list[Account]:
    """``userN@one.example`` and ``userN@two.example`` for each pair, side by side, so that
    dealing the list out in whole pairs keeps partners together."""
    return [
        Account(f"user{i}", f"bench-pass-{i}", domain)
        for i in range(1, pairs + 1)
        for domain in DOMAINS
    ]


class Authority:
    """A CA for one run; its certificate is ``cafile``, readable by every server's user."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heron bench CA")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cafile = directory / "ca.crt"
        self.cafile.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, names: Sequence[str], certificate: Path, key: Path) -> None:
        """A certificate for ``names`` (the first is the CN), written with its key as PEM."""
        leaf = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        issued = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(leaf.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        certificate.parent.mkdir(parents=True, exist_ok=True)
        certificate.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
        key.touch(mode=0o600)
        key.write_bytes(
            leaf.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


class NameServer:
    """SRV and A records over UDP, from a thread; a name it holds nothing for is NXDOMAIN,
    a name with records of other types only an empty answer."""

    def __init__(self, directory: Path) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.sock = self._bind()
        self.host: str = self.sock.getsockname()[0]
        self.resolv_conf = directory / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {self.host}\noptions timeout:2 attempts:2\n")
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-dns", daemon=True)
        self._thread.start()

    @staticmethod
    def _bind() -> socket.socket:
        """Port 53 of a free random 127.a.b.c: a resolv.conf names no port."""
        rng = random.SystemRandom()
        for _ in range(50):
            host = f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, 53))
            except PermissionError:
                sock.close()
                raise ServerUnavailable("the federation load needs root (DNS on port 53)") from None
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            sock.settimeout(0.2)
            return sock
        raise ServerUnavailable("no free loopback address for the name server")

    def publish(self, domain: str, s2s_port: int) -> None:
        """``domain``'s s2s port, replacing what an earlier pair of servers published."""
        self.records[(f"_xmpp-server._tcp.{domain}", "SRV")] = [f"0 0 {s2s_port} {domain}."]
        self.records[(domain, "A")] = [LOOPBACK]

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(MAX_QUERY)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(data)
            if answer is not None:
                self.sock.sendto(answer, peer)

    def _answer(self, data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        response = dns.message.make_response(query)
        texts = self.records.get((name, rdtype))
        if texts:
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", rdtype, *texts))
        elif not any(held == name for held, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire: bytes = response.to_wire()
        return wire

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class Federation:
    """Two servers of one kind, one per domain of :data:`DOMAINS`, each with an ``S2s``."""

    name: str
    servers: Sequence[Server]
    ports: Sequence[int]
    """Each server's s2s port, published when they start."""
    nameserver: NameServer

    @classmethod
    def build(
        cls,
        name: str,
        workdir: Path,
        taken: set[int],
        authority: Authority,
        nameserver: NameServer,
        make: Callable[[Path, str, S2s], Server],
    ) -> Federation:
        """A server per domain from ``make(directory, domain, s2s)``, each in a directory of
        its own under ``workdir`` with its certificate in ``certs/``."""
        servers, ports = [], []
        for domain in DOMAINS:
            directory = workdir / domain
            certificate, key = (
                directory / "certs" / f"{domain}.crt",
                directory / "certs" / f"{domain}.key",
            )
            authority.issue([domain, f"conference.{domain}"], certificate, key)
            port = free_port(taken)
            s2s = S2s(
                port, certificate, key, authority.cafile, nameserver.host, nameserver.resolv_conf
            )
            servers.append(make(directory, domain, s2s))
            ports.append(port)
        return cls(name, servers, ports, nameserver)

    def prepare(self, users: list[Account]) -> None:
        for server in self.servers:
            server.prepare([account for account in users if account.domain == server.domain])

    def version(self) -> str:
        return self.servers[0].version()

    @contextmanager
    def running(self) -> Iterator[Served]:
        for server, port in zip(self.servers, self.ports, strict=True):
            self.nameserver.publish(server.domain, port)
            self.nameserver.publish(f"conference.{server.domain}", port)
        with ExitStack() as stack:
            started = tuple(stack.enter_context(server.running()) for server in self.servers)
            yield Served(
                started,
                {s.domain: r.address for s, r in zip(self.servers, started, strict=True)},
            )
