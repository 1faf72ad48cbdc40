"""Python's cyclic garbage collector, set for a server that holds many live objects.

With the defaults (a collection every 700 net allocations) heron collected its
youngest generation several times per SIP registration and ran full collections
over every lingering transaction (32 s of them, Timers J, L and M) every few
seconds: about 9 % of its CPU at 300 registrations/s, and pauses of ~90 ms CPU
that a loaded host stretches past T1, after which every phone retransmits.
Nearly all of heron's garbage is freed by reference counting, so rarer young
collections find as much and cost a tenth; the objects of start-up (modules,
configuration, schema) never die, so :func:`gc.freeze` takes them out of every
later collection.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

YOUNG_THRESHOLD = 10_000
"""Net allocations between collections of the youngest generation (CPython: 700)."""


def settle() -> None:
    """Once started: freeze what start-up made, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
