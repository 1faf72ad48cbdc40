"""Mutated SIP, STUN/TURN, XMPP (client and server-to-server) and HTTP thrown at every
listener of a running heron.

Issue 10, item 11: malformed input gets a protocol error or is dropped. After
each batch the listener must still answer a well-formed request, and heron's
log must hold no traceback, no "Task exception was never retrieved", no
aiohttp "Error handling request" and nothing at ERROR: a parser failure that
is logged with its stack on every packet is a crash that happens to be caught,
and a way to fill the disk. ``HERON_FUZZ_SCALE`` multiplies the number of
mutants (the default keeps ``make test`` short), ``HERON_FUZZ_SEED`` replays
another run.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.fuzz.mutate import CORPUS, Mutator, seeds
from tests.security.support import DOMAIN, HOST, Target, target
from tests.support.config import free_port
from tests.support.dns_stub import dns_stub_thread

SCALE = float(os.environ.get("HERON_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("HERON_FUZZ_SEED", "20261207"))
VECTORS = Path(__file__).parents[1] / "vectors"
_BAD_LOG = re.compile(r"Traceback|Task exception|Error handling request| ERROR | CRITICAL ")
_ANSWER_WAIT = 0.3
_DEADLINE = 10.0
_UDP_WINDOW = 32


class Fuzzed:
    """The target, its plain HTTP port, and the log position of the current batch."""

    def __init__(self, running: Target, http_port: int) -> None:
        self.target = running
        self.http_port = http_port
        self.since = len(running.heron.log)

    async def assert_log_clean(self, sent: list[bytes]) -> None:
        """Every line heron logged since the batch began, read up to a marker of ours."""
        await _log_marker(self.target)
        new = self.target.heron.log[self.since :]
        self.since = len(self.target.heron.log)
        bad = [index for index, line in enumerate(new) if _BAD_LOG.search(line)]
        if bad:
            shown = "".join(new[max(0, bad[0] - 2) : bad[0] + 60])
            examples = "\n".join(repr(data[:300]) for data in sent[-5:])
            pytest.fail(
                f"heron logged a failure (seed {SEED}):\n{shown}\nlast mutants:\n{examples}"
            )


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """One heron for every batch: the flood guard and connection cap off, so that the
    mutants reach the parsers instead of a ban; its DNS a stub that knows no name, so that
    the domains mutated dialback requests claim are never looked up outside."""
    http_port, mux_port = free_port(), free_port()
    with dns_stub_thread({}) as dns:
        overrides = {
            "sip": {"flood_rate": 0},
            "web": {"plain_listen": [f"{HOST}:{http_port}"]},
            "mux": {"listen": [f"{HOST}:{mux_port}"], "pending_per_source": 100_000},
            "limits": {"connections_per_source": 0},
            "dns": {"servers": [dns.address]},
        }
        with target(tmp_path_factory.mktemp("fuzz") / "heron", overrides) as running:
            running.ports["mux.listen"] = mux_port
            yield Fuzzed(running, http_port)


def count(base: int) -> int:
    return max(1, int(base * SCALE))


async def _log_marker(running: Target) -> None:
    """Wait until heron's log holds a line we caused, so every earlier line is in too.

    A stream opened and then broken with an element no client sends before
    authentication ends in a stream error that heron logs with the stream's id.
    """
    reader, writer = await asyncio.open_connection(HOST, running.ports["xmpp.listen"])
    writer.write(_stream_header().encode() + f"<fuzz-marker-{uuid.uuid4().hex}/>".encode())
    header = await asyncio.wait_for(reader.readuntil(b">"), _DEADLINE)
    while b"<stream:stream" not in header:
        header += await asyncio.wait_for(reader.readuntil(b">"), _DEADLINE)
    stream_id = re.search(rb"id=['\"]([^'\"]+)", header)
    assert stream_id, header
    writer.close()
    marker = f"stream {stream_id[1].decode()}:"
    deadline = time.monotonic() + _DEADLINE
    while not any(marker in line for line in running.heron.log[-200:]):
        assert time.monotonic() < deadline, f"heron never logged {marker!r}"
        await asyncio.sleep(0.02)


def _stream_header() -> str:
    return (
        f"<stream:stream to='{DOMAIN}' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.answers.put_nowait(data)


@asynccontextmanager
async def _udp(port: int) -> AsyncIterator[tuple[asyncio.DatagramTransport, _Datagrams]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Datagrams, remote_addr=(HOST, port))
    try:
        yield transport, protocol
    finally:
        transport.close()


async def _udp_batch(port: int, mutants: list[bytes], probe: Callable[[], bytes]) -> None:
    """Send the mutants in windows, each closed by a probe the listener must answer: the
    socket buffer never overflows, so every mutant reaches the parser."""
    async with _udp(port) as (transport, protocol):
        for start in range(0, len(mutants), _UDP_WINDOW):
            for data in mutants[start : start + _UDP_WINDOW]:
                transport.sendto(data[:65000])
            await _answer(transport, protocol, probe(), port)


async def _answer(
    transport: asyncio.DatagramTransport,
    protocol: _Datagrams,
    probe: bytes,
    port: int,
) -> None:
    """The probe, sent again every half second, until its answer (the same SIP Call-ID or
    STUN transaction ID) proves the listener alive."""
    token = _sip_call_id(probe) or probe[8:20]
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        transport.sendto(probe)
        try:
            while token not in await asyncio.wait_for(protocol.answers.get(), 0.5):
                pass
        except TimeoutError:
            continue
        return
    pytest.fail(f"no answer to a well-formed probe on UDP port {port} (seed {SEED})")


async def _stream_batch(
    port: int,
    mutants: list[bytes],
    probe: bytes,
    answered: Callable[[bytes], bool],
    *,
    tls: ssl.SSLContext | None = None,
    prefix: bytes = b"",
    parallel: int = 16,
) -> None:
    """Each mutant on a connection of its own (``parallel`` at once), then the probe."""
    gate = asyncio.Semaphore(parallel)

    async def one(data: bytes) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection(HOST, port, ssl=tls)
            except OSError as exc:
                pytest.fail(f"port {port} refused a connection: {exc} (seed {SEED})")
            try:
                writer.write(prefix + data)
                await writer.drain()
                await asyncio.wait_for(reader.read(65536), _ANSWER_WAIT)
            except (OSError, TimeoutError, ssl.SSLError):
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one(data) for data in mutants))
    reader, writer = await asyncio.open_connection(HOST, port, ssl=tls)
    try:
        writer.write(probe)
        seen = b""
        deadline = time.monotonic() + _DEADLINE
        while not answered(seen):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no answer to a well-formed probe on port {port}: {seen!r}"
            chunk = await asyncio.wait_for(reader.read(65536), remaining)
            assert chunk, f"port {port} closed on a well-formed probe: {seen!r}"
            seen += chunk
    finally:
        writer.close()


def _sip_corpus() -> list[bytes]:
    return seeds(CORPUS / "sip", VECTORS / "rfc4475")


def _sip_options(transport: str) -> bytes:
    branch = uuid.uuid4().hex
    return (
        f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {HOST}:9;branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{DOMAIN}>;tag={branch[:8]}\r\n"
        f"To: <sip:{DOMAIN}>\r\n"
        f"Call-ID: {branch}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _sip_call_id(message: bytes) -> bytes | None:
    found = re.search(rb"\r\nCall-ID: (\S+)", message)
    return found[1] if found else None


def _is_sip_answer(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 ") and b"\r\n\r\n" in data


def _stun_binding() -> bytes:
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)


def _is_stun_success(data: bytes) -> bool:
    return len(data) >= 20 and data[:2] == b"\x01\x01"


def _is_http_answer(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.1 ") and b"\r\n\r\n" in data


def _is_stream_features(data: bytes) -> bool:
    return b"</stream:features>" in data


def test_sip_udp_survives_mutated_requests_and_responses(fuzzed: Fuzzed) -> None:
    mutants = list(_take(Mutator(_sip_corpus(), SEED, text=True), count(5000)))
    port = fuzzed.target.ports["sip.listen"]
    asyncio.run(_udp_batch(port, mutants, lambda: _sip_options("UDP")))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_sip_tcp_survives_mutated_messages_without_dropping_well_formed_ones(
    fuzzed: Fuzzed,
) -> None:
    mutants = list(_take(Mutator(_sip_corpus(), SEED + 1, text=True), count(400)))
    port = fuzzed.target.ports["sip.listen"]
    asyncio.run(_stream_batch(port, mutants, _sip_options("TCP"), _is_sip_answer))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_stun_and_turn_over_udp_survive_mutated_messages(fuzzed: Fuzzed) -> None:
    corpus = seeds(CORPUS / "stun", VECTORS / "rfc5769")
    mutants = list(_take(Mutator(corpus, SEED + 2, text=False), count(20000)))
    port = fuzzed.target.ports["turn.listen"]
    asyncio.run(_udp_batch(port, mutants, _stun_binding))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_turn_over_tcp_survives_mutated_framing(fuzzed: Fuzzed) -> None:
    corpus = seeds(CORPUS / "stun", VECTORS / "rfc5769")
    mutants = list(_take(Mutator(corpus, SEED + 3, text=False), count(400)))
    port = fuzzed.target.ports["turn.listen"]
    asyncio.run(_stream_batch(port, mutants, _stun_binding(), _is_stun_success))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_xmpp_survives_mutated_streams(fuzzed: Fuzzed) -> None:
    mutants = list(_take(Mutator(seeds(CORPUS / "xmpp"), SEED + 4, text=True), count(400)))
    port = fuzzed.target.ports["xmpp.listen"]
    probe = _stream_header().encode()
    asyncio.run(_stream_batch(port, mutants, probe, _is_stream_features))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_xmpp_survives_mutated_stanzas_after_tls(fuzzed: Fuzzed) -> None:
    """Direct TLS (XEP-0368): the parser behind the handshake, where clients really talk."""
    mutants = list(_take(Mutator(seeds(CORPUS / "xmpp"), SEED + 5, text=True), count(200)))
    running = fuzzed.target
    port = running.ports["xmpp.tls_listen"]
    tls = running.tls_context()
    probe = _stream_header().encode()
    asyncio.run(_stream_batch(port, mutants, probe, _is_stream_features, tls=tls, parallel=4))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def _s2s_header() -> bytes:
    return (
        f"<stream:stream to='{DOMAIN}' from='fuzz.example' xmlns='jabber:server' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    ).encode()


def test_s2s_survives_mutated_streams(fuzzed: Fuzzed) -> None:
    """The STARTTLS s2s port (xmpp.s2s_listen), where anyone may connect as a server."""
    mutants = list(_take(Mutator(seeds(CORPUS / "s2s"), SEED + 7, text=True), count(400)))
    port = fuzzed.target.ports["xmpp.s2s_listen"]
    asyncio.run(_stream_batch(port, mutants, _s2s_header(), _is_stream_features))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_s2s_survives_mutated_negotiation_after_tls(fuzzed: Fuzzed) -> None:
    """Direct TLS s2s (xmpp.s2s_tls_listen): SASL EXTERNAL, dialback and stanzas reach the
    stream past TLS."""
    mutants = list(_take(Mutator(seeds(CORPUS / "s2s"), SEED + 8, text=True), count(200)))
    running = fuzzed.target
    port = running.ports["xmpp.s2s_tls_listen"]
    tls = running.tls_context()
    probe = _s2s_header()
    asyncio.run(_stream_batch(port, mutants, probe, _is_stream_features, tls=tls, parallel=4))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_http_survives_mutated_requests(fuzzed: Fuzzed) -> None:
    mutants = list(_take(Mutator(seeds(CORPUS / "http"), SEED + 6, text=True), count(400)))
    probe = f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode()
    asyncio.run(_stream_batch(fuzzed.http_port, mutants, probe, _is_http_answer))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def test_the_shared_port_survives_mutated_first_bytes_of_every_protocol(fuzzed: Fuzzed) -> None:
    """The mux classifies what any protocol's mutants begin with (a real browser's
    ClientHello among them) and hands over or closes; TURN over TCP is still served."""
    corpus = seeds(*(CORPUS / kind for kind in ("stun", "sip", "xmpp", "http")), VECTORS / "mux")
    mutants = list(_take(Mutator(corpus, SEED + 9, text=False), count(800)))
    port = fuzzed.target.ports["mux.listen"]
    asyncio.run(_stream_batch(port, mutants, _stun_binding(), _is_stun_success, parallel=32))
    asyncio.run(fuzzed.assert_log_clean(mutants))


def _take(mutator: Mutator, number: int) -> Iterator[bytes]:
    for _, data in zip(range(number), mutator, strict=False):
        yield data
