"""CPU per packet of the media bridge's Python packet path, without sockets and with.

Run from the repository root::

    .venv/bin/python -m bench.media_path              # 200,000 packets per direction
    .venv/bin/python -m bench.media_path --packets 20000

One call is set up in memory as the bridge sets it up (a desk phone's plain leg,
a browser's leg after ICE and a real DTLS handshake with a client of our own),
then 172-byte G.711 packets (20 ms) go through :meth:`heron.media.call.Call.receive`
in each direction: plain ⇄ plain (latching only), plain → browser (SRTP protect),
browser → plain (SRTP unprotect). The figure is process CPU time per packet, which
is what the socket path adds to. Then the same plain ⇄ plain call over loopback
sockets: a child process plays both phones (16 packets in flight, each sent when one
comes back through the bridge), and the figure is this process's CPU time per relayed
packet, ``recvfrom``, ``sendto`` and the event loop included. ``bench/media`` compares
the whole bridge with rtpengine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import uvloop

from heron.config import MediaSettings
from heron.media.bridge import Bridge
from heron.media.call import Call, PlainEndpoint, Stats
from heron.media.dtls import Certificate, DtlsSrtp
from heron.media.ice import IceLite
from heron.media.rewrite import read_leg
from heron.media.sdp import parse
from heron.media.webrtc import WebRtcEndpoint
from heron.sip.media import MediaLeg, Side, Transport
from heron.stun import IceControlling, Message, MessageClass, Method, UseCandidate, Username

PHONE = ("192.0.2.10", 4000)
BROWSER = ("198.51.100.9", 50000)
PHONE_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


def browser_sdp(fingerprint: str) -> bytes:
    return (
        b"v=0\r\no=- 1 1 IN IP4 198.51.100.9\r\ns=-\r\nt=0 0\r\n"
        b"m=audio 50000 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 198.51.100.9\r\n"
        b"a=ice-ufrag:brws\r\na=ice-pwd:" + b"b" * 24 + b"\r\n"
        b"a=fingerprint:" + fingerprint.encode() + b"\r\na=setup:active\r\na=rtcp-mux\r\n"
    )


def rtp(sequence: int, ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, sequence * 160, ssrc) + bytes(160)


def setup() -> tuple[Call, DtlsSrtp]:
    """A bridged call phone ⇄ browser whose browser side is keyed, and the browser's DTLS."""
    now = datetime.datetime.now(datetime.UTC)
    ours, theirs = Certificate.generate(now, 1), Certificate.generate(now, 2)
    call = Call(MediaLeg("bench", "b"), Stats(), 0.0)
    call.sides[Side.CALLER] = PlainEndpoint(read_leg(parse(PHONE_SDP)), lambda _address: True)
    remote = read_leg(parse(browser_sdp(theirs.fingerprint)))
    ice = IceLite("ours", "o" * 24, "brws")
    browser = WebRtcEndpoint(remote, ice, ours.context(), lambda _address: True)
    browser.set_role(server=True)
    call.sides[Side.CALLEE] = browser
    check = Message(
        Method.BINDING,
        MessageClass.REQUEST,
        bytes(12),
        (Username("ours:brws"), IceControlling(1), UseCandidate()),
    ).encode(b"o" * 24, fingerprint=True)
    call.receive(Side.CALLEE, 0, check, BROWSER, 0.0)
    client = DtlsSrtp(theirs.context(), False, (ours.fingerprint,))
    client.start()
    for _ in range(10):
        for datagram in client.datagrams():
            call.receive(Side.CALLEE, 0, datagram, BROWSER, 0.0)
        for _side, _component, datagram, _target in call.outbox:
            if 20 <= datagram[0] <= 63:
                client.receive(datagram)
        call.outbox.clear()
    assert client.keys is not None and browser.dtls is not None and browser.dtls.keys is not None
    return call, client


def per_packet(count: int, send: Callable[[int], object]) -> float:
    start = time.process_time()
    for sequence in range(count):
        send(sequence)
    return (time.process_time() - start) / count * 1e6


PHONES = """
import socket, struct, sys
count, bridge_a, bridge_b, port_a, port_b = map(int, sys.argv[1:])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", port_a))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", port_b))
b.settimeout(2.0)
def packet(n): return struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, 7) + bytes(160)
sent = received = 0
while sent < 16:
    a.sendto(packet(sent), ("127.0.0.1", bridge_a)); sent += 1
while received < count:
    try:
        b.recv(2048)
    except TimeoutError:
        break
    received += 1
    if sent < count:
        a.sendto(packet(sent), ("127.0.0.1", bridge_a)); sent += 1
print(received)
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def phone_sdp(port: int) -> bytes:
    return PHONE_SDP.replace(b"192.0.2.10", b"127.0.0.1").replace(b"4000", str(port).encode())


async def over_sockets(count: int, low: int) -> tuple[float, int]:
    """(CPU µs per relayed packet in this process, packets relayed) for one plain call."""
    settings = MediaSettings(address="127.0.0.1", port_min=low, port_max=low + 20)
    now = datetime.datetime.now(datetime.UTC)
    bridge = Bridge(
        settings,
        ipaddress.ip_address("127.0.0.1"),
        lambda _address: True,
        Certificate.generate(now, 1),
    )
    port_a, port_b = free_ports(2)
    leg = MediaLeg("sockets", "b")
    toward_b = bridge.offer(leg, Side.CALLER, phone_sdp(port_a), Transport.RTP)
    toward_a = bridge.answer(leg, Side.CALLEE, phone_sdp(port_b))
    ports = [int(sdp.split(b"m=audio ")[1].split()[0]) for sdp in (toward_a, toward_b)]
    start = time.process_time()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PHONES,
        *map(str, (count, *ports, port_a, port_b)),
        stdout=subprocess.PIPE,
    )
    await child.communicate()
    cpu = time.process_time() - start
    relayed = bridge.stats.packets[Side.CALLER]
    bridge.close()
    return cpu / max(relayed, 1) * 1e6, relayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--port-min", type=int, default=40000, help="the bridge's ports")
    arguments = parser.parse_args()
    count = arguments.packets
    call, client = setup()
    assert client.keys is not None
    from_browser = [client.keys.outbound.protect(rtp(s, 0xB0B)) for s in range(count)]

    def phone_to_browser(sequence: int) -> None:
        call.receive(Side.CALLER, 0, rtp(sequence, 0xA11CE), PHONE, 1.0)
        call.outbox.clear()

    def browser_to_phone(sequence: int) -> None:
        call.receive(Side.CALLEE, 0, from_browser[sequence], BROWSER, 1.0)
        call.outbox.clear()

    plain = Call(MediaLeg("plain", "b"), Stats(), 0.0)
    plain.sides[Side.CALLER] = PlainEndpoint(read_leg(parse(PHONE_SDP)), lambda _address: True)
    plain.sides[Side.CALLEE] = PlainEndpoint(read_leg(parse(PHONE_SDP)), lambda _address: True)

    def phone_to_phone(sequence: int) -> None:
        plain.receive(Side.CALLER, 0, rtp(sequence, 0xA11CE), PHONE, 1.0)
        plain.outbox.clear()

    baseline = per_packet(count, lambda s: rtp(s, 1))
    rows = [
        ("plain -> plain (latching)", per_packet(count, phone_to_phone) - baseline),
        ("plain -> browser (SRTP protect)", per_packet(count, phone_to_browser) - baseline),
        ("browser -> plain (SRTP unprotect)", per_packet(count, browser_to_phone)),
    ]
    print(f"{'direction':36} CPU µs/packet ({count} packets of 172 bytes)")  # noqa: T201
    for name, micros in rows:
        print(f"{name:36} {micros:6.2f}")  # noqa: T201
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # heron's loop
        micros, relayed = runner.run(over_sockets(count, arguments.port_min))
    print(f"{'plain -> plain over UDP sockets':36} {micros:6.2f}  ({relayed} relayed)")  # noqa: T201


if __name__ == "__main__":
    main()
