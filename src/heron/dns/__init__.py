"""DNS for every protocol: the record types and RFC 2782 ordering (:mod:`.records`, sans-IO)
and the one resolver the configuration's ``dns.servers`` names (:mod:`.resolver`, dnspython).

SIP (RFC 3263) and XMPP (RFC 6120 §3.2) each keep their own procedure as a generator of
:class:`~heron.dns.records.Query` and hand it to :meth:`~heron.dns.resolver.Resolver.run`;
neither imports the other. The submodules are imported by name, so a core that needs only
the records never loads dnspython.
"""

__all__: list[str] = []
