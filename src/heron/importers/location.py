"""Kamailio's ``location`` table (usrloc with ``db_mode`` set): the phones registered when
the switch happens, so calls reach them before they next register with heron.

Only bindings that can still work come over: live ones (``expires`` after now; Kamailio
writes its local time, as DATETIME without a zone) of users of heron's SIP domain, over
UDP. A TCP, TLS or WebSocket binding names a connection that ended with Kamailio: the phone
registers again on its own. The packet source is ``received`` when Kamailio's NAT handling
kept one, else the Contact's own address, which is where Kamailio would have sent.
"""

from __future__ import annotations

import time
from datetime import datetime

from heron.accounts import AccountPolicy
from heron.config import parse_address
from heron.importers.model import Extracted
from heron.importers.tables import Row, Tables
from heron.sip.errors import SipError
from heron.sip.registrar import Binding, BindingSource
from heron.sip.uri import SipUri, parse_uri

__all__ = ["MAX_TEXT", "read_location"]

_COLUMNS = (
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "user_agent",
    "socket",
    "instance",
    "reg_id",
)
_DEFAULT_PORT = 5060
MAX_TEXT = 1024
"""Characters of a column heron takes (Kamailio's own are at most 512, but SQLite keeps
whatever was written)."""
MAX_HOST = 255
_SHOWN = 120
"""Characters of a contact a report line shows."""


def _stamp(value: object) -> float:
    """A DATETIME column (a string on SQLite) as Unix time, read as the local time."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.timestamp()


def _source(row: Row, contact: SipUri) -> BindingSource | str:
    """Where requests for the binding go, or why none can."""
    transport = str(row["socket"] or "udp:").partition(":")[0].lower() or "udp"
    received = str(row["received"] or "")
    target = parse_uri(received) if received else contact
    if not isinstance(target, SipUri):
        return f"received {received!r} is not a SIP URI"
    if len(target.host) > MAX_HOST:
        return f"a host of more than {MAX_HOST} characters"
    transport = str(target.params.get("transport") or transport).lower()
    if transport != "udp":
        return f"a {transport} binding: its connection ended with Kamailio"
    return BindingSource("udp", target.host.strip("[]"), target.port or _DEFAULT_PORT)


def _binding(row: Row, aor: str) -> Binding | str:
    if any(isinstance(value, str) and len(value) > MAX_TEXT for value in row.values()):
        return f"a value of more than {MAX_TEXT} characters"
    contact = str(row["contact"] or "")
    uri = parse_uri(contact)
    if not isinstance(uri, SipUri):
        return "the contact is not a SIP URI"
    source = _source(row, uri)
    if isinstance(source, str):
        return source
    q = float(row["q"]) if row["q"] is not None else -1.0
    reg_id = int(row["reg_id"] or 0)
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=_stamp(row["expires"]),
        q=q if q >= 0 else None,
        call_id=str(row["callid"] or ""),
        cseq=int(row["cseq"] or 0),
        received=source,
        updated_at=_stamp(row["last_modified"]),
        path=tuple(p.strip() for p in str(row["path"] or "").split(",") if p.strip()),
        instance=str(row["instance"]) if row["instance"] and reg_id else None,
        reg_id=reg_id or None,
        user_agent=str(row["user_agent"]) if row["user_agent"] else None,
    )


def read_location(db: Tables, policy: AccountPolicy, extracted: Extracted) -> None:
    """Add the live UDP bindings of ``location``, when there is such a table, to
    ``extracted``; say why each other row is left out."""
    if "location" not in db.names():
        return
    now = time.time()
    for row in db.rows("location", _COLUMNS, order_by=("username", "contact")):
        user, realm = str(row["username"] or ""), str(row["domain"] or policy.sip_domain)
        what = f"location {user}@{realm} {str(row['contact'])[:_SHOWN]!r}"
        if realm != policy.sip_domain:
            extracted.skip(what, f"heron registers users of its SIP domain {policy.sip_domain}")
            continue
        try:
            local, domain = parse_address(f"{user}@{policy.domain}")
            if _stamp(row["expires"]) <= now:
                extracted.skip(what, "expired")
                continue
            aor = f"{policy.identity(local, domain).sip_user.lower()}@{policy.sip_domain}"
            binding = _binding(row, aor)
        except (SipError, ValueError, TypeError) as exc:
            extracted.skip(what, str(exc))
            continue
        if isinstance(binding, str):
            extracted.skip(what, binding)
        else:
            extracted.bindings.setdefault(f"{local}@{domain}", []).append(binding)
