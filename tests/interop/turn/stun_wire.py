"""A deliberately small TURN client written from RFC 8489/8656, independent of heron's codec.

It exists for the requests the third-party clients cannot make (REQUESTED-ADDRESS-FAMILY,
peers spelled as IPv4-mapped IPv6), so it encodes only what those need: long-term
credentials with MD5 keys and HMAC-SHA1 MESSAGE-INTEGRITY, XOR addresses, ERROR-CODE.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442

# Message types (method | class bits), RFC 8489 §5 and RFC 8656 §17.
BINDING_REQUEST = 0x0001
ALLOCATE_REQUEST = 0x0003
REFRESH_REQUEST = 0x0004
SEND_INDICATION = 0x0016
CREATE_PERMISSION_REQUEST = 0x0008
CHANNEL_BIND_REQUEST = 0x0009
SUCCESS = 0x0100
ERROR = 0x0110

# Attributes, RFC 8489 §18.3 and RFC 8656 §18.
CHANNEL_NUMBER = 0x000C
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020

IPV4, IPV6 = 0x01, 0x02
UDP = 17

Address = tuple[str, int]
Attr = Callable[[bytes], bytes]
"""An attribute, built once the transaction id (which XOR addresses depend on) is known."""


def attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)


def plain(kind: int, value: bytes) -> Attr:
    return lambda _transaction_id: attribute(kind, value)


def xor_address(kind: int, host: str, port: int) -> Attr:
    address = ipaddress.ip_address(host)
    family = IPV4 if address.version == 4 else IPV6

    def build(transaction_id: bytes) -> bytes:
        mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        packed = bytes(a ^ b for a, b in zip(address.packed, mask, strict=False))
        port_bits = port ^ (MAGIC_COOKIE >> 16)
        return attribute(kind, struct.pack("!BBH", 0, family, port_bits) + packed)

    return build


def parse_xor_address(value: bytes, transaction_id: bytes) -> Address:
    family, port = value[1], struct.unpack("!H", value[2:4])[0] ^ (MAGIC_COOKIE >> 16)
    mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
    raw = bytes(a ^ b for a, b in zip(value[4:], mask, strict=False))
    host = ipaddress.IPv4Address(raw) if family == IPV4 else ipaddress.IPv6Address(raw)
    return str(host), port


@dataclass
class Response:
    kind: int
    transaction_id: bytes
    attributes: dict[int, bytes] = field(default_factory=dict)

    @property
    def error(self) -> int | None:
        value = self.attributes.get(ERROR_CODE)
        return None if value is None else (value[2] & 0x07) * 100 + value[3]

    @property
    def reason(self) -> str:
        value = self.attributes.get(ERROR_CODE, b"\0\0\0\0")
        return value[4:].decode("utf-8", "replace")

    def address(self, kind: int) -> Address:
        return parse_xor_address(self.attributes[kind], self.transaction_id)


def parse(data: bytes) -> Response:
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    assert cookie == MAGIC_COOKIE and len(data) == 20 + length, data.hex()
    response = Response(kind, data[8:20])
    offset = 20
    while offset < len(data):
        attr, size = struct.unpack("!HH", data[offset : offset + 4])
        response.attributes.setdefault(attr, data[offset + 4 : offset + 4 + size])
        offset += 4 + size + (-size % 4)
    return response


class RawTurnClient:
    """Blocking UDP TURN client: each request waits for its answer, retransmitting a few times."""

    def __init__(
        self, server: Address, username: str, password: str, local: str = "127.0.0.1"
    ) -> None:
        self.server = server
        self.username = username
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local, 0))
        self.sock.settimeout(0.5)
        self.realm: bytes | None = None
        self.nonce: bytes | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawTurnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def encode(self, kind: int, transaction_id: bytes, body: bytes) -> bytes:
        if self.nonce is None or self.realm is None:
            return struct.pack("!HHI", kind, len(body), MAGIC_COOKIE) + transaction_id + body
        body += attribute(USERNAME, self.username.encode())
        body += attribute(REALM, self.realm) + attribute(NONCE, self.nonce)
        # RFC 8489 §14.5: the length covers MESSAGE-INTEGRITY when the HMAC is computed.
        header = struct.pack("!HHI", kind, len(body) + 24, MAGIC_COOKIE) + transaction_id
        key = hashlib.md5(b":".join((self.username.encode(), self.realm, self.password.encode())))
        mac = hmac.new(key.digest(), header + body, "sha1").digest()
        return header + body + attribute(MESSAGE_INTEGRITY, mac)

    def request(self, kind: int, *attributes: Attr) -> Response:
        """One transaction; a 401 or 438 carrying a nonce is retried once with credentials."""
        had_credentials = self.nonce is not None
        response = self._transaction(kind, attributes)
        if response.error in (401, 438) and NONCE in response.attributes:
            if response.error == 401 and had_credentials:
                return response  # the credentials themselves were refused
            self.realm = response.attributes.get(REALM, self.realm)
            self.nonce = response.attributes[NONCE]
            response = self._transaction(kind, attributes)
        return response

    def indicate(self, kind: int, *attributes: Attr) -> None:
        transaction_id = os.urandom(12)
        body = b"".join(build(transaction_id) for build in attributes)
        header = struct.pack("!HHI", kind, len(body), MAGIC_COOKIE) + transaction_id
        self.sock.sendto(header + body, self.server)

    def _transaction(self, kind: int, attributes: tuple[Attr, ...]) -> Response:
        transaction_id = os.urandom(12)
        body = b"".join(build(transaction_id) for build in attributes)
        message = self.encode(kind, transaction_id, body)
        for _ in range(6):
            self.sock.sendto(message, self.server)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    response = parse(data)
                    if response.transaction_id == transaction_id:
                        return response
            except TimeoutError:
                continue
        raise AssertionError(f"no answer from {self.server} to message type {kind:#06x}")


def allocate_with_channel(client: RawTurnClient, peer: Address, channel: int) -> int:
    """Allocate a UDP relay and bind ``channel`` to ``peer``; the relay port."""
    allocated = client.request(ALLOCATE_REQUEST, plain(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0])))
    assert allocated.kind == ALLOCATE_REQUEST | SUCCESS, allocated
    bound = client.request(
        CHANNEL_BIND_REQUEST,
        plain(CHANNEL_NUMBER, struct.pack("!HH", channel, 0)),
        xor_address(XOR_PEER_ADDRESS, *peer),
    )
    assert bound.kind == CHANNEL_BIND_REQUEST | SUCCESS, bound
    return allocated.address(XOR_RELAYED_ADDRESS)[1]
