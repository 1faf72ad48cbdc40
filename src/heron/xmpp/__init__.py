"""XMPP (RFC 6120, RFC 6121) and group chat (XEP-0045): what Prosody does.

Layers inside this package, imports pointing down only:

- sans-IO cores: ``jid``, ``errors``, ``stanza``, ``xml`` (incremental parser
  and serializer), ``sasl``, ``stream`` (c2s negotiation), the subscription
  table, the MUC room logic and ``s2s`` (the server-to-server stream: dialback,
  SASL EXTERNAL). Bytes and elements in, events and bytes out.
- features: roster, presence, offline messages, disco, vCard, blocking,
  external services, MUC service; they reach the store through Protocols.
- ``server``: the asyncio listeners (5222 STARTTLS, 5223 direct TLS) and the
  WebSocket route; the only modules doing I/O.

Stanzas are :class:`xml.etree.ElementTree.Element` trees with Clark-notation
tags (``{jabber:client}message``): the stdlib type every feature and test can
build and inspect, produced by our hardened parser, never by ``ElementTree``'s.
"""
