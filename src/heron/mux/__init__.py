"""The port-443 demultiplexer: which service a new TCP connection is for (issue 13).

:mod:`heron.mux.classify` is the sans-IO part: bytes in, a decision out.
"""

from heron.mux.classify import (
    MAX_PEEK,
    NeedMore,
    Refuse,
    Service,
    Verdict,
    classify,
)

__all__ = ["MAX_PEEK", "NeedMore", "Refuse", "Service", "Verdict", "classify"]
