"""XEP-0363 HTTP File Upload's rules: slot tokens, file names, content types, safe headers.

A slot's URL carries all the web listener needs, signed with the server's key: whose
storage (an opaque bucket derived from the account, so a link does not name its sender),
a random file id, the size, the content type, the file name and when the slot ends.
heron keeps no table of slots. A file's path on disk is built from the signed bucket and
id only, never from the name a client chose, so no name can reach outside the upload
directory; the name is only compared with the signed one and echoed, quoted, in headers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.stanza import NS, qname

__all__ = [
    "NAMESPACE",
    "BadSlot",
    "FileTooLarge",
    "Slot",
    "SlotRequest",
    "SlotSigner",
    "clean_name",
    "clean_type",
    "disco_info",
    "download_headers",
    "parse_request",
    "slot_element",
]

NAMESPACE = "urn:xmpp:http:upload:0"
_REQUEST = qname(NAMESPACE, "request")
MAX_NAME = 200
"""Characters of a file name kept (the rest of a longer one is cut)."""
_OCTETS = "application/octet-stream"
_TOKEN_CHARS = r"[a-z0-9!#$&^_.+-]{1,63}"
_TYPE = re.compile(rf"^{_TOKEN_CHARS}/{_TOKEN_CHARS}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_DIGITS = re.compile(r"^[0-9]{1,15}$")
_MAX_TOKEN = 512
_INLINE = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "text/plain"}
)
"""Types a browser may show in place: none of them runs script (SVG does, so it is not here)."""


class BadSlot(Exception):
    """A URL whose token is malformed, forged, for another name, or past its slot's end."""


class FileTooLarge(StanzaError):
    """XEP-0363 §4: not-acceptable with <file-too-large/> saying the largest size."""

    def __init__(self, max_size: int) -> None:
        super().__init__(StanzaCondition.NOT_ACCEPTABLE, "file too large")
        self.max_size = max_size

    def detail(self) -> Element:
        """The application-specific condition the error carries."""
        element = Element(qname(NAMESPACE, "file-too-large"))
        SubElement(element, qname(NAMESPACE, "max-file-size")).text = str(self.max_size)
        return element


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """XEP-0363 §4's <request/>, cleaned."""

    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class Slot:
    bucket: str
    """Whose storage: 32 hex digits the server derives from the account."""
    file_id: str
    """32 random hex digits: the file's name on disk."""
    size: int
    content_type: str
    name: str
    expires: int
    """When an upload to the slot is refused (UNIX time); downloads do not end with it."""


def clean_name(name: str | None) -> str:
    """A file name safe to echo: its last path component, no control or format characters,
    at most :data:`MAX_NAME` characters, never empty nor ``.``/``..``."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] not in "CZ" or c == " ")
    text = text.strip(" .")[:MAX_NAME].strip(" ")
    return text or "file"


def clean_type(value: str | None) -> str:
    """A ``type/subtype`` without parameters, lower case; anything else is octets."""
    text = (value or "").split(";", 1)[0].strip().lower()
    return text if _TYPE.match(text) else _OCTETS


def parse_request(iq: Element, *, max_size: int) -> SlotRequest:
    """XEP-0363 §4: the slot request of ``iq``, refused when malformed or too large."""
    request = iq.find(_REQUEST)
    if iq.get("type") != "get" or request is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected an iq get with <request/>")
    size = request.get("size", "")
    if not _DIGITS.match(size) or int(size) == 0:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "size must be a positive integer")
    if int(size) > max_size:
        raise FileTooLarge(max_size)
    return SlotRequest(
        clean_name(request.get("filename")), int(size), clean_type(request.get("content-type"))
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SlotSigner:
    """Signs slots into URL tokens and checks them (HMAC-SHA256 with the server's key)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def bucket(self, account: str) -> str:
        """The storage of ``account`` (a bare JID): stable, and saying nothing of it."""
        return hmac.digest(self._key, b"bucket\0" + account.encode(), "sha256")[:16].hex()

    def _mac(self, payload: str, name: str) -> bytes:
        return hmac.digest(self._key, f"slot\0{payload}\0{name}".encode(), "sha256")

    def token(self, slot: Slot) -> str:
        payload = f"{slot.bucket}{slot.file_id} {slot.size} {slot.expires} {slot.content_type}"
        return f"{_b64(payload.encode())}.{_b64(self._mac(payload, slot.name))}"

    def path(self, slot: Slot) -> str:
        """The URL path of ``slot``: ``/upload/<token>/<name>``."""
        return f"/upload/{self.token(slot)}/{quote(slot.name, safe='')}"

    def check(self, token: str, name: str, *, now: float | None) -> Slot:
        """The slot ``token`` signs for ``name`` (as the URL decodes); ``now`` given, the
        slot must not have ended (an upload), None for a download."""
        encoded, _, mac = token.partition(".")
        if len(token) > _MAX_TOKEN or not encoded or not mac:
            raise BadSlot("malformed token")
        try:
            payload = _unb64(encoded).decode("ascii")
            signature = _unb64(mac)
        except (binascii.Error, ValueError):
            raise BadSlot("malformed token") from None
        if not hmac.compare_digest(signature, self._mac(payload, name)):
            raise BadSlot("bad signature")
        ids, size, expires, content_type = payload.split(" ")
        if now is not None and now >= int(expires):
            raise BadSlot("slot expired")
        return Slot(ids[:32], ids[32:], int(size), content_type, name, int(expires))


def slot_element(put_url: str, get_url: str) -> Element:
    """XEP-0363 §4's <slot/>: the URLs need no header (the token is in the URL)."""
    slot = Element(qname(NAMESPACE, "slot"))
    SubElement(slot, qname(NAMESPACE, "put"), {"url": put_url})
    SubElement(slot, qname(NAMESPACE, "get"), {"url": get_url})
    return slot


def disco_info(max_size: int) -> Element:
    """XEP-0363 §3 (and §7's form): the service's identity, feature and largest size."""
    query = Element(qname(NS.DISCO_INFO, "query"))
    identity = {"category": "store", "type": "file", "name": "HTTP File Upload"}
    SubElement(query, qname(NS.DISCO_INFO, "identity"), identity)
    for feature in (NS.DISCO_INFO.value, NAMESPACE):
        SubElement(query, qname(NS.DISCO_INFO, "feature"), {"var": feature})
    form = SubElement(query, qname(NS.DATA, "x"), {"type": "result"})
    for var, value in (("FORM_TYPE", NAMESPACE), ("max-file-size", str(max_size))):
        attributes = {"var": var, **({"type": "hidden"} if var == "FORM_TYPE" else {})}
        field = SubElement(form, qname(NS.DATA, "field"), attributes)
        SubElement(field, qname(NS.DATA, "value")).text = value
    return query


def download_headers(slot: Slot) -> dict[str, str]:
    """What a download is served with: the stored type, but nothing the upload origin
    serves may run script (XEP-0363 §10): a sandboxing CSP, no sniffing, and any type but
    a few plain ones is an attachment."""
    inline = slot.content_type in _INLINE or slot.content_type.split("/")[0] in (
        "audio",
        "video",
    )
    disposition = "inline" if inline else "attachment"
    return {
        "Content-Type": slot.content_type,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(slot.name, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=3600, immutable",
        "Referrer-Policy": "no-referrer",
    }
