"""Personal eventing (XEP-0163 PEP on XEP-0060 pubsub): the nodes of each account.

``model`` and ``caps`` are sans-IO rules; ``service`` is the feature the router calls.
"""

from heron.xmpp.pep.model import Limits, PepStore

__all__ = ["Limits", "PepStore"]
