"""Sockets for the TURN server: UDP listeners and relays, TCP and TLS client streams."""
