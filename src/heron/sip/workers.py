"""Which SIP worker numbered a branch (``sip.workers``), sans-IO.

Forked branches are numbered so that their number modulo the count names the process
that sent them: a response that meets another worker (the phone's source port picks it,
:mod:`heron.sip.transports.reuseport`) goes to the owner over the bus
(:mod:`heron.sip.transports.sharing`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

__all__ = ["fork_numbers", "fork_owner"]


def fork_numbers(index: int, count: int) -> Iterator[int]:
    """Branch numbers of worker ``index`` of ``count``: each one modulo ``count`` is it."""
    return itertools.count(count + index, count)


def fork_owner(branch: str, count: int) -> int | None:
    """The worker whose :func:`fork_numbers` numbered ``branch`` (heron's branches end
    in ``.number``, :func:`heron.sip.proxy.branch_id`); None for any other branch."""
    number = branch.rpartition(".")[2]
    return int(number) % count if number.isdigit() and len(number) < 19 else None
