"""Benchmark: heron's TURN server against coturn (``python -m bench.turn``, see ``__main__``).

Two loads, the same for both servers: ChannelData relayed through channels to
an echo peer (``relay``), and bursts of concurrent aioice allocations
(``burst``). Figures are rates and the server's CPU time per unit of work,
the steadier of the two on a shared machine (``measure``, ``proc``).
"""
