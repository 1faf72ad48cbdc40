"""Prosody's data files are read as literals only, within limits, whatever they hold."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heron.importers.lua import (
    LuaDataError,
    LuaLimits,
    LuaValue,
    parse_lua_data,
    parse_lua_items,
)

PROSODY_ACCOUNT = b"""return {
\t["salt"] = "08859bcb-fc5b-4e72-9807-07f3dcc92d80";
\t["stored_key"] = "d84aad14e1b13c627dca28d3ce1ebb363ec7d5fd";
\t["server_key"] = "2c59365e92377071b50ca6c744090942abdf2cb3";
\t["iteration_count"] = 10000;
};
"""


def test_prosodyctl_account_record() -> None:
    assert parse_lua_data(PROSODY_ACCOUNT) == {
        "salt": "08859bcb-fc5b-4e72-9807-07f3dcc92d80",
        "stored_key": "d84aad14e1b13c627dca28d3ce1ebb363ec7d5fd",
        "server_key": "2c59365e92377071b50ca6c744090942abdf2cb3",
        "iteration_count": 10000,
    }


def test_prosody_roster_record_with_false_key_and_nested_tables() -> None:
    data = b"""return {
\t[false] = { ["version"] = 3; ["pending"] = {}; };
\t["juliet@capulet.lit"] = { ["subscription"] = "both"; ["groups"] = { ["Friends"] = true; };
\t\t["name"] = "Juliet"; };
};"""
    assert parse_lua_data(data) == {
        False: {"version": 3, "pending": {}},
        "juliet@capulet.lit": {
            "subscription": "both",
            "groups": {"Friends": True},
            "name": "Juliet",
        },
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (rb'"a\nb"', "a\nb"),
        (rb'"\65\066\0671"', "ABC1"),
        (rb'"\x41\u{48}\u{e9}"', "AH\u00e9"),
        (b'"a\\\nb"', "a\nb"),
        (rb'"a\z   b"', "ab"),
        (rb"'it\'s'", "it's"),
        (b"[[\nline]]", "line"),
        (b"[==[a]]b]=]c]==]", "a]]b]=]c"),
        ('"caf\u00e9"'.encode(), "caf\u00e9"),
    ],
)
def test_lua_string_spellings(text: bytes, value: str) -> None:
    assert parse_lua_data(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"10000", 10000),
        (b"-3", -3),
        (b"0x10", 16),
        (b"1.5", 1.5),
        (b"1e3", 1000.0),
        (b"0x1p4", 16.0),
        (b"(1/0)", math.inf),
        (b"(-1/0)", -math.inf),
        (b"-math.huge", -math.inf),
        (b"0xffffffffffffffff", -1),
    ],
)
def test_lua_numbers(text: bytes, value: float) -> None:
    assert parse_lua_data(text) == value


def test_not_a_number_is_read() -> None:
    value = parse_lua_data(b"(0/0)")
    assert isinstance(value, float) and math.isnan(value)


def test_table_fields_of_every_kind_and_comments() -> None:
    data = (
        b"-- a comment\n--[==[ long\ncomment ]==]\n"
        b"return { 1, 'two'; name = true, [2.0] = 'x', [3] = nil, }"
    )
    assert parse_lua_data(data) == {1: 1, 2: "x", "name": True, 3: None}


@pytest.mark.parametrize(
    "text",
    [
        b'os.execute("rm -rf /")',
        b'return { x = os.execute("id") }',
        b"return { x = 1 + 2 }",
        b"return { x = y }",
        b"return { x = function() end }",
        b"return { [{}] = 1 }",
        b"return { [nil] = 1 }",
        b"return { [(0/0)] = 1 }",
        b"return { nil = 1 }",
        b"return {",
        b'return { "unterminated }',
        b'return { "new\nline" }',
        b'"\\q"',
        b'"\\256"',
        b'"\\xZZ"',
        b'"\\u{110000}"',
        b'"\\u{d800}"',
        b"[==[ unterminated ]=]",
        b"--[[ unterminated comment",
        b"return {} extra",
        b"return {} ; ;",
        b"1" * 100,
        b"12abc",
        b'"\xff\xfe"',
        b"",
        b"return",
        b"{ x == 1 }",
    ],
)
def test_anything_but_a_literal_is_refused(text: bytes) -> None:
    with pytest.raises(LuaDataError):
        parse_lua_data(text)


def test_depth_is_bounded() -> None:
    limits = LuaLimits(max_depth=8)
    assert parse_lua_data(b"{" * 8 + b"}" * 8, limits) is not None
    with pytest.raises(LuaDataError, match="nested deeper than 8"):
        parse_lua_data(b"{" * 9 + b"}" * 9, limits)
    # The default bound holds far below Python's recursion limit.
    with pytest.raises(LuaDataError):
        parse_lua_data(b"{" * 100_000)


def test_size_is_bounded() -> None:
    with pytest.raises(LuaDataError, match="more than 100 bytes"):
        parse_lua_data(b'"' + b"a" * 200 + b'"', LuaLimits(max_bytes=100))


def test_value_count_is_bounded() -> None:
    with pytest.raises(LuaDataError, match="more than 1000 values"):
        parse_lua_data(b"{" + b"1," * 2000 + b"}", LuaLimits(max_values=1000))


def test_error_names_the_offset() -> None:
    with pytest.raises(LuaDataError, match="at byte 9"):
        parse_lua_data(b"return { x y }")


# --- property tests ------------------------------------------------------------------

_keys = st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), st.booleans())
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False).filter(lambda f: not f.is_integer() or math.isinf(f)),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars, lambda inner: st.dictionaries(_keys, inner, max_size=5), max_leaves=30
)


def _lua_string(text: str) -> str:
    """Prosody-style: printable ASCII as is, every other byte as a decimal escape."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _lua(value: LuaValue) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "(1/0)" if value == math.inf else "(-1/0)" if value == -math.inf else repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    return "{" + "".join(f"[{_lua(k)}] = {_lua(v)};" for k, v in value.items()) + "}"


def _unique_keys(value: LuaValue) -> bool:
    """Python's dict joins True with 1 and False with 0; Lua keeps them apart."""
    if not isinstance(value, dict):
        return True
    return len({(type(k), k) for k in value}) == len({k for k in value}) and all(
        _unique_keys(v) for v in value.values()
    )


@given(_values.filter(_unique_keys))
def test_serialized_values_read_back(value: LuaValue) -> None:
    assert parse_lua_data(f"return {_lua(value)};".encode()) == value


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_value_or_a_lua_data_error(data: bytes) -> None:
    try:
        parse_lua_data(data)
    except LuaDataError:
        pass


@given(st.text(alphabet="{}[]=\"\\;,-0123456789.xeEp+ abtrunlfsmh()\n'", max_size=60))
def test_lua_like_text_gives_a_value_or_a_lua_data_error(text: str) -> None:
    try:
        parse_lua_data(text.encode())
    except LuaDataError:
        pass


def test_prosody_list_file_items() -> None:
    data = b"""item({
\t{ "hello \\195\\169"; ["name"] = "body"; ["attr"] = {}; };
\t["name"] = "message"; ["when"] = 1796680363;
});
item({ ["name"] = "message" });
"""
    assert parse_lua_items(data) == [
        {1: {1: "hello \u00e9", "name": "body", "attr": {}}, "name": "message", "when": 1796680363},
        {"name": "message"},
    ]
    assert parse_lua_items(b"") == []


@pytest.mark.parametrize(
    "text",
    [b'os.execute("id")', b"item{}", b"item({}", b"item({}) junk", b"return {}", b"item(x)"],
)
def test_list_files_hold_item_calls_only(text: bytes) -> None:
    with pytest.raises(LuaDataError):
        parse_lua_items(text)


def test_list_file_limits_hold_for_the_whole_file() -> None:
    with pytest.raises(LuaDataError, match="more than 10 values"):
        parse_lua_items(b"item({1,2,3});" * 4, LuaLimits(max_values=10))
