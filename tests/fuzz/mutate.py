"""A small mutation fuzzer: corpus seeds bent the ways parsers break.

Each mutant is a seed with one to four edits: bit flips, random bytes,
boundary values where numbers were, tokens that end fields or documents,
deleted and repeated spans, and line-level edits for text protocols (the
header that is dropped, doubled or given a hostile value). A run is fixed by
its seed, so a failure names the seed that reproduces it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["CORPUS", "Mutator", "seeds"]

CORPUS = Path(__file__).parent / "corpus"

_TOKENS = (
    b"",
    b"0",
    b"-1",
    b"65536",
    b"4294967296",
    b"99999999999999999999999999",
    b"\x00",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"%00",
    b"%",
    b";",
    b",",
    b":",
    b"<",
    b">",
    b'"',
    b"'",
    b"]]>",
    b"</",
    b"<?xml version='1.0'?>",
    b"&#0;",
    b"&#x110000;",
    b"\xff\xfe",
    b"\xc3\x28",
    "é\u202e\ufeff".encode(),
    b"sip:x@127.0.0.1:6379;transport=tcp",
    b"[::1]",
    b"A" * 1024,
    b"%s%n",
)
_NUMBER = re.compile(rb"\d+")


def seeds(*directories: Path) -> list[bytes]:
    """Every file under ``directories``, sorted so a run is reproducible."""
    files = sorted(path for directory in directories for path in directory.rglob("*"))
    return [path.read_bytes() for path in files if path.is_file() and path.suffix != ".md"]


class Mutator:
    """Mutants of ``corpus``; ``text`` adds line-level edits (SIP, HTTP, XML)."""

    def __init__(self, corpus: Sequence[bytes], seed: int, *, text: bool) -> None:
        self._corpus = list(corpus)
        self._random = random.Random(seed)
        self._text = text

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield self.mutant()

    def mutant(self) -> bytes:
        data = bytearray(self._random.choice(self._corpus))
        edits = [self._flip, self._byte, self._token, self._delete, self._repeat]
        edits += [self._number, self._length]
        if self._text:
            edits += [self._drop_line, self._double_line, self._swap_lines, self._hostile_value]
        for _ in range(self._random.randint(1, 4)):
            data = self._random.choice(edits)(data)
        return bytes(data)

    def _at(self, data: bytearray) -> int:
        return self._random.randint(0, len(data))

    def _span(self, data: bytearray) -> tuple[int, int]:
        start = self._at(data)
        return start, min(len(data), start + self._random.randint(1, 64))

    def _flip(self, data: bytearray) -> bytearray:
        if data:
            data[self._random.randrange(len(data))] ^= 1 << self._random.randrange(8)
        return data

    def _byte(self, data: bytearray) -> bytearray:
        if data:
            data[self._random.randrange(len(data))] = self._random.randrange(256)
        return data

    def _token(self, data: bytearray) -> bytearray:
        at = self._at(data)
        data[at:at] = self._random.choice(_TOKENS)
        return data

    def _delete(self, data: bytearray) -> bytearray:
        start, end = self._span(data)
        del data[start:end]
        return data

    def _repeat(self, data: bytearray) -> bytearray:
        start, end = self._span(data)
        data[start:start] = data[start:end] * self._random.choice((2, 16, 256))
        return data

    def _number(self, data: bytearray) -> bytearray:
        found = list(_NUMBER.finditer(data))
        if not found:
            return self._token(data)
        match = self._random.choice(found)
        data[match.start() : match.end()] = self._random.choice(_TOKENS[:6])
        return data

    def _length(self, data: bytearray) -> bytearray:
        """A 16-bit big-endian field set to a boundary: STUN and TURN framing lengths."""
        if len(data) < 4:
            return data
        at = self._random.randrange(0, len(data) - 1) & ~1
        value = self._random.choice((0, 1, 3, 4, len(data), len(data) + 4, 0x7FFF, 0xFFFF))
        data[at : at + 2] = value.to_bytes(2, "big")
        return data

    def _lines(self, data: bytearray) -> list[bytes]:
        return bytes(data).split(b"\n")

    def _drop_line(self, data: bytearray) -> bytearray:
        lines = self._lines(data)
        del lines[self._random.randrange(len(lines))]
        return bytearray(b"\n".join(lines))

    def _double_line(self, data: bytearray) -> bytearray:
        lines = self._lines(data)
        at = self._random.randrange(len(lines))
        lines[at:at] = [lines[at]] * self._random.choice((1, 2, 100))
        return bytearray(b"\n".join(lines))

    def _swap_lines(self, data: bytearray) -> bytearray:
        lines = self._lines(data)
        first, second = self._random.randrange(len(lines)), self._random.randrange(len(lines))
        lines[first], lines[second] = lines[second], lines[first]
        return bytearray(b"\n".join(lines))

    def _hostile_value(self, data: bytearray) -> bytearray:
        """Everything after a header's colon (or an attribute's equals sign) replaced."""
        lines = self._lines(data)
        at = self._random.randrange(len(lines))
        name, separator, _ = lines[at].partition(b":" if b":" in lines[at] else b"=")
        if separator:
            lines[at] = name + separator + b" " + self._random.choice(_TOKENS) + b"\r"
        return bytearray(b"\n".join(lines))
