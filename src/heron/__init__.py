"""heron: one service for STUN/TURN, SIP, XMPP and a WebRTC web phone."""

from heron import compiled

__version__ = "0.1.0"

__all__ = ["__version__"]

compiled.install()
