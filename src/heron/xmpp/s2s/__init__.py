"""Server-to-server XMPP (RFC 6120 §3.2, §13.7; XEP-0368, XEP-0178, XEP-0220)."""

__all__: list[str] = []
