"""State the SIP processes of one domain share through Redis (``redis.url``).

With Redis, SIP runs in ``sip.workers`` processes per node and on as many nodes as
share the database and Redis; without it, in one process with everything in memory.

    redis.py     Shared: the connection, heron's key prefix, one-line errors
    bus.py       Bus: pub/sub between SIP processes (a channel each, one for all)
    location.py  SharedLocation: bindings by AOR in a hash, changes announced on the bus
    guesses.py   SharedGuesses: the guess throttle's waits and known devices
    writer.py    SetWriter: binding sets to Redis and the bus, batched per loop turn
"""

from heron.cluster.bus import Bus
from heron.cluster.guesses import SharedGuesses
from heron.cluster.location import SharedLocation
from heron.cluster.redis import Shared
from heron.cluster.writer import SetWriter

__all__ = ["Bus", "SetWriter", "Shared", "SharedGuesses", "SharedLocation"]
