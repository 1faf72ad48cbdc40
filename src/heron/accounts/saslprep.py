"""SASLprep (RFC 4013), the string preparation SCRAM and STUN apply to passwords.

RFC 5802 §2.2 normalises SCRAM passwords with SASLprep, and RFC 5769 §2.4
shows STUN long-term keys made from the same prepared form, so one
preparation serves both. Built on the stdlib ``stringprep`` tables.
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = ["saslprep"]

_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def saslprep(text: str) -> str:
    """Prepare ``text`` as a stored string (unassigned code points refused).

    Raises ``ValueError`` naming the offending character class, since a
    password that cannot be prepared can never be matched by a client.
    """
    # RFC 4013 §2.1: non-ASCII spaces map to SPACE, "commonly mapped to nothing" go.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared:
        raise ValueError("the password is empty after SASLprep")
    for ch in prepared:
        if any(table(ch) for table in _PROHIBITED):
            raise ValueError(f"the password contains a prohibited character U+{ord(ch):04X}")
    # RFC 3454 §6: right-to-left text must start and end with RandALCat, and
    # may not mix in LCat characters.
    if any(stringprep.in_table_d1(ch) for ch in prepared):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise ValueError("the password mixes left-to-right and right-to-left text")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise ValueError("right-to-left text in the password must start and end with it")
    return prepared
