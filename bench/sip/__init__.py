"""Benchmark: heron's SIP server against Kamailio (``python -m bench.sip``, see ``__main__``).

Two loads, the same for both servers, each a ramp of fixed-rate sipp steps:
digest REGISTERs, and authenticated calls through the server to registered
sipp UAS instances (``measure``, ``sipp``). Figures are the highest rate under
1 % failures and the server's CPU time per unit of work (``report``).
"""
