"""XMPP federation (RFC 6120 §3.2, §13.7; XEP-0178, XEP-0220, XEP-0368).

Sans-IO: ``stream`` drives one connection in either role (its docstring is the API
the server around it follows); ``states`` holds its tables, ``events`` what it
reports, ``dialback`` the XEP-0185 keys, ``wire`` the elements, ``locate`` where a
domain's server is and ``identity`` whether a certificate names a domain. The asyncio
side: ``dns`` (lookups) and ``server`` (listeners and outgoing streams).
"""

from heron.xmpp.s2s.dialback import dialback_key, key_matches
from heron.xmpp.s2s.events import (
    Authenticated,
    AuthenticationFailed,
    AuthMethod,
    DialbackVerifyNeeded,
    Role,
    S2SEvent,
    StanzaReceived,
    StartTlsRequested,
    StreamEnded,
    VerifyAnswered,
)
from heron.xmpp.s2s.states import State
from heron.xmpp.s2s.stream import S2SStream

__all__ = [
    "AuthMethod",
    "Authenticated",
    "AuthenticationFailed",
    "DialbackVerifyNeeded",
    "Role",
    "S2SEvent",
    "S2SStream",
    "StanzaReceived",
    "StartTlsRequested",
    "State",
    "StreamEnded",
    "VerifyAnswered",
    "dialback_key",
    "key_matches",
]
