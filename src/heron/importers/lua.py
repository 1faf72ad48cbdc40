"""Prosody's data files read as data: Lua table literals parsed, never executed.

Prosody's internal storage writes each record as ``return { ["key"] = value; ... };``
(``util.serialization``). Running that through a Lua interpreter would run whatever
else such a file holds, so this is a parser of the literal subset only: nil, booleans,
numbers (with Prosody's ``(0/0)``, ``(1/0)``, ``(-1/0)`` and ``math.huge``), strings
in every Lua spelling, tables with ``[key] =``, ``name =`` and positional fields, and
comments. Anything else (a call, an operator, a variable) is an error.

Hostile input is bounded: the text's size, the nesting depth and the number of values;
a string's escapes are checked as Lua does (``\\ddd`` at most 255). Lua strings are
bytes; these must be UTF-8, as Prosody writes them.

Errors: :class:`LuaDataError`, with the offset where reading stopped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "LuaDataError",
    "LuaLimits",
    "LuaTable",
    "LuaValue",
    "parse_lua_data",
    "parse_lua_items",
]

LuaValue = None | bool | int | float | str | dict["LuaKey", "LuaValue"]
LuaKey = bool | int | float | str
LuaTable = dict[LuaKey, LuaValue]


class LuaDataError(Exception):
    """The text is not a Lua data literal heron reads, or exceeds a limit."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class LuaLimits:
    max_bytes: int = 8 * 1024 * 1024
    """A roster of ten thousand contacts is about 1 MiB."""
    max_depth: int = 16
    """Prosody's records nest three or four tables deep."""
    max_values: int = 200_000


_SPACE = re.compile(rb"(?:\s+|--\[(=*)\[.*?\]\1\]|--[^\n]*)*", re.S)
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    rb"0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_LONG_OPEN = re.compile(rb"\[(=*)\[")
_SPECIAL = {b"(0/0)": math.nan, b"(1/0)": math.inf, b"(-1/0)": -math.inf, b"math.huge": math.inf}
_KEYWORDS = {b"nil": None, b"true": True, b"false": False}
_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("f"): 12,
    ord("n"): 10,
    ord("r"): 13,
    ord("t"): 9,
    ord("v"): 11,
    ord("\\"): 92,
    ord('"'): 34,
    ord("'"): 39,
    ord("\n"): 10,
}
_MAX_NUMBER = 64
"""Digits in one number literal: Prosody writes at most 17 significant ones."""


class _Reader:
    def __init__(self, data: bytes, limits: LuaLimits) -> None:
        self.data = data
        self.at = 0
        self.limits = limits
        self.values = 0

    def fail(self, message: str) -> LuaDataError:
        return LuaDataError(message, self.at)

    def skip(self) -> None:
        match = _SPACE.match(self.data, self.at)
        assert match is not None
        if self.data.startswith(b"--[", match.end()) and _LONG_OPEN.match(
            self.data, match.end() + 2
        ):
            raise LuaDataError("unterminated long comment", match.end())
        self.at = match.end()

    def peek(self, token: bytes) -> bool:
        return self.data.startswith(token, self.at)

    def expect(self, token: bytes) -> None:
        self.skip()
        if not self.peek(token):
            raise self.fail(f"expected {token.decode()!r}")
        self.at += len(token)

    def value(self, depth: int) -> LuaValue:
        self.skip()
        self.values += 1
        if self.values > self.limits.max_values:
            raise self.fail(f"more than {self.limits.max_values} values")
        data, at = self.data, self.at
        if at >= len(data):
            raise self.fail("unexpected end of data")
        first = data[at]
        if first == ord("{"):
            return self.table(depth + 1)
        if first in b"\"'":
            return self.quoted()
        if _LONG_OPEN.match(data, at):
            return self.long_string()
        for spelling, special in _SPECIAL.items():
            if data.startswith(spelling, at):
                self.at += len(spelling)
                return special
        if first == ord("-"):
            if data.startswith(b"-math.huge", at):
                self.at += len(b"-math.huge")
                return -math.inf
            self.at += 1
            self.skip()
            number = self.number()
            return -number
        if first in b"0123456789." and _NUMBER.match(data, at):
            return self.number()
        name = _NAME.match(data, at)
        if name and name.group() in _KEYWORDS:
            self.at = name.end()
            return _KEYWORDS[name.group()]
        raise self.fail("expected a value (only literals are read, nothing is run)")

    def number(self) -> int | float:
        match = _NUMBER.match(self.data, self.at)
        if match is None:
            raise self.fail("expected a number")
        text = match.group()
        if len(text) > _MAX_NUMBER:
            raise self.fail(f"a number of more than {_MAX_NUMBER} characters")
        after = match.end()
        if after < len(self.data) and _NAME.match(self.data, after):
            raise self.fail("malformed number")
        self.at = after
        if text[:2] in (b"0x", b"0X"):
            if b"." in text or b"p" in text or b"P" in text:
                return float.fromhex(text.decode())
            # Lua integers wrap around at 64 bits.
            value = int(text, 16) & 0xFFFF_FFFF_FFFF_FFFF
            return value - (1 << 64) if value >= 1 << 63 else value
        if b"." in text or b"e" in text or b"E" in text:
            return float(text)
        value = int(text)
        return value if value < 1 << 63 else float(value)

    def quoted(self) -> str:
        data, quote = self.data, self.data[self.at]
        start = self.at
        self.at += 1
        out = bytearray()
        while True:
            if self.at >= len(data):
                raise LuaDataError("unterminated string", start)
            byte = data[self.at]
            if byte == quote:
                self.at += 1
                return self.text(bytes(out), start)
            if byte == ord("\n"):
                raise self.fail("newline in a quoted string")
            if byte != ord("\\"):
                out.append(byte)
                self.at += 1
                continue
            self.at += 1
            self.escape(out)

    def escape(self, out: bytearray) -> None:
        data = self.data
        if self.at >= len(data):
            raise self.fail("unterminated escape")
        byte = data[self.at]
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
            self.at += 1
            if byte == ord("\n") and data.startswith(b"\r", self.at):
                self.at += 1
        elif byte == ord("\r"):
            out.append(10)
            self.at += 2 if data.startswith(b"\n", self.at + 1) else 1
        elif byte == ord("z"):
            match = re.compile(rb"\s*").match(data, self.at + 1)
            assert match is not None
            self.at = match.end()
        elif byte == ord("x"):
            digits = data[self.at + 1 : self.at + 3]
            if not re.fullmatch(rb"[0-9a-fA-F]{2}", digits):
                raise self.fail("\\x needs two hexadecimal digits")
            out.append(int(digits, 16))
            self.at += 3
        elif byte == ord("u"):
            match = re.compile(rb"u\{([0-9a-fA-F]{1,8})\}").match(data, self.at)
            if match is None or int(match.group(1), 16) > 0x7FFF_FFFF:
                raise self.fail("malformed \\u{...} escape")
            code = int(match.group(1), 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.fail("\\u{...} is not a Unicode scalar value")
            out += chr(code).encode()
            self.at = match.end()
        elif ord("0") <= byte <= ord("9"):
            match = re.compile(rb"[0-9]{1,3}").match(data, self.at)
            assert match is not None
            code = int(match.group())
            if code > 255:
                raise self.fail("decimal escape too large")
            out.append(code)
            self.at = match.end()
        else:
            raise self.fail("invalid escape sequence")

    def long_string(self) -> str:
        start = self.at
        match = _LONG_OPEN.match(self.data, self.at)
        assert match is not None
        close = b"]" + match.group(1) + b"]"
        begin = match.end()
        # Lua skips a newline right after the opening bracket.
        if self.data.startswith(b"\r\n", begin):
            begin += 2
        elif self.data.startswith(b"\n", begin):
            begin += 1
        end = self.data.find(close, begin)
        if end < 0:
            raise LuaDataError("unterminated long string", start)
        self.at = end + len(close)
        return self.text(self.data[begin:end], start)

    @staticmethod
    def text(raw: bytes, start: int) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise LuaDataError("a string that is not UTF-8", start) from None

    def table(self, depth: int) -> LuaTable:
        if depth > self.limits.max_depth:
            raise self.fail(f"tables nested deeper than {self.limits.max_depth}")
        self.at += 1  # "{"
        table: LuaTable = {}
        position = 1
        while True:
            self.skip()
            if self.peek(b"}"):
                self.at += 1
                return table
            if self.peek(b"[") and not _LONG_OPEN.match(self.data, self.at):
                self.at += 1
                key = self.value(depth)
                self.expect(b"]")
                self.expect(b"=")
                if key is None or (isinstance(key, float) and math.isnan(key)):
                    raise self.fail("a table key that is nil or NaN")
                if isinstance(key, dict):
                    raise self.fail("a table as a table key")
                table[_normal(key)] = self.value(depth)
            elif (name := _NAME.match(self.data, self.at)) and self._assigns(name.end()):
                if name.group() in _KEYWORDS:
                    raise self.fail("a keyword as a field name")
                self.at = name.end()
                self.expect(b"=")
                table[name.group().decode()] = self.value(depth)
            else:
                table[position] = self.value(depth)
                position += 1
            self.skip()
            if self.peek(b",") or self.peek(b";"):
                self.at += 1
            elif not self.peek(b"}"):
                raise self.fail("expected ',', ';' or '}'")

    def _assigns(self, after: int) -> bool:
        match = _SPACE.match(self.data, after)
        assert match is not None
        end = match.end()
        return self.data.startswith(b"=", end) and not self.data.startswith(b"==", end)


def _normal(key: LuaKey) -> LuaKey:
    """Lua keys 2 and 2.0 are one key: floats with an integer value become integers."""
    if isinstance(key, float) and key.is_integer():
        return int(key)
    return key


def parse_lua_data(data: bytes, limits: LuaLimits | None = None) -> LuaValue:
    """The value of a Prosody data file: ``[return] value [;]``, comments anywhere."""
    limits = limits or LuaLimits()
    if len(data) > limits.max_bytes:
        raise LuaDataError(f"more than {limits.max_bytes} bytes", limits.max_bytes)
    reader = _Reader(data, limits)
    reader.skip()
    name = _NAME.match(data, reader.at)
    if name and name.group() == b"return":
        reader.at = name.end()
    value = reader.value(0)
    reader.skip()
    if reader.peek(b";"):
        reader.at += 1
        reader.skip()
    if reader.at != len(data):
        raise reader.fail("unexpected text after the value")
    return value


def parse_lua_items(data: bytes, limits: LuaLimits | None = None) -> list[LuaValue]:
    """The records of a Prosody list file (``offline/USER.list``): ``item(value);`` again
    and again. ``item`` is read as a word, never called; the limits hold for the file."""
    limits = limits or LuaLimits()
    if len(data) > limits.max_bytes:
        raise LuaDataError(f"more than {limits.max_bytes} bytes", limits.max_bytes)
    reader = _Reader(data, limits)
    items = []
    reader.skip()
    while reader.at < len(data):
        name = _NAME.match(data, reader.at)
        if not name or name.group() != b"item":
            raise reader.fail("expected item(...)")
        reader.at = name.end()
        reader.expect(b"(")
        items.append(reader.value(0))
        reader.expect(b")")
        reader.skip()
        if reader.peek(b";"):
            reader.at += 1
        reader.skip()
    return items
