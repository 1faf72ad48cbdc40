"""The port-443 demultiplexer: which service a new TCP connection is for (issue 13).

:mod:`heron.mux.classify` is the sans-IO part, and its docstring the API the listener
uses: bytes in, a decision out.
"""

from heron.mux.classify import (
    ALPN_SERVICES,
    MAX_PEEK,
    Classifier,
    Decision,
    NeedMore,
    Refuse,
    Service,
    Verdict,
    classify,
)

__all__ = [
    "ALPN_SERVICES",
    "MAX_PEEK",
    "Classifier",
    "Decision",
    "NeedMore",
    "Refuse",
    "Service",
    "Verdict",
    "classify",
]
