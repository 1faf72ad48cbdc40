"""RFC 6455 §4.2.1: the opening handshake, checked before aiohttp's own check."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from heron.web.upgrade import valid_key, valid_opening

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
OPENING = {
    "Upgrade": "websocket",
    "Connection": "keep-alive, Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
}


def headers(**changes: str | None) -> CIMultiDictProxy[str]:
    fields = {**OPENING, **{name.replace("_", "-"): value for name, value in changes.items()}}
    return CIMultiDictProxy(CIMultiDict({k: v for k, v in fields.items() if v is not None}))


def test_a_browser_opening_is_valid() -> None:
    assert valid_opening("GET", headers())


def test_each_missing_or_wrong_field_makes_it_invalid() -> None:
    assert not valid_opening("POST", headers())
    assert not valid_opening("GET", headers(Upgrade="h2c"))
    assert not valid_opening("GET", headers(Upgrade="websocket\udcd4"))
    assert not valid_opening("GET", headers(Connection="keep-alive"))
    assert not valid_opening("GET", headers(Sec_WebSocket_Version="8"))
    assert not valid_opening("GET", headers(Sec_WebSocket_Key=None))


def test_keys_that_are_not_base64_of_16_bytes_are_refused() -> None:
    assert not valid_key("dGhlIHNhbXBsZSBub25jZQ")  # padding missing
    assert not valid_key(base64.b64encode(bytes(15)).decode())
    assert not valid_key(RFC_KEY + "\u00e9")
    assert not valid_key("dGhl IHNhbXBsZSBub25jZQ==")


@given(st.text(max_size=40))
def test_no_key_raises(key: str) -> None:
    valid_key(key)


@given(st.binary(min_size=16, max_size=16))
def test_every_16_byte_key_is_valid(raw: bytes) -> None:
    assert valid_key(base64.b64encode(raw).decode())
