"""sip-tester's ``g711a.pcap`` made as long as a bench call, as one continuous RTP stream.

sipp's ``play_pcap_audio`` sends the capture's packets as they are: replaying the 7 s file
in a loop repeats its sequence numbers and timestamps, which no phone does and which a
bridge that encrypts toward the browser must refuse (SRTP never protects one packet index
twice, RFC 3711 §3.3.1). So the bench writes a capture of its own: the file's packets over
and over, each round's RTP sequence numbers, timestamps and capture times carried on from
the last, the UDP checksum left out (0: none, allowed over IPv4).
"""

from __future__ import annotations

import struct
from pathlib import Path

SOURCE = Path("/usr/share/sip-tester/g711a.pcap")
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_MAGIC = 0xA1B2C3D4
_ETHERNET = 1


def _records(data: bytes) -> list[tuple[float, bytes]]:
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = _GLOBAL.unpack_from(data)
    if magic != _MAGIC or linktype != _ETHERNET:
        raise ValueError(f"{SOURCE}: not a little-endian Ethernet pcap")
    offset, records = _GLOBAL.size, []
    while offset + _RECORD.size <= len(data):
        seconds, micros, length, _original = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        records.append((seconds + micros / 1e6, data[offset : offset + length]))
        offset += length
    return records


def _udp_rtp(frame: bytes) -> tuple[int, int]:
    """Offsets of the UDP header and the RTP header in an Ethernet + IPv4 + UDP frame."""
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    return udp, udp + 8


def extend(target: Path, seconds: float, source: Path = SOURCE) -> float:
    """Write at least ``seconds`` of ``source``'s stream to ``target``; its length in ms."""
    data = source.read_bytes()
    records = _records(data)
    first, last = records[0][0], records[-1][0]
    frame_gap = (last - first) / max(1, len(records) - 1)
    span = last - first + frame_gap  # one round, the gap to the next round's first packet
    _, rtp = _udp_rtp(records[0][1])
    first_ts = struct.unpack_from("!I", records[0][1], rtp + 4)[0]
    last_ts = struct.unpack_from("!I", records[-1][1], rtp + 4)[0]
    ts_step = (last_ts - first_ts) // max(1, len(records) - 1)
    ts_span = last_ts - first_ts + ts_step
    rounds = max(1, int(seconds // span) + 1)
    out = bytearray(data[: _GLOBAL.size])
    for round_ in range(rounds):
        for when, frame in records:
            udp, rtp = _udp_rtp(frame)
            packet = bytearray(frame)
            struct.pack_into("!H", packet, udp + 6, 0)
            sequence, timestamp = struct.unpack_from("!HI", packet, rtp + 2)
            sequence = (sequence + round_ * len(records)) & 0xFFFF
            timestamp = (timestamp + round_ * ts_span) & 0xFFFFFFFF
            struct.pack_into("!HI", packet, rtp + 2, sequence, timestamp)
            moment = when + round_ * span
            whole = int(moment)
            out += _RECORD.pack(whole, int((moment - whole) * 1e6), len(packet), len(packet))
            out += packet
    target.write_bytes(bytes(out))
    return rounds * span * 1000
