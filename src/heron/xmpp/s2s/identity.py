"""Does a peer's certificate name its XMPP domain? RFC 6125 §6 as RFC 6120 §13.7.1.2 and
RFC 7590 §3.2 apply it to server-to-server streams. No I/O: DER bytes and a domain in.

The reference identifiers for a domain are a DNS-ID (the domain), an SRV-ID
(``_xmpp-server.`` + the domain, RFC 4985 id-on-dnsSRV) and an XmppAddr (the domain as a
JID, RFC 6120 §13.7.1.4 id-on-xmppAddr). Presented identifiers match when:

- a DNS-ID equals the domain, ignoring case (§6.4.1), or is ``*.`` + the rest of it: the
  wildcard is the whole leftmost label and stands for exactly one label (§6.4.3), never
  for a label of a name of two labels or fewer (``*.com``);
- an SRV-ID's service is ``_xmpp-server`` and its name equals the domain (§6.5.1);
- an XmppAddr equals the domain (§6.5.4's "application-specific" identifier);
- the subject's Common Name equals the domain, only when the certificate presents none of
  the above nor a URI-ID (§6.4.4: "MUST NOT seek a match for a reference identifier of
  CN-ID if the presented identifiers include a DNS-ID, SRV-ID, URI-ID, or any
  application-specific identifier types").

Whether the chain is trusted is TLS's question (:func:`heron.peer_tls.verified_peer`);
this module answers only for names. Hostile input: a certificate larger than
:data:`MAX_CERTIFICATE` or one that does not parse names nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

__all__ = [
    "ID_ON_DNS_SRV",
    "ID_ON_XMPP_ADDR",
    "MAX_CERTIFICATE",
    "PresentedIds",
    "certificate_names_domain",
    "presented_ids",
]

ID_ON_XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
"""RFC 6120 §13.7.1.4: id-on-xmppAddr, a UTF8String JID."""
ID_ON_DNS_SRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")
"""RFC 4985 §2: id-on-dnsSRV, an IA5String ``_service.name``."""
SRV_SERVICE = "_xmpp-server"
"""RFC 7590 §3.2 and RFC 6120 §13.7.1.2.2: the service of an s2s SRV-ID."""
MAX_CERTIFICATE = 65_536
"""Bytes of DER a certificate may take; TLS records cap a chain at 16 MiB, we need less."""
MAX_NAMES = 1_000
"""Identifiers read from one certificate; a wildcard certificate for many hosts has tens."""
_UTF8_STRING, _IA5_STRING = 0x0C, 0x16


@dataclass(frozen=True, slots=True)
class PresentedIds:
    """The identifiers a certificate presents (RFC 6125 §2.1), lower-cased, no final dot."""

    dns: tuple[str, ...] = ()
    srv: tuple[str, ...] = ()
    """SRV-IDs as written, ``_service.name``."""
    xmpp: tuple[str, ...] = ()
    cn: tuple[str, ...] = ()
    """Common Names, counted only when the others (and URI-IDs) are absent."""

    def names(self, domain: str) -> bool:
        """True when one identifier names ``domain`` (see the module docstring)."""
        wanted = _normalise(domain)
        if not wanted:
            return False
        if self.dns or self.srv or self.xmpp:
            return (
                any(_dns_id_matches(p, wanted) for p in self.dns)
                or f"{SRV_SERVICE}.{wanted}" in self.srv
                or wanted in self.xmpp
            )
        return wanted in self.cn


def presented_ids(der: bytes) -> PresentedIds:
    """The identifiers of a DER certificate; none when it is too large or does not parse."""
    if len(der) > MAX_CERTIFICATE:
        return PresentedIds()
    try:
        certificate = x509.load_der_x509_certificate(der)
        return _presented(certificate)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return PresentedIds()


def certificate_names_domain(der: bytes, domain: str) -> bool:
    """RFC 7590 §3.2: does the certificate (DER) name the XMPP domain ``domain``?"""
    return presented_ids(der).names(domain)


def _presented(certificate: x509.Certificate) -> PresentedIds:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        general: list[x509.GeneralName] = []
    else:
        general = list(san.value)[:MAX_NAMES]
    dns = [_normalise(n.value) for n in general if isinstance(n, x509.DNSName)]
    srv, xmpp = [], []
    for name in general:
        if isinstance(name, x509.OtherName):
            if name.type_id == ID_ON_DNS_SRV:
                srv.append(_normalise(_der_string(name.value, _IA5_STRING)))
            elif name.type_id == ID_ON_XMPP_ADDR:
                xmpp.append(_normalise(_der_string(name.value, _UTF8_STRING)))
    uri = any(isinstance(n, x509.UniformResourceIdentifier) for n in general)
    cn: list[str] = []
    if not (dns or srv or xmpp or uri):
        attributes = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = [_normalise(str(a.value)) for a in attributes[:MAX_NAMES]]
    return PresentedIds(*(tuple(n for n in names if n) for names in (dns, srv, xmpp, cn)))


def _der_string(value: bytes, tag: int) -> str:
    """The text of one DER string of type ``tag`` filling ``value``; "" when it is not one."""
    if len(value) < 2 or value[0] != tag:
        return ""
    length, start = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 2 or len(value) < 2 + count:
            return ""
        length, start = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if start + length != len(value):
        return ""
    try:
        return value[start:].decode("ascii" if tag == _IA5_STRING else "utf-8")
    except UnicodeDecodeError:
        return ""


def _normalise(name: str) -> str:
    """Lower case, no final dot, international names as A-labels (RFC 6125 §6.4.2); ""
    for a name that cannot be one."""
    name = name.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if not name or len(name) > 253 or any(not label for label in name.split(".")):
        return ""
    return name


def _dns_id_matches(presented: str, domain: str) -> bool:
    if presented == domain:
        return True
    first, _, rest = presented.partition(".")
    if first != "*" or rest.count(".") < 1:
        return False  # §6.4.3: only a whole leftmost "*", and never "*.tld"
    label, _, parent = domain.partition(".")
    return bool(label) and parent == rest
