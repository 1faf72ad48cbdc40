"""The one exception tree of the XMPP layer, each carrying its wire condition::

    XmppError                 .condition (wire name), .text (for the peer, optional)
    ├── StreamError           RFC 6120 §4.9: ends the whole stream with
    │                         <stream:error/>; the connection then closes
    └── StanzaError           RFC 6120 §8.3: one stanza is refused with an
                              error reply of .type; the stream goes on

Parsers and features raise nothing else, whatever the input.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ErrorType",
    "StanzaCondition",
    "StanzaError",
    "StreamCondition",
    "StreamError",
    "XmppError",
    "loggable",
]

_UNPRINTABLE = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, 0x85)},
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def loggable(text: object, limit: int = 300) -> str:
    """Text a peer chose (a mechanism name, an error's text), fit for one log line: line
    breaks and other control characters escaped, so that nobody can forge log lines, and
    at most ``limit`` characters."""
    escaped = str(text).translate(_UNPRINTABLE)
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


class StreamCondition(StrEnum):
    """Stream error conditions (RFC 6120 §4.9.3)."""

    BAD_FORMAT = "bad-format"  # §4.9.3.1
    BAD_NAMESPACE_PREFIX = "bad-namespace-prefix"  # §4.9.3.2
    CONFLICT = "conflict"  # §4.9.3.3
    CONNECTION_TIMEOUT = "connection-timeout"  # §4.9.3.4
    HOST_GONE = "host-gone"  # §4.9.3.5
    HOST_UNKNOWN = "host-unknown"  # §4.9.3.6
    IMPROPER_ADDRESSING = "improper-addressing"  # §4.9.3.7
    INTERNAL_SERVER_ERROR = "internal-server-error"  # §4.9.3.8
    INVALID_FROM = "invalid-from"  # §4.9.3.9
    INVALID_NAMESPACE = "invalid-namespace"  # §4.9.3.10
    INVALID_XML = "invalid-xml"  # §4.9.3.11
    NOT_AUTHORIZED = "not-authorized"  # §4.9.3.12
    NOT_WELL_FORMED = "not-well-formed"  # §4.9.3.13
    POLICY_VIOLATION = "policy-violation"  # §4.9.3.14
    REMOTE_CONNECTION_FAILED = "remote-connection-failed"  # §4.9.3.15
    RESET = "reset"  # §4.9.3.16
    RESOURCE_CONSTRAINT = "resource-constraint"  # §4.9.3.17
    RESTRICTED_XML = "restricted-xml"  # §4.9.3.18
    SEE_OTHER_HOST = "see-other-host"  # §4.9.3.19
    SYSTEM_SHUTDOWN = "system-shutdown"  # §4.9.3.20
    UNDEFINED_CONDITION = "undefined-condition"  # §4.9.3.21
    UNSUPPORTED_ENCODING = "unsupported-encoding"  # §4.9.3.22
    UNSUPPORTED_FEATURE = "unsupported-feature"  # §4.9.3.23
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"  # §4.9.3.24
    UNSUPPORTED_VERSION = "unsupported-version"  # §4.9.3.25


class ErrorType(StrEnum):
    """What the sender should do about a stanza error (RFC 6120 §8.3.2)."""

    AUTH = "auth"
    CANCEL = "cancel"
    CONTINUE = "continue"
    MODIFY = "modify"
    WAIT = "wait"


class StanzaCondition(StrEnum):
    """Stanza error conditions (RFC 6120 §8.3.3) with their usual type."""

    BAD_REQUEST = "bad-request"  # §8.3.3.1
    CONFLICT = "conflict"  # §8.3.3.2
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"  # §8.3.3.3
    FORBIDDEN = "forbidden"  # §8.3.3.4
    GONE = "gone"  # §8.3.3.5
    INTERNAL_SERVER_ERROR = "internal-server-error"  # §8.3.3.6
    ITEM_NOT_FOUND = "item-not-found"  # §8.3.3.7
    JID_MALFORMED = "jid-malformed"  # §8.3.3.8
    NOT_ACCEPTABLE = "not-acceptable"  # §8.3.3.9
    NOT_ALLOWED = "not-allowed"  # §8.3.3.10
    NOT_AUTHORIZED = "not-authorized"  # §8.3.3.11
    POLICY_VIOLATION = "policy-violation"  # §8.3.3.12
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"  # §8.3.3.13
    REDIRECT = "redirect"  # §8.3.3.14
    REGISTRATION_REQUIRED = "registration-required"  # §8.3.3.15
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"  # §8.3.3.16
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"  # §8.3.3.17
    RESOURCE_CONSTRAINT = "resource-constraint"  # §8.3.3.18
    SERVICE_UNAVAILABLE = "service-unavailable"  # §8.3.3.19
    SUBSCRIPTION_REQUIRED = "subscription-required"  # §8.3.3.20
    UNDEFINED_CONDITION = "undefined-condition"  # §8.3.3.21
    UNEXPECTED_REQUEST = "unexpected-request"  # §8.3.3.22

    @property
    def default_type(self) -> ErrorType:
        """The type RFC 6120 §8.3.3 shows in each condition's example."""
        return _DEFAULT_TYPES.get(self, ErrorType.CANCEL)


_DEFAULT_TYPES = {
    StanzaCondition.BAD_REQUEST: ErrorType.MODIFY,
    StanzaCondition.FORBIDDEN: ErrorType.AUTH,
    StanzaCondition.GONE: ErrorType.MODIFY,
    StanzaCondition.JID_MALFORMED: ErrorType.MODIFY,
    StanzaCondition.NOT_ACCEPTABLE: ErrorType.MODIFY,
    StanzaCondition.NOT_AUTHORIZED: ErrorType.AUTH,
    StanzaCondition.POLICY_VIOLATION: ErrorType.MODIFY,
    StanzaCondition.RECIPIENT_UNAVAILABLE: ErrorType.WAIT,
    StanzaCondition.REDIRECT: ErrorType.MODIFY,
    StanzaCondition.REGISTRATION_REQUIRED: ErrorType.AUTH,
    StanzaCondition.REMOTE_SERVER_TIMEOUT: ErrorType.WAIT,
    StanzaCondition.RESOURCE_CONSTRAINT: ErrorType.WAIT,
    StanzaCondition.SUBSCRIPTION_REQUIRED: ErrorType.AUTH,
    StanzaCondition.UNEXPECTED_REQUEST: ErrorType.WAIT,
    StanzaCondition.INTERNAL_SERVER_ERROR: ErrorType.WAIT,
}


class XmppError(Exception):
    """Base of every XMPP failure: ``condition`` goes on the wire, ``text`` optionally too."""

    def __init__(self, condition: StrEnum, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text


class StreamError(XmppError):
    """The stream cannot go on (RFC 6120 §4.9): send <stream:error/> and close."""

    condition: StreamCondition

    def __init__(self, condition: StreamCondition, text: str = "") -> None:
        super().__init__(condition, text)


class StanzaError(XmppError):
    """One stanza is refused (RFC 6120 §8.3): answer it with an error of ``type``;
    ``specific`` names an application-specific condition (§8.3.2) as ``{namespace}tag``."""

    condition: StanzaCondition

    def __init__(
        self,
        condition: StanzaCondition,
        text: str = "",
        type: ErrorType | None = None,
        *,
        specific: str = "",
    ) -> None:
        super().__init__(condition, text)
        self.type = type or condition.default_type
        self.specific = specific
