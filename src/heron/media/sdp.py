"""SDP (RFC 8866) as the bridge needs it: parsed into lines it can rewrite, with limits.

The bridge rewrites transport lines (c=, the m= port and protocol, ICE and DTLS
attributes) and keeps everything else it forwards line by line, so a
description is its session-level lines and one :class:`Media` per m= line,
each holding its own lines in order. Parsing is strict where a wrong guess
would send media astray (the m= and c= lines) and lenient elsewhere (unknown
line types and attributes are kept as they came).

Errors: :class:`SdpError` (status 488, Not Acceptable Here) for anything the
bridge cannot read; it is never a bare ``ValueError``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

__all__ = [
    "MAX_LINES",
    "MAX_MEDIA",
    "MAX_SIZE",
    "Connection",
    "Media",
    "SdpError",
    "SessionDescription",
    "parse",
]

MAX_SIZE = 32_768
"""Bytes of one SDP body: Chromium's audio+video offer with many candidates is ~8 KB."""
MAX_LINES = 512
"""Lines of one SDP body."""
MAX_MEDIA = 16
"""m= lines of one SDP body."""
MAX_LINE = 4096
"""Bytes of one line."""

_TYPES = frozenset("vosiuepcbtrzkam")
"""The line types RFC 8866 §5 defines (``k=`` obsolete, kept as it came)."""


class SdpError(Exception):
    """The SDP cannot be read or used; ``status`` is the SIP answer (RFC 3261 §21.4.26)."""

    status = 488


@dataclass(frozen=True, slots=True)
class Connection:
    """A c= line's address (RFC 8866 §5.7); ``host`` is an IP literal."""

    host: str
    version: int

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
            raise SdpError(f"c= line {value!r} is not 'IN IP4|IP6 address'")
        host = parts[2].split("/")[0]  # multicast TTL or count: never ours to relay
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise SdpError(f"c= address {host!r} is not an IP address") from None
        if address.version != (4 if parts[1] == "IP4" else 6):
            raise SdpError(f"c= address {host!r} is not {parts[1]}")
        return cls(str(address), address.version)

    def __str__(self) -> str:
        return f"IN IP{self.version} {self.host}"


@dataclass(frozen=True, slots=True)
class Media:
    """One media description: its m= line's fields and the lines after it, in order."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    lines: tuple[tuple[str, str], ...] = ()

    def attributes(self, name: str) -> list[str]:
        """Values of every ``a=name:value`` (or ``""`` for a flag ``a=name``)."""
        return _attributes(self.lines, name)

    def attribute(self, name: str) -> str | None:
        """The first ``a=name`` value, or None."""
        found = self.attributes(name)
        return found[0] if found else None

    @property
    def connection(self) -> Connection | None:
        value = next((v for t, v in self.lines if t == "c"), None)
        return Connection.parse(value) if value is not None else None

    def encode(self) -> str:
        head = f"m={self.kind} {self.port} {self.proto} {' '.join(self.formats)}\r\n"
        return head + "".join(f"{t}={v}\r\n" for t, v in self.lines)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body: session-level lines (v= first) and the media descriptions."""

    lines: tuple[tuple[str, str], ...]
    media: tuple[Media, ...]

    def attributes(self, name: str) -> list[str]:
        return _attributes(self.lines, name)

    @property
    def connection(self) -> Connection | None:
        value = next((v for t, v in self.lines if t == "c"), None)
        return Connection.parse(value) if value is not None else None

    def connection_of(self, media: Media) -> Connection | None:
        """The address ``media`` is sent to: its own c= line, else the session's."""
        return media.connection or self.connection

    def encode(self) -> bytes:
        text = "".join(f"{t}={v}\r\n" for t, v in self.lines)
        return (text + "".join(m.encode() for m in self.media)).encode()


def _name(value: str) -> str:
    return value.partition(":")[0]


def _attributes(lines: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return [v.partition(":")[2] for t, v in lines if t == "a" and _name(v) == name]


def _media_line(value: str) -> Media:
    """RFC 8866 §5.14: ``<media> <port>[/<count>] <proto> <fmt> ...``."""
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"m= line {value!r} is too short")
    kind, port_text, proto, *formats = parts
    port_text = port_text.partition("/")[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"m= port {parts[1]!r} is not a port")
    return Media(kind, int(port_text), proto, tuple(formats))


def parse(data: bytes) -> SessionDescription:
    """Parse an SDP body; raise :class:`SdpError` beyond the limits or when malformed."""
    if len(data) > MAX_SIZE:
        raise SdpError(f"SDP of {len(data)} bytes exceeds {MAX_SIZE}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    raw_lines = text.replace("\r\n", "\n").split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    if len(raw_lines) > MAX_LINES:
        raise SdpError(f"SDP of {len(raw_lines)} lines exceeds {MAX_LINES}")
    session: list[tuple[str, str]] = []
    media: list[Media] = []
    current: list[tuple[str, str]] = []
    for number, line in enumerate(raw_lines, 1):
        if len(line) > MAX_LINE:
            raise SdpError(f"SDP line {number} exceeds {MAX_LINE} bytes")
        if len(line) < 2 or line[1] != "=" or line[0] not in _TYPES:
            raise SdpError(f"SDP line {number} is not 'x=value'")
        if any(c in line for c in "\r\0"):
            raise SdpError(f"SDP line {number} holds CR or NUL")
        kind, value = line[0], line[2:]
        if number == 1 and (kind, value) != ("v", "0"):
            raise SdpError("SDP does not start with v=0")
        if kind == "m":
            if media:
                media[-1] = replace(media[-1], lines=tuple(current))
            if len(media) >= MAX_MEDIA:
                raise SdpError(f"SDP has more than {MAX_MEDIA} m= lines")
            media.append(_media_line(value))
            current = []
        elif media:
            current.append((kind, value))
        else:
            session.append((kind, value))
    if not session:
        raise SdpError("empty SDP")
    if media:
        media[-1] = replace(media[-1], lines=tuple(current))
    for kind, value in [*session, *(line for m in media for line in m.lines)]:
        if kind == "c":  # read every stream's address now, so that a bad one fails here
            Connection.parse(value)
    return SessionDescription(tuple(session), tuple(media))
