"""The TURN server's asyncio helpers that are not sockets: account keys, and the guess
throttle shared with the main process."""
