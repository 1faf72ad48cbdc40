"""A tiny DNS server for tests: NAPTR, SRV, A and AAAA answers from a dict, over UDP.

It listens on 127.0.0.1 on a port the kernel picks (or on the address a test gives, such as
port 53 of another loopback address for a resolv.conf), so a test points heron's
``dns.servers`` (or a resolver) at it and nothing leaves the machine. A name it holds no
record of is NXDOMAIN; a name with records of other types only is an empty NOERROR; a
``silent`` name is never answered, which is how a test makes a lookup time out. Every
question is recorded, so a test can assert that a lookup happened, or never did.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import cast

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

TTL = 60
Zone = Mapping[tuple[str, str], list[str]]
"""(name, type) -> record texts in zone-file syntax, such as
``("_sip._udp.other.test", "SRV"): ["10 60 5070 uas.other.test."]``."""


def _key(name: str, rdtype: str) -> tuple[str, str]:
    return name.lower().rstrip("."), rdtype.upper()


class DnsStub(asyncio.DatagramProtocol):
    """The server's protocol, holding the zone and the questions asked."""

    def __init__(self, zone: Zone, silent: frozenset[str] = frozenset()) -> None:
        self.records = {_key(name, rdtype): list(texts) for (name, rdtype), texts in zone.items()}
        self.silent = {name.lower().rstrip(".") for name in silent}
        self.questions: list[tuple[str, str]] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """``host:port``, as ``dns.servers`` takes it."""
        return f"{self.host}:{self.port}"

    def add(self, name: str, rdtype: str, *texts: str) -> None:
        self.records[_key(name, rdtype)] = list(texts)

    def publish(self, printed: str) -> None:
        """Serve the records ``heron dns`` printed, but for the names and types the stub
        holds already (the test's own, which stay as they are)."""
        zone: dict[tuple[str, str], list[str]] = {}
        for line in printed.splitlines():
            if line.strip() and not line.startswith(";"):
                owner, _, rdtype, data = line.split(maxsplit=3)
                zone.setdefault(_key(owner, rdtype), []).append(data)
        for key, texts in zone.items():
            self.records.setdefault(key, texts)

    def remove(self, name: str, rdtype: str) -> None:
        """Forget ``name``'s records of ``rdtype``, if any."""
        self.records.pop(_key(name, rdtype), None)

    def asked(self, name: str) -> list[str]:
        """The record types asked for ``name``, in order."""
        wanted = name.lower().rstrip(".")
        return [rdtype for asked, rdtype in self.questions if asked == wanted]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        if len(query.question) != 1 or self._transport is None:
            return
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.questions.append((name, rdtype))
        if name in self.silent:
            return
        response = dns.message.make_response(query)
        texts = self.records.get((name, rdtype))
        if texts:
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", rdtype, *texts))
        elif not any(held == name for held, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        self._transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def dns_stub(zone: Zone, silent: frozenset[str] = frozenset()) -> AsyncIterator[DnsStub]:
    """The stub on the running loop, for asyncio tests."""
    loop = asyncio.get_running_loop()
    transport, stub = await loop.create_datagram_endpoint(
        lambda: DnsStub(zone, silent), local_addr=("127.0.0.1", 0)
    )
    try:
        yield stub
    finally:
        transport.close()


@contextmanager
def dns_stub_thread(
    zone: Zone, silent: frozenset[str] = frozenset(), address: tuple[str, int] = ("127.0.0.1", 0)
) -> Iterator[DnsStub]:
    """The stub on a loop of its own in a thread, for tests that block (on sipp, on heron);
    binding ``address`` raises OSError (EADDRINUSE) for the caller to try another."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dns-stub", daemon=True)
    thread.start()
    try:
        transport, stub = asyncio.run_coroutine_threadsafe(
            loop.create_datagram_endpoint(lambda: DnsStub(zone, silent), local_addr=address),
            loop,
        ).result(timeout=10)
        try:
            yield stub
        finally:
            loop.call_soon_threadsafe(transport.close)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
