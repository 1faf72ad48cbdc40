"""Binding requests (RFC 8489 §7.3.1) and NAT behaviour discovery (RFC 5780), sans-IO.

With a second address configured, a Binding that reached one of the four
listeners of the RFC 5780 grid names them (RESPONSE-ORIGIN, OTHER-ADDRESS),
and may be answered from another (CHANGE-REQUEST) or to another port
(RESPONSE-PORT); the :class:`~heron.turn.replies.Reply` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from heron.stun import (
    Attribute,
    ChangeRequest,
    ErrorCode,
    MappedAddress,
    Message,
    OtherAddress,
    Padding,
    ResponseOrigin,
    ResponsePort,
    Software,
    UnknownAttributes,
    XorMappedAddress,
)
from heron.turn.allocation import Address, ClientKey
from heron.turn.replies import Refusal, Reply, encode_answer

__all__ = ["AlternateAddresses", "answer_binding"]


@dataclass(frozen=True, slots=True)
class AlternateAddresses:
    """Two IPs and two ports for NAT behaviour discovery (RFC 5780 §4.1, §7.2)."""

    ips: tuple[str, str]
    ports: tuple[int, int]

    def covers(self, local: Address) -> bool:
        return local[0] in self.ips and local[1] in self.ports

    def swap(self, local: Address, change_ip: bool, change_port: bool) -> Address:
        host, port = local
        if change_ip:
            host = self.ips[1] if host == self.ips[0] else self.ips[0]
        if change_port:
            port = self.ports[1] if port == self.ports[0] else self.ports[0]
        return host, port


def answer_binding(
    message: Message, key: ClientKey, alternate: AlternateAddresses | None, software: str
) -> Reply:
    """RFC 8489 §7.3.1, with RFC 5780 §6.1 when a second address is configured.

    Raises :class:`Refusal` for the attributes RFC 5780 makes unknown or wrong.
    """
    host, port = key[1]
    attributes: list[Attribute] = [XorMappedAddress(ip_address(host), port)]
    change = message.find(ChangeRequest)
    response_port = message.find(ResponsePort)
    local = key[2]
    if alternate is None or key[0] != "udp" or not alternate.covers(local):
        # RFC 5780 §6.1: without a second address these attributes are unknown.
        unknown = [a.TYPE for a in (change, response_port) if a is not None]
        if unknown:
            raise Refusal(ErrorCode.UNKNOWN_ATTRIBUTE, (UnknownAttributes(tuple(unknown)),))
        attributes.append(Software(software))
        return encode_answer(message.success_response(attributes), message, None)
    if response_port is not None and message.find(Padding) is not None:
        raise Refusal(ErrorCode.BAD_REQUEST)  # RFC 5780 §6.1
    # RFC 5780 §6.1: MAPPED-ADDRESS as well, for RFC 3489 discovery clients.
    attributes.append(MappedAddress(ip_address(host), port))
    source = local
    if change is not None:
        source = alternate.swap(local, change.change_ip, change.change_port)
    other = alternate.swap(local, True, True)
    attributes += [
        ResponseOrigin(ip_address(source[0]), source[1]),
        OtherAddress(ip_address(other[0]), other[1]),
        Software(software),
    ]
    reply = encode_answer(message.success_response(attributes), message, None)
    destination = (host, response_port.port) if response_port is not None else None
    return Reply(reply.data, source if source != local else None, destination)
