"""External Service Discovery (XEP-0215, ``urn:xmpp:extdisco:2``) for heron's own TURN server.

What Prosody's mod_turn_external does: STUN and TURN over each configured
transport, TURNS over TCP when TURN has a TLS port, and for TURN the
short-lived "TURN REST API" credentials of :mod:`heron.credentials`, so the
TURN server checks them with the shared secret and no database.

With the port-443 mux on, TURNS over TCP and TURN over UDP on the mux port are
listed first, as in the web phone's ICE servers: a client that takes the first
usable service, or ranks relays by their place in the list, then reaches heron
from a network that lets only 443 out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from heron.credentials import DEFAULT_TTL, TurnSecret
from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features import IqContext
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, iq_result, qname

__all__ = ["ExternalServicesHandler", "ServiceType", "Transport"]

_SERVICES = qname(NS.EXTDISCO, "services")
_CREDENTIALS = qname(NS.EXTDISCO, "credentials")
_SERVICE = qname(NS.EXTDISCO, "service")


class ServiceType(StrEnum):
    """Service types of XEP-0215 §9.2 (the registry) that heron offers."""

    STUN = "stun"
    TURN = "turn"
    TURNS = "turns"


class Transport(StrEnum):
    """The 'transport' attribute (XEP-0215 §3)."""

    UDP = "udp"
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class _Service:
    type: ServiceType
    transport: Transport
    port: int

    @property
    def restricted(self) -> bool:
        # STUN Binding needs no credentials; TURN allocations do.
        return self.type is not ServiceType.STUN


def _datetime(moment: int) -> str:
    """XEP-0082 DateTime profile, in UTC."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ExternalServicesHandler:
    """XEP-0215 §3.1 (services request, optionally by type) and §3.2 (credentials request)."""

    namespace: str = NS.EXTDISCO
    disco_features: tuple[str, ...] = (NS.EXTDISCO,)

    def __init__(
        self,
        secret: TurnSecret,
        *,
        host: str,
        port: int | None = 3478,
        transports: Sequence[Transport] = (Transport.UDP, Transport.TCP),
        tls_port: int | None = None,
        mux_port: int | None = None,
        ttl: int = DEFAULT_TTL,
        local_domains: Collection[str],
        clock: Callable[[], float],
    ) -> None:
        self._secret = secret
        self._host = host
        self._ttl = ttl
        self._local_domains = frozenset(local_domains)
        self._clock = clock
        services: list[_Service] = []
        if mux_port is not None:
            services += [
                _Service(ServiceType.TURNS, Transport.TCP, mux_port),
                _Service(ServiceType.TURN, Transport.UDP, mux_port),
            ]
        if port is not None:
            services += [
                _Service(kind, transport, port)
                for kind in (ServiceType.STUN, ServiceType.TURN)
                for transport in dict.fromkeys(transports)
            ]
        if tls_port is not None:
            services.append(_Service(ServiceType.TURNS, Transport.TCP, tls_port))
        self._services = tuple(services)

    async def handle_iq(self, iq: Element, context: IqContext) -> Element | None:
        if context.sender.domain not in self._local_domains or context.to.local:
            # Credentials for heron's relay are for heron's own users, asked of the server.
            raise StanzaError(StanzaCondition.FORBIDDEN, "TURN is for local accounts")
        if iq.get("type") != "get":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get")
        if (services := iq.find(_SERVICES)) is not None:
            wanted = services.get("type")
            chosen = [s for s in self._services if wanted in (None, s.type)]
            return iq_result(iq, self._answer(_SERVICES, chosen, context.sender))
        if (credentials := iq.find(_CREDENTIALS)) is not None:
            chosen = [s for s in self._services if self._asked(credentials, s)]
            if not chosen:
                # §3.2: "the server MUST return an <item-not-found/> error".
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such service")
            return iq_result(iq, self._answer(_CREDENTIALS, chosen, context.sender))
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected <services/> or <credentials/>")

    def _asked(self, credentials: Element, service: _Service) -> bool:
        """Whether one <service/> of a credentials request names ``service`` (port optional)."""
        for wanted in credentials.iterfind(_SERVICE):
            port = wanted.get("port")
            if (
                wanted.get("host") == self._host
                and wanted.get("type") == service.type
                and service.restricted
                and port in (None, str(service.port))
            ):
                return True
        return False

    def _answer(self, tag: str, services: Sequence[_Service], sender: JID) -> Element:
        answer = Element(tag)
        issued = self._secret.issue(str(sender.bare), now=self._clock(), ttl=self._ttl)
        for service in services:
            element = SubElement(
                answer,
                _SERVICE,
                {
                    "host": self._host,
                    "port": str(service.port),
                    "transport": service.transport,
                    "type": service.type,
                },
            )
            if service.restricted:
                element.set("username", issued.username)
                element.set("password", issued.password)
                element.set("expires", _datetime(issued.expires))
                # §3.1: credentials are needed and, once expired, asked for again.
                element.set("restricted", "1")
        return answer
