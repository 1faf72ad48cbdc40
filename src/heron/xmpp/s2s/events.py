"""What an s2s stream tells the server around it: frozen events, one per fact."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StreamError
from heron.xmpp.jid import JID

__all__ = [
    "AuthMethod",
    "Authenticated",
    "AuthenticationFailed",
    "DialbackVerifyNeeded",
    "Role",
    "S2SEvent",
    "StanzaReceived",
    "StartTlsRequested",
    "StreamEnded",
    "VerifyAnswered",
]


class Role(Enum):
    """Which end of the TCP connection we are (RFC 6120 §1.3 initiating / receiving entity)."""

    INCOMING = "incoming"  # we accepted it: the peer is the initiating server
    OUTGOING = "outgoing"  # we opened it: we are the initiating server


class AuthMethod(StrEnum):
    """How a domain was authenticated on a stream."""

    EXTERNAL = "external"  # SASL EXTERNAL on the certificate (XEP-0178)
    DIALBACK = "dialback"  # server dialback (XEP-0220)


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """Run the TLS handshake now, then call ``start_tls_done``.

    Incoming: <proceed/> is queued (send it first), we are the TLS server.
    Outgoing: the peer said <proceed/>, we are the TLS client.
    """


@dataclass(frozen=True, slots=True)
class DialbackVerifyNeeded:
    """The peer claims ``originating`` with ``key`` on incoming stream ``stream_id``
    (XEP-0220 §2.2.1): verify it (with the Authoritative Server through ``send_verify``
    on a stream to ``originating``, or at once when the certificate is valid for it)
    and answer with ``dialback_verified`` or ``dialback_failed``."""

    stream_id: str
    originating: str
    receiving: str
    key: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """``domain`` is authenticated by ``method`` for the pair (``domain``, ``local``).

    Incoming: the peer may now send stanzas from ``domain`` (to any local domain).
    Outgoing: ``domain`` is the remote; we may now send stanzas from ``local`` to it.
    ``bidi`` (XEP-0288): the stream carries the pair's other direction too; incoming,
    ``send_stanza`` may send from ``local`` to ``domain`` on it; outgoing, stanzas from
    ``domain`` to ``local`` arrive on it.
    """

    domain: str
    method: AuthMethod
    local: str
    bidi: bool = False


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """Outgoing: dialback for the extra pair (``local``, ``remote``) that
    ``authenticate_more`` asked for was refused; the stream goes on for the others.
    (When the stream's first pair fails, the stream ends instead.)"""

    local: str
    remote: str
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyAnswered:
    """The Authoritative Server's answer to our ``send_verify`` (XEP-0220 §2.1.2 step 3).

    ``condition`` is set when it answered with a dialback error instead (§2.5).
    """

    stream_id: str
    originating: str
    receiving: str
    valid: bool
    condition: StanzaCondition | None = None


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    """An incoming stanza from an authenticated domain to a local one, its own
    elements renamed from ``jabber:server`` to ``jabber:client`` as the router wants."""

    stanza: Element
    sender: JID
    to: JID


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream is over: ``error`` ended it (ours, or the peer's when ``by_peer``), or
    a plain close. The goodbye is in the output; close the connection once it is sent."""

    error: StreamError | None
    by_peer: bool


S2SEvent = (
    StartTlsRequested
    | DialbackVerifyNeeded
    | Authenticated
    | AuthenticationFailed
    | VerifyAnswered
    | StanzaReceived
    | StreamEnded
)
