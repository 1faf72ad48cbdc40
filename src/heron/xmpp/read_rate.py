"""How fast one XMPP connection, client or server, may make heron read (Prosody's mod_limits).

A leaky bucket per connection: its owner asks :meth:`ReadRate.pause` after every read and
sleeps that long before the next one, so the peer's bytes wait in its own socket buffer.
Shared by the c2s streams (``xmpp.read_rate``) and the s2s streams (``xmpp.s2s_read_rate``).
"""

from __future__ import annotations

__all__ = ["ReadRate"]


class ReadRate:
    """Bytes per second one connection may send, with a burst: a leaky bucket that says how
    long to pause reading when it overflows. A rate of 0 is unlimited."""

    __slots__ = ("_burst", "_last", "_level", "_rate")

    def __init__(self, rate: int, burst: int) -> None:
        self._rate, self._burst = rate, burst
        self._level = 0.0
        self._last = 0.0

    @classmethod
    def for_stanzas(cls, rate: int, max_stanza_bytes: int) -> ReadRate:
        """A burst of four seconds' worth, or one largest stanza if that is more."""
        return cls(rate, max(4 * rate, max_stanza_bytes))

    def pause(self, size: int, now: float) -> float:
        """Seconds to wait before reading again, after ``size`` bytes came at ``now``."""
        if not self._rate:
            return 0.0
        self._level = max(0.0, self._level - (now - self._last) * self._rate) + size
        self._last = now
        return max(0.0, (self._level - self._burst) / self._rate)
