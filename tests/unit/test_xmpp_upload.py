"""XEP-0363 slots (heron.xmpp.upload): tokens bound to size, type, name and expiry;
file names and types cleaned; downloads that never run script."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import unquote
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.xmpp.errors import StanzaCondition, StanzaError
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
