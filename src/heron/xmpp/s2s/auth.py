"""Who may say what on an s2s stream, as pure functions the stream calls.

The authentication policy is Prosody 0.12's default: TLS required
(s2s_require_encryption), SASL EXTERNAL (XEP-0178) offered only for a
certificate valid for the peer's domain, dialback (XEP-0220) otherwise, and
with s2s_secure_auth no dialback at all. The addressing rules are RFC 6120's
(§4.7 for headers, §8.1.1.2 and §8.1.2.2 for stanzas): they are what keeps
a peer from speaking for a domain it did not authenticate.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import Enum
from xml.etree.ElementTree import Element

from heron.xmpp.errors import StanzaCondition, StanzaError, StreamCondition, StreamError
from heron.xmpp.jid import JID, parse_stanza_jid
from heron.xmpp.s2s.states import State
from heron.xmpp.s2s.wire import (
    EXTERNAL,
    dialback_feature,
    domain_of,
    external_authzid,
    external_feature,
    mechanisms_offered,
    starttls_feature,
)
from heron.xmpp.stanza import NS, qname

__all__ = ["Policy", "Step", "header_addresses", "may_send", "stanza_addresses"]


class Step(Enum):
    """What the initiating server does with the features it was offered."""

    STARTTLS = "starttls"
    EXTERNAL = "external"
    DIALBACK = "dialback"


@dataclass(frozen=True, slots=True)
class Policy:
    """``require_tls`` and ``secure_auth`` as the stream was built with them."""

    require_tls: bool
    secure_auth: bool

    # --- as the receiving server ---

    def offer(
        self, *, tls_active: bool, sasl_done: bool, certificate_valid: bool
    ) -> tuple[list[Element], State]:
        """The features after a header (RFC 6120 §4.3.2) and the state they lead to."""
        if not tls_active:
            if self.require_tls:  # §5.3.1: mandatory-to-negotiate, nothing else offered
                return [starttls_feature(required=True)], State.TLS_REQUIRED
            return [starttls_feature(required=False), dialback_feature()], State.TLS_OFFERED
        dialback = [] if self.secure_auth else [dialback_feature()]
        if sasl_done:
            return dialback, State.ESTABLISHED  # more domains may still come by dialback
        if self.secure_auth and not certificate_valid:
            # Prosody's s2s_secure_auth: no certificate valid for the domain, no stream.
            raise StreamError(
                StreamCondition.NOT_AUTHORIZED, "the certificate is not valid for your domain"
            )
        return ([external_feature()] if certificate_valid else []) + dialback, State.AUTH

    @staticmethod
    def external_refusal(auth: Element, *, tls_active: bool, offered: bool, remote: str) -> str:
        """The SASL failure condition for an <auth/> (RFC 6120 §6.5), or "" to accept it."""
        authzid = external_authzid(auth.text)
        if not tls_active:
            return "encryption-required"  # §6.5.3
        if auth.get("mechanism") != EXTERNAL or not offered:
            return "invalid-mechanism"
        if authzid is None:
            return "incorrect-encoding"
        if authzid and domain_of(authzid) != remote:
            return "invalid-authzid"  # §6.4.6: a server may act only as itself
        return ""

    def dialback_refusal(
        self, originating: str, receiving: str, local_domains: Set[str]
    ) -> StanzaCondition | None:
        """The dialback error (XEP-0220 §2.5) for a request, or None to verify it."""
        if receiving not in local_domains:
            return StanzaCondition.ITEM_NOT_FOUND
        if self.secure_auth:
            return StanzaCondition.NOT_AUTHORIZED  # proof by certificate only
        if originating in local_domains:
            return StanzaCondition.NOT_ACCEPTABLE  # nobody else speaks for our domains
        return None

    # --- as the initiating server ---

    def step(
        self, offered: Element, *, tls_active: bool, external_failed: bool, remote_valid: bool
    ) -> Step:
        """What to do with the receiving server's features; raises when nothing may be done."""
        if not tls_active:
            if offered.find(qname(NS.TLS, "starttls")) is not None:
                return Step.STARTTLS
            if self.require_tls:
                raise StreamError(StreamCondition.POLICY_VIOLATION, "STARTTLS was not offered")
            return self.fallback()
        if self.secure_auth and not remote_valid:
            raise StreamError(
                StreamCondition.NOT_AUTHORIZED, "the certificate is not valid for your domain"
            )
        if EXTERNAL in mechanisms_offered(offered) and not external_failed:
            return Step.EXTERNAL
        return self.fallback()

    def fallback(self) -> Step:
        """Dialback when EXTERNAL is absent or failed, as Prosody and ejabberd do."""
        if self.secure_auth:
            raise StreamError(
                StreamCondition.UNSUPPORTED_FEATURE, "no certificate authentication possible"
            )
        return Step.DIALBACK


def header_addresses(
    attributes: Mapping[str, str],
    local_domains: Set[str],
    previous: tuple[str, str] | None,
) -> tuple[str, str]:
    """(to, from) of an initiating server's header (RFC 6120 §4.7.1, §4.7.2): ``to`` is
    ours, ``from`` a domain or absent; after a restart (``previous``) both stay the same."""
    to = domain_of(attributes.get("to")) or ""
    if to not in local_domains or (previous and to != previous[0]):
        raise StreamError(StreamCondition.HOST_UNKNOWN, "this server does not serve that host")
    sender = domain_of(attributes.get("from")) or ""
    if attributes.get("from") and not sender:
        raise StreamError(StreamCondition.IMPROPER_ADDRESSING, "invalid 'from'")
    if sender in local_domains:
        raise StreamError(StreamCondition.INVALID_FROM, "that domain is served here")
    if previous and sender != previous[1]:
        raise StreamError(StreamCondition.IMPROPER_ADDRESSING, "'from' changed on restart")
    return to, sender


def stanza_addresses(
    stanza: Element, authenticated: Set[str], local_domains: Set[str]
) -> tuple[JID, JID]:
    """(from, to) of a stanza from the peer: both required and valid (§8.1.1.2, §8.1.2.2,
    §4.9.3.7), from an authenticated domain (§4.9.3.9: the rule against spoofing), to a
    local one (§4.9.3.6)."""
    try:
        sender = parse_stanza_jid(stanza.get("from") or "")
        to = parse_stanza_jid(stanza.get("to") or "")
    except StanzaError:
        raise StreamError(
            StreamCondition.IMPROPER_ADDRESSING, "from and to must be valid addresses"
        ) from None
    if sender.domain not in authenticated:
        raise StreamError(StreamCondition.INVALID_FROM, "that domain is not authenticated")
    if to.domain not in local_domains:
        raise StreamError(StreamCondition.HOST_UNKNOWN, "this server does not serve that host")
    return sender, to


def may_send(stanza: Element, pairs: Set[tuple[str, str]]) -> bool:
    """Whether our stanza keeps the peer's rules above: (its from domain, its to domain)
    is a pair this stream authenticated in our direction (no target multiplexing)."""
    try:
        sender = parse_stanza_jid(stanza.get("from") or "")
        to = parse_stanza_jid(stanza.get("to") or "")
    except StanzaError:
        return False
    return (sender.domain, to.domain) in pairs
