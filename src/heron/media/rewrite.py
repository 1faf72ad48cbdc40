"""Offer/answer rewriting (RFC 3264), sans-IO: each side sees the transport it speaks.

From one side's SDP and heron's local leg toward the other side (address,
port, ICE credentials, DTLS fingerprint and role), build the SDP the other
side gets. Only the first audio stream is bridged: toward a desk phone the
other streams are left out, toward a browser too, and the answer back to the
offerer rejects them with port 0 (RFC 3264 §6), so the m= lines still line up
with the offer.

No transcoding: the audio codecs both sides share pass through with their
payload types; when the answerer numbers a codec differently, :class:`Codecs`
gives the one-byte table the packet path rewrites the payload type with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heron.media.sdp import Connection, Media, SdpError, SessionDescription
from heron.sip.media import Transport

__all__ = [
    "Codec",
    "Codecs",
    "LocalLeg",
    "RemoteLeg",
    "answer_toward",
    "offer_toward",
    "pt_table",
    "read_leg",
]

BRIDGED = frozenset({"pcmu", "pcma", "g722", "opus", "telephone-event"})
"""Codecs passed through: what desk phones and browsers share, and DTMF (RFC 4733)."""
_STATIC = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1)}
"""RFC 3551 §6 payload types a phone may offer without a=rtpmap."""
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_KEPT = frozenset({"ptime", "maxptime"})
"""Media attributes forwarded besides codecs and direction: packetization is not transport."""
_RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"})
_WEBRTC_PROTOS = frozenset({"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP"})
SETUP_ROLES = frozenset({"actpass", "active", "passive"})


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type of an m= line and the lines that describe it."""

    pt: int
    name: str
    clock: int
    channels: int
    fmtp: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """What makes two payload types the same codec (RFC 3264 §6.1)."""
        return self.name.lower(), self.clock, self.channels

    def lines(self, pt: int | None = None) -> list[tuple[str, str]]:
        number = self.pt if pt is None else pt
        channels = f"/{self.channels}" if self.channels != 1 else ""
        found = [("a", f"rtpmap:{number} {self.name}/{self.clock}{channels}")]
        if self.fmtp is not None:
            found.append(("a", f"fmtp:{number} {self.fmtp}"))
        return found


@dataclass(frozen=True, slots=True)
class Codecs:
    """The bridged codecs of one stream, in the sender's order of preference."""

    items: tuple[Codec, ...]

    @classmethod
    def of(cls, media: Media) -> Codecs:
        maps: dict[int, tuple[str, int, int]] = {}
        for value in media.attributes("rtpmap"):
            pt_text, _, encoding = value.partition(" ")
            name, _, rest = encoding.strip().partition("/")
            clock_text, _, channels_text = rest.partition("/")
            if pt_text.isdigit() and clock_text.isdigit() and channels_text in ("", "1", "2"):
                maps[int(pt_text)] = (name, int(clock_text), int(channels_text or 1))
        fmtps: dict[int, str] = {}
        for value in media.attributes("fmtp"):
            pt_text, _, parameters = value.partition(" ")
            if pt_text.isdigit():
                fmtps.setdefault(int(pt_text), parameters.strip())
        found: list[Codec] = []
        for text in media.formats:
            if not text.isdigit() or int(text) > 127:
                continue
            pt = int(text)
            known = maps.get(pt) or _STATIC.get(pt)
            if known is not None and known[0].lower() in BRIDGED:
                found.append(Codec(pt, *known, fmtps.get(pt)))
        return cls(tuple(found))

    @property
    def has_audio(self) -> bool:
        """A voice codec, not only telephone-event."""
        return any(c.name.lower() != "telephone-event" for c in self.items)

    def formats(self) -> tuple[str, ...]:
        return tuple(str(c.pt) for c in self.items)

    def lines(self) -> list[tuple[str, str]]:
        return [line for codec in self.items for line in codec.lines()]


def pt_table(source: Codecs, target: Codecs) -> bytes | None:
    """128 bytes mapping ``source``'s payload types to ``target``'s numbers for the same
    codecs, or None when every shared codec has the same number (the common case)."""
    numbers = {c.key: c.pt for c in target.items}
    table = bytearray(range(128))
    for codec in source.items:
        if codec.key in numbers:
            table[codec.pt] = numbers[codec.key]
    return None if table == bytearray(range(128)) else bytes(table)


@dataclass(frozen=True, slots=True)
class LocalLeg:
    """What heron puts in the SDP toward one side: where it receives and how."""

    connection: Connection
    port: int
    transport: Transport
    ice_ufrag: str = ""
    ice_pwd: str = ""
    fingerprint: str = ""
    """``sha-256 AB:CD:...`` of heron's certificate (RFC 8122 §5)."""


@dataclass(frozen=True, slots=True)
class RemoteLeg:
    """What one side's SDP says about its bridged audio stream."""

    index: int
    """Position of the stream among the SDP's m= lines."""
    transport: Transport
    proto: str
    host: str
    port: int
    rtcp_port: int
    rtcp_mux: bool
    codecs: Codecs
    direction: str
    mid: str | None = None
    ice_ufrag: str = ""
    ice_pwd: str = ""
    fingerprints: tuple[str, ...] = ()
    """``sha-256 AB:...`` values of the side's DTLS certificate."""
    setup: str = "actpass"
    rejected: tuple[Media, ...] = field(default=(), repr=False)
    """The SDP's other m= lines, which the answer back rejects."""


def _transport_of(proto: str) -> Transport:
    if proto in _RTP_PROTOS:
        return Transport.RTP
    if proto in _WEBRTC_PROTOS:
        return Transport.WEBRTC
    raise SdpError(f"audio over {proto!r} cannot be bridged")


def read_leg(description: SessionDescription) -> RemoteLeg:
    """The first audio stream with a port, and what its SDP says about it."""
    index = next(
        (i for i, m in enumerate(description.media) if m.kind == "audio" and m.port != 0),
        None,
    )
    if index is None:
        raise SdpError("no audio stream to bridge")
    media = description.media[index]
    transport = _transport_of(media.proto)
    connection = description.connection_of(media)
    if connection is None:
        raise SdpError("audio stream without a c= address")
    codecs = Codecs.of(media)
    if not codecs.has_audio:
        raise SdpError("no audio codec heron bridges (PCMU, PCMA, G722, opus)")
    rtcp_mux = media.attribute("rtcp-mux") is not None
    rtcp = media.attribute("rtcp")
    rtcp_port = media.port + 1
    if rtcp_mux:
        rtcp_port = media.port
    elif rtcp and rtcp.split()[0].isdigit() and 0 < int(rtcp.split()[0]) <= 65535:
        rtcp_port = int(rtcp.split()[0])
    directions = [v for t, v in (*description.lines, *media.lines) if t == "a" and v in DIRECTIONS]

    def either(name: str) -> str:
        """A media attribute, else the session's (RFC 8839 §5.4 lets ICE ones be either)."""
        return media.attribute(name) or next(iter(description.attributes(name)), "")

    setup = either("setup")
    return RemoteLeg(
        index=index,
        transport=transport,
        proto=media.proto,
        host=connection.host,
        port=media.port,
        rtcp_port=rtcp_port,
        rtcp_mux=rtcp_mux,
        codecs=codecs,
        direction=directions[-1] if directions else "sendrecv",
        mid=media.attribute("mid"),
        ice_ufrag=media.attribute("ice-ufrag")
        or next(iter(description.attributes("ice-ufrag")), ""),
        ice_pwd=media.attribute("ice-pwd") or next(iter(description.attributes("ice-pwd")), ""),
        fingerprints=tuple(
            media.attributes("fingerprint") or description.attributes("fingerprint")
        ),
        setup=setup if setup in SETUP_ROLES else "actpass",
        rejected=tuple(m for i, m in enumerate(description.media) if i != index),
    )


def _origin(source: SessionDescription, local: LocalLeg) -> str:
    """The source's o= line with heron's address: its version still tells a re-offer."""
    origin = next((v for t, v in source.lines if t == "o"), "- 0 0 IN IP4 0.0.0.0").split()
    if len(origin) != 6:
        origin = ["-", "0", "0", "IN", "IP4", "0.0.0.0"]
    return " ".join([*origin[:3], str(local.connection)])


def _audio(
    remote: RemoteLeg,
    local: LocalLeg,
    codecs: Codecs,
    setup: str,
    mid: str,
    kept: list[tuple[str, str]],
    proto: str | None = None,
) -> Media:
    lines: list[tuple[str, str]] = []
    if local.transport is Transport.WEBRTC:
        host = local.connection.host
        lines += [
            ("a", f"rtcp:{local.port} {local.connection}"),
            ("a", f"candidate:1 1 udp 2130706431 {host} {local.port} typ host"),
            ("a", f"ice-ufrag:{local.ice_ufrag}"),
            ("a", f"ice-pwd:{local.ice_pwd}"),
            ("a", f"fingerprint:{local.fingerprint}"),
            ("a", f"setup:{setup}"),
            ("a", f"mid:{mid}"),
            ("a", remote.direction),
            ("a", "rtcp-mux"),
        ]
    else:
        lines += [("a", f"rtcp:{local.port + 1}"), ("a", remote.direction)]
    lines += codecs.lines() + kept
    proto = proto or local.transport.value
    return Media("audio", local.port, proto, codecs.formats(), tuple(lines))


def _session(source: SessionDescription, local: LocalLeg, mids: list[str]) -> list[tuple[str, str]]:
    lines = [
        ("v", "0"),
        ("o", _origin(source, local)),
        ("s", next((v for t, v in source.lines if t == "s"), "-") or "-"),
        ("c", str(local.connection)),
        ("t", "0 0"),
    ]
    if local.transport is Transport.WEBRTC:
        lines += [("a", "ice-lite"), ("a", f"group:BUNDLE {' '.join(mids)}")]
    return lines


def _kept(source: SessionDescription, remote: RemoteLeg) -> list[tuple[str, str]]:
    media = source.media[remote.index]
    return [(t, v) for t, v in media.lines if t == "a" and v.partition(":")[0] in _KEPT]


def offer_toward(source: SessionDescription, remote: RemoteLeg, local: LocalLeg) -> bytes:
    """The offer the other side gets: the offerer's audio stream alone, on ``local``."""
    mid = "0"
    media = _audio(remote, local, remote.codecs, "actpass", mid, _kept(source, remote))
    return SessionDescription(tuple(_session(source, local, [mid])), (media,)).encode()


def answer_toward(
    source: SessionDescription,
    answer: RemoteLeg,
    offer: RemoteLeg,
    local: LocalLeg,
    setup: str = "passive",
) -> bytes:
    """The answer the offerer gets: the answerer's codecs under the offerer's payload type
    numbers, on ``local``, and the offer's other m= lines rejected with port 0."""
    numbers = {c.key: c.pt for c in offer.codecs.items}
    codecs = Codecs(
        tuple(
            Codec(numbers[c.key], c.name, c.clock, c.channels, c.fmtp)
            for c in answer.codecs.items
            if c.key in numbers
        )
    )
    if not codecs.has_audio:
        raise SdpError("the answer shares no audio codec with the offer")
    mid = offer.mid or "0"
    # RFC 3264 §6: the answer's transport protocol is the offer's (RTP/AVPF stays AVPF).
    proto = offer.proto if offer.transport is local.transport else None
    audio = _audio(answer, local, codecs, setup, mid, _kept(source, answer), proto)
    media: list[Media] = list(offer.rejected)
    media = [
        Media(m.kind, 0, m.proto, m.formats, tuple(("a", f"mid:{v}") for v in m.attributes("mid")))
        for m in media
    ]
    media.insert(offer.index, audio)
    return SessionDescription(tuple(_session(source, local, [mid])), tuple(media)).encode()
