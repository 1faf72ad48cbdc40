"""Message Archive Management (XEP-0313 1.1, ``urn:xmpp:mam:2``) and unique stanza ids
(XEP-0359), sans-IO: what is archived, what a query asks, what the answer looks like.

The feature around it (``heron.xmpp.features.mam``) reads and writes the store; here
are the rules, all pure functions over elements:

- :func:`archivable`: Prosody's mod_mam choice of messages: chat and normal messages
  with a body (or an XEP-0380 encryption marker), never errors, headlines, groupchat
  (a room keeps its own archive), carbons or MAM results, nor what a client asked not
  to be stored (XEP-0334 ``<no-store/>``, ``<no-permanent-store/>``).
- :func:`parse_query`: the data form (§4.1: ``with``, ``start``, ``end``; the
  ``#extended`` fields ``before-id``, ``after-id`` and ``ids``) and XEP-0059 paging
  (``<max/>``, ``<after/>``, ``<before/>``), with ``<flip-page/>``. A ``max`` larger
  than the server's page limit is cut to it (XEP-0059 §2.1 lets the server return
  fewer); anything malformed is bad-request.
- :func:`result` and :func:`fin`: §4.2's forwarded results and the closing ``<fin/>``.
  ``<first/>`` carries no ``index``: counting the rows before a page costs a query,
  and clients (slixmpp's RSM iterator among them) page by ids anyway.
- :class:`Prefs`: §6's ``always``/``never``/``default``.

Errors are :class:`heron.xmpp.errors.StanzaError` with the condition to answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.stanza import NS, qname

__all__ = [
    "EXTENDED",
    "MAM",
    "RSM",
    "SID",
    "ArchivedItem",
    "Default",
    "Page",
    "Prefs",
    "Query",
    "archivable",
    "fin",
    "parse_prefs",
    "parse_query",
    "query_form",
    "result",
    "stamp_id",
    "strip_ids",
    "xep0082",
]

MAM = "urn:xmpp:mam:2"  # XEP-0313 §3
EXTENDED = "urn:xmpp:mam:2#extended"  # XEP-0313 §7.1.1: before-id, after-id, ids
SID = "urn:xmpp:sid:0"  # XEP-0359 §4
RSM = "http://jabber.org/protocol/rsm"  # XEP-0059

MAX_IDS = 250
"""Ids in one ``ids`` field (§4.1.4); a client asks for a page's worth, not an archive."""
MAX_PREF_JIDS = 200
"""JIDs in each of the ``always`` and ``never`` lists (§6.1)."""
MAX_ID_LENGTH = 128
"""Characters in an archive id, a query id or an RSM key a client sends back."""

_MESSAGE = qname(NS.CLIENT, "message")
_BODY = qname(NS.CLIENT, "body")
_X = qname(NS.DATA, "x")
_FIELD = qname(NS.DATA, "field")
_VALUE = qname(NS.DATA, "value")
_SET = qname(RSM, "set")
_STANZA_ID = qname(SID, "stanza-id")
_NOT_STORED = frozenset({qname(NS.HINTS, "no-store"), qname(NS.HINTS, "no-permanent-store")})
_NOT_ARCHIVED = frozenset(
    {
        qname(NS.CARBONS, "sent"),  # XEP-0280 §7, §8: a copy of what is archived already
        qname(NS.CARBONS, "received"),
        qname(MAM, "result"),  # an archive's answer is no conversation
    }
)
_FIELDS = frozenset({"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"})


class Default(StrEnum):
    """§6.1: what is archived for a JID on neither list."""

    ALWAYS = "always"
    NEVER = "never"
    ROSTER = "roster"  # only contacts in the roster


@dataclass(frozen=True, slots=True)
class Prefs:
    """§6: the owner's archiving preferences, by bare JID. Prosody's default: always."""

    default: Default = Default.ALWAYS
    always: frozenset[JID] = frozenset()
    never: frozenset[JID] = frozenset()

    def archives(self, other: JID, in_roster: bool | None) -> bool:
        """Whether a message with ``other`` is archived; ``in_roster`` matters only for
        :attr:`Default.ROSTER` (None: not looked up). ``never`` wins over ``always``."""
        bare = other.bare
        if bare in self.never:
            return False
        if bare in self.always:
            return True
        if self.default is Default.ROSTER:
            return bool(in_roster)
        return self.default is Default.ALWAYS

    def element(self) -> Element:
        prefs = Element(qname(MAM, "prefs"), {"default": self.default.value})
        for name, jids in (("always", self.always), ("never", self.never)):
            holder = SubElement(prefs, qname(MAM, name))
            for jid in sorted(jids, key=str):
                SubElement(holder, qname(MAM, "jid")).text = str(jid)
        return prefs

    def to_json(self) -> str:
        return json.dumps(
            {
                "default": self.default.value,
                "always": sorted(map(str, self.always)),
                "never": sorted(map(str, self.never)),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Prefs:
        data = json.loads(text)
        return cls(
            Default(data["default"]),
            frozenset(parse_jid(jid) for jid in data["always"]),
            frozenset(parse_jid(jid) for jid in data["never"]),
        )


def parse_prefs(element: Element) -> Prefs:
    """§6.1: a ``<prefs/>`` set; bad-request for an unknown default or too many JIDs."""
    try:
        default = Default(element.get("default", ""))
    except ValueError:
        raise StanzaError(
            StanzaCondition.BAD_REQUEST, "default is always, never or roster"
        ) from None
    lists: dict[str, frozenset[JID]] = {}
    for name in ("always", "never"):
        holder = element.find(qname(MAM, name))
        jids = [] if holder is None else holder.findall(qname(MAM, "jid"))
        if len(jids) > MAX_PREF_JIDS:
            raise StanzaError(StanzaCondition.POLICY_VIOLATION, f"at most {MAX_PREF_JIDS} JIDs")
        lists[name] = frozenset(parse_jid((jid.text or "").strip()).bare for jid in jids)
    return Prefs(default, lists["always"], lists["never"])


def archivable(message: Element) -> bool:
    """Whether ``message`` goes to its owner's archive (see the module docstring)."""
    if message.tag != _MESSAGE:
        return False
    if message.get("type", "normal") not in ("normal", "chat"):
        return False  # error, groupchat, headline, or an unknown type (bounced elsewhere)
    tags = {child.tag for child in message}
    if tags & _NOT_STORED or tags & _NOT_ARCHIVED:
        return False
    return _BODY in tags or qname(NS.EME, "encryption") in tags


def strip_ids(message: Element, by: JID) -> None:
    """XEP-0359 §3.3: a stanza-id claiming to be ``by``'s, not written by this server, is
    removed, so that nobody can forge an archive id a client would trust."""
    for child in message.findall(_STANZA_ID):
        if child.get("by") == str(by):
            message.remove(child)


def stamp_id(message: Element, by: JID, id_: str) -> None:
    """XEP-0359 §3: ``by``'s archive id of ``message``, any forged one removed first."""
    strip_ids(message, by)
    SubElement(message, _STANZA_ID, {"id": id_, "by": str(by)})


def xep0082(stamp: float) -> str:
    """An XEP-0082 DateTime in UTC with milliseconds, as XEP-0203 delays carry it."""
    moment = datetime.fromtimestamp(stamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moment(text: str) -> float:
    """XEP-0082 DateTime to Unix seconds; bad-request for anything else."""
    text = text.strip()
    if len(text) > 64 or "T" not in text:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "start and end are XEP-0082 DateTimes")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StanzaError(
            StanzaCondition.BAD_REQUEST, "start and end are XEP-0082 DateTimes"
        ) from None
    if moment.tzinfo is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "a DateTime needs its time zone")
    return moment.timestamp()


def _key(text: str | None, what: str) -> str:
    text = (text or "").strip()
    if not text or len(text) > MAX_ID_LENGTH:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"{what}: not an archive id")
    return text


@dataclass(frozen=True, slots=True)
class Query:
    """One archive query (§4), paged (XEP-0059). The store applies every filter;
    ``last`` says the page is taken from the newest end (an RSM ``<before/>``)."""

    queryid: str | None = None
    with_: JID | None = None
    start: float | None = None
    end: float | None = None
    after: tuple[str, ...] = ()
    """Results come after each of these ids (RSM ``<after/>``, ``after-id``)."""
    before: tuple[str, ...] = ()
    """Results come before each of these ids (RSM ``<before/>``, ``before-id``)."""
    ids: tuple[str, ...] = ()
    """With any, only these (``ids``)."""
    max: int = 50
    last: bool = False
    flip: bool = False


def _form_values(form: Element) -> dict[str, list[str]]:
    if form.get("type", "submit") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "the query form is of type submit")
    values: dict[str, list[str]] = {}
    for item in form.findall(_FIELD):
        var = item.get("var", "")
        if var not in _FIELDS or var in values:
            # §4.1.5: a field the server does not know is refused, not ignored.
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown or repeated field {var!r}")
        values[var] = [(value.text or "").strip() for value in item.findall(_VALUE)]
        if var != "ids" and len(values[var]) > 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"{var} takes one value")
    form_type = values.pop("FORM_TYPE", [MAM])
    if form_type != [MAM]:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"FORM_TYPE is {MAM}")
    return {var: found for var, found in values.items() if found and found != [""]}


def parse_query(query: Element, page_limit: int) -> Query:
    """The ``<query/>`` of an iq set (§4), with ``max`` cut to ``page_limit``."""
    queryid = query.get("queryid")
    if queryid is not None and len(queryid) > MAX_ID_LENGTH:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "queryid too long")
    form = query.find(_X)
    fields = _form_values(form) if form is not None else {}
    with_ = parse_jid(fields["with"][0]) if "with" in fields else None
    start = _moment(fields["start"][0]) if "start" in fields else None
    end = _moment(fields["end"][0]) if "end" in fields else None
    after = [_key(fields["after-id"][0], "after-id")] if "after-id" in fields else []
    before = [_key(fields["before-id"][0], "before-id")] if "before-id" in fields else []
    ids = tuple(_key(value, "ids") for value in fields.get("ids", ()))
    if len(ids) > MAX_IDS:
        raise StanzaError(StanzaCondition.POLICY_VIOLATION, f"at most {MAX_IDS} ids")
    size, last = page_limit, False
    paging = query.find(_SET)
    if paging is not None:
        text = paging.findtext(qname(RSM, "max"))
        if text is not None:
            text = text.strip()
            if not text.isdigit() or len(text) > 9:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "max is a number")
            size = min(int(text), page_limit)
        if paging.find(qname(RSM, "index")) is not None:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "page by ids, not index")
        rsm_after = paging.find(qname(RSM, "after"))
        if rsm_after is not None:
            after.append(_key(rsm_after.text, "after"))
        rsm_before = paging.find(qname(RSM, "before"))
        if rsm_before is not None:
            last = True  # XEP-0059 §2.5: an empty <before/> asks for the last page
            if (rsm_before.text or "").strip():
                before.append(_key(rsm_before.text, "before"))
    return Query(
        queryid=queryid,
        with_=with_,
        start=start,
        end=end,
        after=tuple(after),
        before=tuple(before),
        ids=ids,
        max=size,
        last=last,
        flip=query.find(qname(MAM, "flip-page")) is not None,
    )


def query_form() -> Element:
    """§4.1.1 and §7.1.1: the fields a query may use, for an iq get."""
    query = Element(qname(MAM, "query"))
    form = SubElement(query, _X, {"type": "form"})
    for var, type_ in (
        ("FORM_TYPE", "hidden"),
        ("with", "jid-single"),
        ("start", "text-single"),
        ("end", "text-single"),
        ("before-id", "text-single"),
        ("after-id", "text-single"),
        ("ids", "list-multi"),
    ):
        item = SubElement(form, _FIELD, {"var": var, "type": type_})
        if var == "FORM_TYPE":
            SubElement(item, _VALUE).text = MAM
    return query


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    """One archived message: its id, its stamp (Unix seconds) and its stored text."""

    id: str
    stamp: float
    stanza: str


@dataclass(frozen=True, slots=True)
class Page:
    """A query's answer from the store: items oldest first; ``complete`` when nothing is
    left beyond them in the direction of paging; ``count`` of the whole result set."""

    items: list[ArchivedItem] = field(default_factory=list)
    complete: bool = True
    count: int = 0


def result(
    archive: JID, to: JID, queryid: str | None, item: ArchivedItem, original: Element
) -> Element:
    """§4.2: one archived message, forwarded (XEP-0297) with its XEP-0203 delay."""
    message = Element(_MESSAGE, {"from": str(archive), "to": str(to)})
    attributes = {"id": item.id}
    if queryid is not None:
        attributes["queryid"] = queryid
    found = SubElement(message, qname(MAM, "result"), attributes)
    forwarded = SubElement(found, qname(NS.FORWARD, "forwarded"))
    SubElement(forwarded, qname(NS.DELAY, "delay"), {"stamp": xep0082(item.stamp)})
    forwarded.append(original)
    return message


def fin(page: Page, items: Iterable[ArchivedItem]) -> Element:
    """§4.3: the end of the results, with the page's first and last ids and the count."""
    shown = list(items)
    done = Element(qname(MAM, "fin"))
    if page.complete:
        done.set("complete", "true")
    paging = SubElement(done, _SET)
    if shown:
        SubElement(paging, qname(RSM, "first")).text = shown[0].id
        SubElement(paging, qname(RSM, "last")).text = shown[-1].id
    SubElement(paging, qname(RSM, "count")).text = str(page.count)
    return done
