"""XEP-0363 slots (heron.xmpp.upload): tokens bound to size, type, name and expiry;
file names and types cleaned; downloads that never run script."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.features.upload import UploadFiles, UploadService
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.upload import (
    MAX_NAME,
    NAMESPACE,
    BadSlot,
    FileTooLarge,
    Slot,
    SlotSigner,
    clean_name,
    clean_type,
    download_headers,
    parse_request,
)

SIGNER = SlotSigner(b"k" * 32)
SLOT = Slot("a" * 32, "b" * 32, 1234, "image/png", "cat.png", 1_000_300)


def request(**attributes: str) -> Element:
    iq = Element("{jabber:client}iq", {"type": "get"})
    SubElement(iq, f"{{{NAMESPACE}}}request", attributes)
    return iq


def test_token_round_trip_gives_the_slot_back() -> None:
    assert SIGNER.check(SIGNER.token(SLOT), "cat.png", now=1_000_000) == SLOT


def test_upload_after_the_slot_ends_is_refused_but_download_is_not() -> None:
    token = SIGNER.token(SLOT)
    with pytest.raises(BadSlot, match="expired"):
        SIGNER.check(token, "cat.png", now=1_000_300)
    assert SIGNER.check(token, "cat.png", now=None) == SLOT


def test_token_for_another_name_or_key_is_refused() -> None:
    token = SIGNER.token(SLOT)
    with pytest.raises(BadSlot):
        SIGNER.check(token, "cat.html", now=None)
    with pytest.raises(BadSlot):
        SlotSigner(b"x" * 32).check(token, "cat.png", now=None)


def test_token_with_a_changed_size_is_refused() -> None:
    """The size, the type and the expiry are all under the signature."""
    bigger = SIGNER.token(replace(SLOT, size=10**9))
    forged = bigger.split(".")[0] + "." + SIGNER.token(SLOT).split(".")[1]
    with pytest.raises(BadSlot):
        SIGNER.check(forged, "cat.png", now=None)


@given(st.text(max_size=600))
def test_any_token_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(BadSlot):
        SIGNER.check(text, "cat.png", now=None)


@given(st.text(max_size=400))
def test_clean_names_are_one_short_path_component(name: str) -> None:
    cleaned = clean_name(name)
    assert cleaned and cleaned not in (".", "..")
    assert "/" not in cleaned and "\\" not in cleaned
    assert len(cleaned) <= MAX_NAME
    assert all(c == " " or c.isprintable() for c in cleaned)
    # The URL path carries it quoted; decoded, it is the name the token signs.
    slot = Slot("a" * 32, "b" * 32, 1, "text/plain", cleaned, 10)
    quoted = SIGNER.path(slot).rsplit("/", 1)[1]
    assert unquote(quoted) == cleaned
    assert SIGNER.check(SIGNER.token(slot), unquote(quoted), now=None) == slot


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "file"),
        ("", "file"),
        ("a\r\nSet-Cookie: x", "aSet-Cookie: x"),
        ("photo.jpg", "photo.jpg"),
    ],
)
def test_path_traversal_and_header_injection_names_are_cleaned(name: str, cleaned: str) -> None:
    assert clean_name(name) == cleaned


@pytest.mark.parametrize(
    ("given_type", "cleaned"),
    [
        ("image/PNG", "image/png"),
        ("text/html; charset=utf-8", "text/html"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_content_types_are_bare_media_types(given_type: str | None, cleaned: str) -> None:
    assert clean_type(given_type) == cleaned


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/javascript"],
)
def test_script_capable_types_are_attachments_in_a_sandbox(content_type: str) -> None:
    headers = download_headers(Slot("a" * 32, "b" * 32, 1, content_type, "x", 1))
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"] == content_type


def test_images_are_inline() -> None:
    headers = download_headers(SLOT)
    assert headers["Content-Disposition"] == "inline; filename*=UTF-8''cat.png"


def test_xep0363_s4_request_is_parsed() -> None:
    parsed = parse_request(
        request(filename="a/b.png", size="10", **{"content-type": "image/png"}), max_size=10
    )
    assert (parsed.name, parsed.size, parsed.content_type) == ("b.png", 10, "image/png")


def test_xep0363_s4_file_too_large_says_the_maximum() -> None:
    with pytest.raises(FileTooLarge) as refused:
        parse_request(request(filename="a", size="11"), max_size=10)
    assert refused.value.condition is StanzaCondition.NOT_ACCEPTABLE
    detail = refused.value.detail()
    assert detail.findtext(f"{{{NAMESPACE}}}max-file-size") == "10"


@pytest.mark.parametrize("size", ["", "0", "-1", "1e3", "9" * 20, " 5"])
def test_bad_sizes_are_bad_requests(size: str) -> None:
    with pytest.raises(StanzaError) as refused:
        parse_request(request(filename="a", size=size), max_size=10**9)
    assert refused.value.condition is StanzaCondition.BAD_REQUEST


_STANZAS = "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}"


class _Service:
    """An upload service for example.com whose replies are kept in ``sent``."""

    def __init__(self, root: Path) -> None:
        self.sent: list[Element] = []
        self.service = UploadService(
            "upload.example.com",
            signer=SIGNER,
            files=UploadFiles(root),
            base_url="https://example.com:8443",
            max_size=100,
            quota=150,
            local_domains=("example.com",),
            send=self._send,
            clock=lambda: 1_000_000.0,
        )

    async def _send(self, stanza: Element, _from: JID, _to: JID) -> None:
        self.sent.append(stanza)

    async def ask(self, sender: str, iq: Element) -> Element:
        await self.service.receive(iq, parse_jid(sender), parse_jid("upload.example.com"), False)
        return self.sent.pop()


async def test_xep0363_s4_other_domains_users_are_not_allowed(tmp_path: Path) -> None:
    iq = request(filename="a.txt", size="5")
    reply = await _Service(tmp_path).ask("eve@elsewhere.org/x", iq)
    assert reply.get("type") == "error"
    assert reply.find(_STANZAS + "not-allowed") is not None


async def test_slot_url_is_on_the_web_listener_and_signed_for_its_name(tmp_path: Path) -> None:
    iq = request(filename="../a b.txt", size="5", **{"content-type": "text/plain"})
    reply = await _Service(tmp_path).ask("ann@example.com/x", iq)
    put = reply.find(f"{{{NAMESPACE}}}slot/{{{NAMESPACE}}}put")
    assert put is not None
    url = put.get("url", "")
    assert url.startswith("https://example.com:8443/upload/") and url.endswith("/a%20b.txt")
    token = url.split("/")[-2]
    slot = SIGNER.check(token, "a b.txt", now=1_000_000.0)
    assert (slot.size, slot.content_type, slot.expires) == (5, "text/plain", 1_000_300)


async def test_quota_counts_what_the_account_stored(tmp_path: Path) -> None:
    service = _Service(tmp_path)
    bucket = tmp_path / SIGNER.bucket("ann@example.com")
    bucket.mkdir()
    (bucket / ("c" * 32)).write_bytes(b"x" * 100)
    iq = request(filename="a.txt", size="51")
    reply = await service.ask("ann@example.com/x", iq)
    assert reply.find(_STANZAS + "resource-constraint") is not None
    ok = await service.ask("bob@example.com/x", iq)
    assert ok.get("type") == "result"


def test_sweep_removes_only_files_older_than_the_expiry(tmp_path: Path) -> None:
    bucket = tmp_path / ("a" * 32)
    bucket.mkdir()
    old, new = bucket / ("b" * 32), bucket / ("c" * 32)
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    os.utime(old, (1000, 1000))
    os.utime(new, (5000, 5000))
    assert UploadFiles(tmp_path).sweep(before=2000) == 1
    assert not old.exists() and new.exists()
