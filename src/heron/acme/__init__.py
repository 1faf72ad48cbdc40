"""ACME (RFC 8555) certificates for every name heron serves, proven by TLS-ALPN-01.

``messages`` is the sans-IO core (JWS, the CA's objects, the RFC 8737 challenge
certificate), ``renewal`` the rule for when to order; ``client`` posts to the CA on
aiohttp, ``alpn`` answers validation on the port-443 mux, ``files`` keeps the keys and
the certificate in the data directory and ``component`` runs it all in ``heron serve``.

Why a client of heron's own rather than certbot's ``acme`` package: that one is
synchronous (requests, pyOpenSSL), so it would need a thread per order and two more
HTTP stacks, while the few requests one order takes fit in ~550 lines on the
``cryptography`` and ``aiohttp`` heron has already.
"""

from heron.acme.component import RENEW_COMMAND, STATUS_VIEW, AcmeComponent, build_acme
from heron.acme.files import placeholder

__all__ = ["RENEW_COMMAND", "STATUS_VIEW", "AcmeComponent", "build_acme", "placeholder"]
