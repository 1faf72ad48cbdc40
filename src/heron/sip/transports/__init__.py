"""SIP transports: UDP, TCP, TLS and WebSocket, behind one flow table (RFC 3261 §18, RFC 7118)."""

from heron.sip.transports.flows import Flow, FlowTable, Source
from heron.sip.transports.stream import SipStream
from heron.sip.transports.udp import SipDatagrams
from heron.sip.transports.websocket import websocket_handler

__all__ = ["Flow", "FlowTable", "SipDatagrams", "SipStream", "Source", "websocket_handler"]
