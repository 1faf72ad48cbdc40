"""A XEP-0292 vCard4 as the vcard-temp vCard Prosody 0.12's mod_vcard_legacy answered
with: there the vCard4 PEP item is the only copy, and heron's vcard-temp store must
hold what vcard-temp clients saw, as heron does not convert between the two."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.pep.avatar import VCARD4
from heron.xmpp.stanza import NS, qname

__all__ = ["vcard_temp_of_vcard4"]

_SIMPLE = {
    "nickname": "text",
    "title": "text",
    "role": "text",
    "categories": "text",
    "note": "text",
    "url": "uri",
    "bday": "date",
}
"""vCard4 properties with one value, copied as the upper-case vcard-temp element."""
_N = {"FAMILY": "surname", "GIVEN": "given", "MIDDLE": "additional", "PREFIX": "prefix"}
_N |= {"SUFFIX": "suffix"}
_ADR = {"POBOX": "pobox", "EXTADD": "ext", "STREET": "street", "LOCALITY": "locality"}
_ADR |= {"REGION": "region", "PCODE": "code", "CTRY": "country"}


def _v4(*path: str) -> str:
    return "/".join(qname(VCARD4, step) for step in path)


def _add(parent: Element, name: str, text: str | None = None) -> Element:
    child = SubElement(parent, qname(NS.VCARD, name))
    child.text = text
    return child


def _kind(parent: Element, prop: Element) -> None:
    """HOME or WORK, from the property's ``parameters/type/text``."""
    kind = prop.findtext(_v4("parameters", "type", "text"))
    if kind in ("home", "work"):
        _add(parent, kind.upper())


def vcard_temp_of_vcard4(vcard4: Element) -> Element:
    """The vcard-temp vCard (XEP-0054) of ``vcard4``, field by field as Prosody mapped
    them: FN, N, the single-valued properties, EMAIL, TEL, ADR, JABBERID and ORG."""
    vcard = Element(qname(NS.VCARD, "vCard"))
    _add(vcard, "FN", vcard4.findtext(_v4("fn", "text")))
    n = _add(vcard, "N")
    for name, part in _N.items():
        _add(n, name, vcard4.findtext(_v4("n", part)))
    for prop in vcard4:
        tag = prop.tag.removeprefix(f"{{{VCARD4}}}")
        if tag in _SIMPLE and (text := prop.findtext(_v4(_SIMPLE[tag]))) is not None:
            _add(vcard, tag.upper(), text)
        elif tag == "email" and (text := prop.findtext(_v4("text"))) is not None:
            email = _add(vcard, "EMAIL")
            _add(email, "USERID", text)
            _add(email, "INTERNET")
            _kind(email, prop)
        elif tag == "tel" and (text := prop.findtext(_v4("uri"))) is not None:
            tel = _add(vcard, "TEL")
            _add(tel, "NUMBER", text.removeprefix("tel:"))
            _kind(tel, prop)
        elif tag == "adr":
            adr = _add(vcard, "ADR")
            for name, part in _ADR.items():
                _add(adr, name, prop.findtext(_v4(part)))
            _kind(adr, prop)
        elif tag == "impp" and (uri := prop.findtext(_v4("uri")) or "").startswith("xmpp:"):
            _add(vcard, "JABBERID", uri.removeprefix("xmpp:"))
        elif tag == "org":
            _add(_add(vcard, "ORG"), "ORGNAME", prop.findtext(_v4("text")))
    return vcard
