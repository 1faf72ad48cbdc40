"""heron: one service for STUN/TURN, SIP, XMPP and a WebRTC web phone."""

__version__ = "0.1.0"

__all__ = ["__version__"]
