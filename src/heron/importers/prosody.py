"""Prosody's data: internal storage (``storage = "internal"``, the default) or SQL storage
on SQLite (``storage = "sql"``, its ``prosody.sqlite``).

Internally each record is ``DATA/<host>/<store>/<user>.dat``, names %-encoded, a Lua
table read by :mod:`heron.importers.lua` (never run); in SQL, one row per field.
``accounts`` hold SCRAM-SHA-1 keys (``internal_hashed``: hex ``stored_key`` and
``server_key``, ``salt``, ``iteration_count``) or the password itself
(``internal_plain``); ``roster`` holds each contact's name, groups and subscription;
``vcard`` (mod_vcard) the vCard as a serialized stanza, and ``offline`` the messages kept
for users away, an archive store (``.list`` files, or ``prosodyarchive`` rows of XML).
The SCRAM keys keep their salt and count, so clients log in with their old passwords
over SCRAM-SHA-1; the other secrets come at a PLAIN or web login, or the next
password change.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path
from typing import TypeVar
from xml.etree.ElementTree import Element

from heron.accounts import AccountPolicy, ScramHash, ScramKeys
from heron.config import parse_address
from heron.importers.lua import (
    LuaDataError,
    LuaLimits,
    LuaTable,
    LuaValue,
    parse_lua_data,
    parse_lua_items,
)
from heron.importers.model import Extracted, ImportedAccount, SourceError
from heron.importers.tables import Source, Tables, read_tables
from heron.importers.vcard4 import vcard_temp_of_vcard4
from heron.xmpp.errors import StanzaError, StreamError
from heron.xmpp.features.local import to_text
from heron.xmpp.features.roster import MAX_GROUP, MAX_GROUPS, MAX_ITEMS, MAX_NAME, RosterItem
from heron.xmpp.features.vcard import MAX_VCARD_BYTES
from heron.xmpp.jid import JID, parse_jid
from heron.xmpp.muc.model import Affiliated, Affiliation, RoomConfig, RoomRecord, Whois
from heron.xmpp.pep.avatar import (
    AVATAR_DATA,
    AVATAR_METADATA,
    VCARD4,
    VCARD4_NODE,
    avatar_of_photo,
)
from heron.xmpp.pep.model import Limits
from heron.xmpp.stanza import NS, qname
from heron.xmpp.subscription import Subscription
from heron.xmpp.xml import ElementParsed, StreamClosed, XmlStreamParser

__all__ = ["MAX_ITERATIONS", "read_prosody"]

MAX_AFFILIATIONS = 10_000
MAX_ROOM_TEXT = 1024
"""Characters of a room's name, description, password or subject heron takes."""
_AFFILIATIONS = {a.value for a in Affiliation if a is not Affiliation.NONE}

MAX_ITERATIONS = 1_000_000
"""An imported count is what a SASL PLAIN login of the account costs heron: a hostile
data file must not make each login spend minutes."""
MAX_SALT = 64
"""Bytes of SCRAM salt the account store keeps; Prosody's are 36 (a UUID)."""
_LIMITS = LuaLimits()
_ENCODED = re.compile(r"%([0-9a-fA-F]{2})")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_OTHER_STORES = {
    "private": "private XML",
    "pep": "PEP nodes other than avatars and vCard4",
    "archive": "message archives",
}


def _store_path(name: str) -> str:
    """A store's directory: its name %-encoded but for letters, digits and "_"."""
    return re.sub("[^A-Za-z0-9_]", lambda m: "".join(f"%{b:02x}" for b in m[0].encode()), name)


def _decode(name: str) -> str:
    """Prosody's datamanager writes every byte but letters and digits as %xx."""
    raw = _ENCODED.sub(lambda m: chr(int(m.group(1), 16)), name)
    return raw.encode("latin-1").decode()


def _record(path: Path) -> LuaTable:
    with path.open("rb") as file:
        data = file.read(_LIMITS.max_bytes + 1)
    value = parse_lua_data(data, _LIMITS)
    if not isinstance(value, dict):
        raise LuaDataError("the record is not a table", 0)
    return value


def _scram(record: LuaTable) -> ScramKeys | str:
    """SCRAM-SHA-1 keys from an internal_hashed record, or why they are unusable."""
    stored, server = record.get("stored_key"), record.get("server_key")
    salt, count = record.get("salt"), record.get("iteration_count")
    if not (isinstance(stored, str) and isinstance(server, str)):
        return "no stored_key/server_key"
    if not (_HEX.fullmatch(stored) and _HEX.fullmatch(server)):
        return "stored_key/server_key not in hex"
    if len(stored) != 40 or len(server) != 40:
        return "stored_key/server_key are not SHA-1 sized"
    if not isinstance(salt, str) or not 0 < len(salt.encode()) <= MAX_SALT:
        return f"salt missing or longer than {MAX_SALT} bytes"
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_ITERATIONS:
        return f"iteration_count missing or outside 1..{MAX_ITERATIONS}"
    keys = bytes.fromhex(stored), bytes.fromhex(server)
    return ScramKeys(ScramHash.SHA1, salt.encode(), count, *keys)


def _room(name: str, service: str, record: LuaTable) -> RoomRecord | str:
    """A persistent room from its ``config`` record: ``_data`` (the configuration) and
    the affiliations, top-level bare JIDs in 0.12 or ``_affiliations`` before."""
    data = record.get("_data")
    if not isinstance(data, dict):
        return "no _data table"
    if data.get("persistent") is not True:
        return "not persistent"
    try:
        room = JID.make(name, service)
    except StanzaError:
        return "not a room name heron accepts"
    older = record.get("_affiliations")
    table = older if isinstance(older, dict) else record
    affiliations = []
    for key, value in table.items():
        if not isinstance(key, str) or key.startswith("_") or value not in _AFFILIATIONS:
            continue
        try:
            jid = parse_jid(key)
        except StanzaError:
            continue
        if jid.is_bare:
            affiliations.append(Affiliated(jid, Affiliation(str(value))))
    if len(affiliations) > MAX_AFFILIATIONS:
        return f"more than {MAX_AFFILIATIONS} affiliations"

    def text(key: str, limit: int) -> str:
        value = data.get(key)
        return value[:limit] if isinstance(value, str) else ""

    def flag(key: str, default: bool) -> bool:
        value = data.get(key)
        return value if isinstance(value, bool) else default

    whois = data.get("whois")
    config = RoomConfig(
        name=text("name", MAX_ROOM_TEXT),
        description=text("description", MAX_ROOM_TEXT),
        persistent=True,
        public=not flag("hidden", False),
        members_only=flag("members_only", False),
        password=text("password", MAX_ROOM_TEXT),
        moderated=flag("moderated", False),
        whois=Whois.ANYONE if whois == "anyone" else Whois.MODERATORS,
        change_subject=flag("changesubject", False),
    )
    subject_from = text("subject_from", MAX_ROOM_TEXT)
    return RoomRecord(
        room.local,
        config,
        tuple(sorted(affiliations, key=lambda a: str(a.jid))),
        subject=text("subject", MAX_ROOM_TEXT),
        subject_nick=subject_from.partition("/")[2],
    )


_T = TypeVar("_T")


def _usable(
    records: Iterable[tuple[str, _T | str]],
    host: str,
    store: str,
    extracted: Extracted,
    *,
    imported_only: bool,
) -> Iterator[tuple[str, str, _T]]:
    """(local, domain, record) of each readable record whose user is a heron address,
    of an account this import brings when ``imported_only``; the others are skipped
    with the reason."""
    for user, record in records:
        what = f"{host}/{store}/{user}"
        try:
            local, domain = parse_address(f"{user}@{host}")
        except ValueError as exc:
            extracted.skip(what, str(exc))
            continue
        if isinstance(record, str):
            extracted.skip(what, record)
        elif imported_only and f"{local}@{domain}" not in extracted.accounts:
            extracted.skip(what, "no account imported for it")
        else:
            yield local, domain, record


Archived = tuple[Element, LuaValue, str] | None
"""An archive store's stanza, its ``when`` and its key, or None for one that cannot be
read: offline messages, and PEP items (``pep_<node>`` stores)."""
_MESSAGE = qname(NS.CLIENT, "message")


def _offline(source: _Internal | _Sql, host: str, extracted: Extracted) -> None:
    """Messages stored for users while they were away, as heron's offline store keeps
    them: the stanza's XML and its time."""
    stored = source.archive(host, "offline")
    for local, domain, items in _usable(stored, host, "offline", extracted, imported_only=True):
        owner = f"{local}@{domain}"
        messages, bad = [], 0
        for item in items:
            if item is None or item[0].tag != _MESSAGE:
                bad += 1
                continue
            stanza, when, _ = item
            stamp = float(when) if isinstance(when, int | float) and when > 0 else time.time()
            messages.append((to_text(stanza), stamp))
        extracted.offline[owner] = messages
        if bad:
            extracted.skip(f"{host}/offline/{local}", f"{bad} unusable message(s)")


def _internal_archived(item: LuaValue) -> Archived:
    if not isinstance(item, dict):
        return None
    try:
        stanza = _element(item, NS.CLIENT.value, 0)
    except ValueError:
        return None
    stanza.attrib.pop("stamp", None)  # the time it was archived, Prosody's own attribute
    return stanza, item.get("when"), str(item.get("key", ""))


def _xml_archived(value: str, when: LuaValue, key: str) -> Archived:
    """A ``prosodyarchive`` row's stanza, read by heron's restricted parser within the
    limits of a stanza on a stream: the database is not trusted more than a client."""
    parser = XmlStreamParser()
    try:
        events = parser.feed(f"<s xmlns='{NS.CLIENT.value}'>{value}</s>".encode())
    except StreamError:
        return None
    if [type(e) for e in events[1:]] != [ElementParsed, StreamClosed]:
        return None
    parsed = events[1]
    assert isinstance(parsed, ElementParsed)
    return parsed.element, when, key


_PEP_NODES = (AVATAR_DATA, AVATAR_METADATA, VCARD4_NODE)
"""The nodes Prosody 0.12's mod_vcard_legacy and mod_vcard4 keep vCards and avatars in."""
_PEP_LIMITS = Limits()
_VCARD4 = qname(VCARD4, "vcard")
_VCARD = qname(NS.VCARD, "vCard")
_PHOTO = qname(NS.VCARD, "PHOTO")


def _pep(source: _Internal | _Sql, host: str, extracted: Extracted) -> None:
    """The newest item of each of ``_PEP_NODES``, as heron's PEP keeps it; they win over
    an avatar made from a mod_vcard PHOTO (mod_vcard_legacy upgrades those). A vCard4
    is also the vcard-temp vCard of a user mod_vcard kept none for."""
    for node in _PEP_NODES:
        stored = source.archive(host, f"pep_{node}")
        for local, domain, items in _usable(stored, host, node, extracted, imported_only=True):
            what = f"{host}/pep_{node}/{local}"
            newest = items[-1] if items else None
            if newest is None or not newest[2] or len(newest[2]) > _PEP_LIMITS.max_name:
                extracted.skip(what, "no usable item")
                continue
            payload = to_text(newest[0])
            if len(payload.encode()) > _PEP_LIMITS.max_item_bytes:
                extracted.skip(what, f"larger than {_PEP_LIMITS.max_item_bytes} bytes")
                continue
            owner = f"{local}@{domain}"
            extracted.pep.setdefault(owner, {})[node] = (newest[2], payload)
            if newest[0].tag == _VCARD4 and owner not in extracted.vcards:
                vcard = to_text(vcard_temp_of_vcard4(newest[0]))
                if len(vcard.encode()) <= MAX_VCARD_BYTES:
                    extracted.vcards[owner] = vcard


def _vcards(source: _Internal | _Sql, host: str, extracted: Extracted) -> None:
    """mod_vcard's vCards, kept as heron's vcard-temp store keeps them, their PHOTO
    apart: heron serves it from the XEP-0084 avatar (XEP-0398)."""
    records = source.records(host, "vcard")
    for local, domain, record in _usable(records, host, "vcard", extracted, imported_only=True):
        owner, what = f"{local}@{domain}", f"{host}/vcard/{local}"
        try:
            vcard = _element(record, NS.VCARD, 0)
        except ValueError as exc:
            extracted.skip(what, str(exc))
            continue
        if vcard.tag != _VCARD:
            extracted.skip(what, "not a vcard-temp <vCard/>")
            continue
        photos = vcard.findall(_PHOTO)
        for photo in photos:
            vcard.remove(photo)
        text = to_text(vcard)
        if len(text.encode()) > MAX_VCARD_BYTES:
            extracted.skip(what, f"larger than {MAX_VCARD_BYTES} bytes without its PHOTO")
            continue
        extracted.vcards[owner] = text
        try:
            avatar = avatar_of_photo(photos[0]) if photos else None
        except StanzaError as exc:
            extracted.skip(f"{what} PHOTO", exc.text or "not an image")
            continue
        if avatar is None:
            continue
        data = to_text(avatar.data_item())
        if len(data.encode()) > _PEP_LIMITS.max_item_bytes:
            extracted.skip(f"{what} PHOTO", f"larger than {_PEP_LIMITS.max_item_bytes} bytes")
            continue
        extracted.pep[owner] = {
            AVATAR_DATA: (avatar.id, data),
            AVATAR_METADATA: (avatar.id, to_text(avatar.metadata_item())),
        }


_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _xml_text(value: str) -> str:
    if _NOT_XML.search(value):
        raise ValueError("a character XML cannot hold")
    return value


def _element(table: LuaTable, namespace: str, depth: int) -> Element:
    """A stanza from Prosody's serialized form: ``name``, ``attr`` (``xmlns`` the
    namespace, inherited by children without one) and positional children, elements
    or text."""
    name, attr = table.get("name"), table.get("attr", {})
    if depth > _LIMITS.max_depth or not isinstance(name, str) or not _XML_NAME.fullmatch(name):
        raise ValueError("not an element")
    if not isinstance(attr, dict):
        raise ValueError("attributes are not a table")
    xmlns = attr.get("xmlns", namespace)
    if not isinstance(xmlns, str):
        raise ValueError("a namespace that is not a string")
    element = Element(f"{{{xmlns}}}{name}")
    for key, value in attr.items():
        if key == "xmlns" or not isinstance(key, str) or not isinstance(value, str):
            continue
        if key == "xml:lang":
            element.set(f"{{{_XML_NS}}}lang", _xml_text(value))
        elif _XML_NAME.fullmatch(key):
            element.set(key, _xml_text(value))
    last: Element | None = None
    for index in range(1, len(table) + 1):
        child = table.get(index)
        if isinstance(child, str):
            if last is None:
                element.text = (element.text or "") + _xml_text(child)
            else:
                last.tail = (last.tail or "") + _xml_text(child)
        elif isinstance(child, dict):
            last = _element(child, xmlns, depth + 1)
            element.append(last)
        elif child is not None:
            raise ValueError("a child that is neither text nor an element")
    return element


def _pending(record: LuaTable) -> list[JID]:
    """Who asked to see the owner's presence and got no answer: ``[false].pending``,
    the requests' stanzas (0.12) or ``true`` (older), keyed by bare JID."""
    meta = record.get(False)
    pending = meta.get("pending") if isinstance(meta, dict) else None
    found = []
    for key in pending if isinstance(pending, dict) else {}:
        try:
            jid = parse_jid(key) if isinstance(key, str) else None
        except StanzaError:
            continue
        if jid is not None and jid.is_bare and jid.local:
            found.append(jid)
    return sorted(found, key=str)[:MAX_ITEMS]


def _roster(record: LuaTable, owner: str) -> tuple[list[RosterItem], int]:
    """The contacts of a roster record, and how many entries were unusable."""
    items: list[RosterItem] = []
    bad = 0
    for key, value in record.items():
        if not isinstance(key, str) or not isinstance(value, dict):
            continue  # [false] holds the version and pending requests
        try:
            jid = parse_jid(key)
        except StanzaError:
            bad += 1
            continue
        subscription = value.get("subscription", "none")
        name = value.get("name")
        groups = value.get("groups", {})
        if (
            not jid.is_bare
            or str(jid) == owner
            or subscription not in set(Subscription)
            or not (name is None or (isinstance(name, str) and len(name) <= MAX_NAME))
            or not isinstance(groups, dict)
            or len(groups) > MAX_GROUPS
            or not all(isinstance(g, str) and 0 < len(g) <= MAX_GROUP for g in groups)
        ):
            bad += 1
            continue
        items.append(
            RosterItem(
                jid,
                name=name or None,
                subscription=Subscription(str(subscription)),
                ask=value.get("ask") == "subscribe",
                groups=tuple(sorted(str(g) for g in groups)),
            )
        )
    items.sort(key=lambda item: str(item.jid))
    return items[:MAX_ITEMS], bad + max(0, len(items) - MAX_ITEMS)


Record = tuple[str, LuaTable | str]
"""A user's record of one store, or why it cannot be read."""


class _Internal:
    """``DATA/<host>/<store>/<user>.dat``, names %-encoded."""

    def __init__(self, path: Path) -> None:
        self._hosts = {_decode(p.name): p for p in path.iterdir() if p.is_dir()}

    def hosts(self, store: str = "accounts") -> list[str]:
        """The hosts with records of ``store``: user hosts, or MUC services ("config")."""
        return sorted(host for host, p in self._hosts.items() if (p / store).is_dir())

    def stores(self, host: str) -> set[str]:
        return {p.name for p in self._hosts[host].iterdir() if p.is_dir()}

    def archive(self, host: str, store: str) -> Iterator[tuple[str, list[Archived] | str]]:
        """``<store>/<user>.list`` files: ``item(...)`` records, the stanza, ``when`` and
        ``key``."""
        for file in sorted((self._hosts[host] / _store_path(store)).glob("*.list")):
            try:
                with file.open("rb") as opened:
                    items = parse_lua_items(opened.read(_LIMITS.max_bytes + 1))
            except (UnicodeDecodeError, LuaDataError) as exc:
                yield file.stem, str(exc)
                continue
            yield _decode(file.stem), [_internal_archived(item) for item in items]

    def records(self, host: str, store: str) -> Iterator[Record]:
        for file in sorted((self._hosts[host] / store).glob("*.dat")):
            try:
                yield _decode(file.stem), _record(file)
            except (UnicodeDecodeError, LuaDataError) as exc:
                yield file.stem, str(exc)


class _Sql:
    """mod_storage_sql's ``prosody`` table: one row per (host, user, store, key), the
    value typed ``string``, ``number``, ``boolean`` or ``json`` (tables)."""

    def __init__(self, db: Tables) -> None:
        self._db = db

    def hosts(self, store: str = "accounts") -> list[str]:
        rows = self._db.rows(
            "prosody", ("host",), where={"store": store}, order_by=("host",), distinct=True
        )
        return [str(row["host"]) for row in rows]

    def stores(self, host: str) -> set[str]:
        rows = self._db.rows("prosody", ("store",), where={"host": host}, distinct=True)
        return {str(row["store"]) for row in rows}

    def archive(self, host: str, store: str) -> Iterator[tuple[str, list[Archived] | str]]:
        """``prosodyarchive`` rows of ``store``, each stanza as XML text."""
        if "prosodyarchive" not in self._db.names():
            return
        rows = self._db.rows(
            "prosodyarchive",
            ("user", "key", "when", "type", "value"),
            where={"host": host, "store": store},
            order_by=("user", "sort_id"),
        )
        for user, group in groupby(rows, key=lambda row: str(row["user"])):
            yield (
                user,
                [
                    _xml_archived(str(row["value"]), row["when"], str(row["key"]))
                    if row["type"] == "xml"
                    else None
                    for row in group
                ],
            )

    def records(self, host: str, store: str) -> Iterator[Record]:
        rows = self._db.rows(
            "prosody",
            ("user", "key", "type", "value"),
            where={"host": host, "store": store},
            order_by=("user",),
        )
        for user, group in groupby(rows, key=lambda row: str(row["user"])):
            record: LuaTable = {}
            why = None
            for _, key, kind, value in (tuple(row.values()) for row in group):
                try:
                    decoded = _sql_value(str(kind), str(value))
                except ValueError as exc:
                    why = f"{key}: {exc}"
                    continue
                if key == "":
                    # The table's keys that are not strings, in one JSON value.
                    record.update(decoded if isinstance(decoded, dict) else {})
                else:
                    record[str(key)] = decoded
            yield user, why or record


def _sql_value(kind: str, value: str) -> LuaValue:
    if len(value) > _LIMITS.max_bytes:
        raise ValueError(f"a value of more than {_LIMITS.max_bytes} characters")
    if kind == "string":
        return value
    if kind == "boolean":
        return value == "true"
    if kind == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    if kind == "json":
        try:
            decoded = json.loads(value)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None
        return _from_json(decoded, 0)
    raise ValueError(f"unknown type {kind!r}")


def _from_json(value: object, depth: int) -> LuaValue:
    """JSON as the Lua values the internal storage would have held: util.json writes a
    table with both kinds of key as an object whose ``__array`` holds the positional
    values and ``__hash`` the other keys that are not strings, as [k1, v1, k2, v2, ...]."""
    if depth > _LIMITS.max_depth:
        raise ValueError(f"JSON nested deeper than {_LIMITS.max_depth}")
    if isinstance(value, dict):
        table: LuaTable = {
            str(k): _from_json(v, depth + 1)
            for k, v in value.items()
            if k not in ("__array", "__hash")
        }
        array, pairs = value.get("__array"), value.get("__hash")
        if isinstance(array, list):
            table.update(enumerate((_from_json(v, depth + 1) for v in array), 1))
        if isinstance(pairs, list):
            for key, item in zip(pairs[::2], pairs[1::2], strict=False):
                if isinstance(key, bool | int | float | str):
                    table[key] = _from_json(item, depth + 1)
        return table
    if isinstance(value, list):
        return {i: _from_json(v, depth + 1) for i, v in enumerate(value, 1)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("unexpected JSON value")


def read_prosody(source: Source, policy: AccountPolicy, muc_domain: str | None = None) -> Extracted:
    """From the data directory (internal storage), ``prosody.sqlite`` (SQL storage with
    SQLite; also found inside the data directory) or the database of SQL storage on
    PostgreSQL or MySQL (a URL). Persistent rooms of the MUC component ``muc_domain``
    (heron's) come along."""
    if isinstance(source, str):
        return _read_sql(source, policy, muc_domain)
    path = source
    if path.is_dir() and not any(p.is_dir() and (p / "accounts").is_dir() for p in path.iterdir()):
        if (path / "prosody.sqlite").is_file():
            path = path / "prosody.sqlite"
        else:
            raise SourceError(
                f"{path}: neither HOST/accounts/ nor prosody.sqlite: not Prosody's data_path"
            )
    if path.is_dir():
        return _extract(_Internal(path), policy, muc_domain)
    if not path.is_file():
        raise SourceError(f"{path}: no such file or directory (Prosody's data_path expected)")
    return _read_sql(path, policy, muc_domain)


def _read_sql(source: Source, policy: AccountPolicy, muc_domain: str | None) -> Extracted:
    return read_tables(
        source,
        "Prosody's SQL storage",
        ("prosody",),
        lambda db: _extract(_Sql(db), policy, muc_domain),
    )


def _extract(source: _Internal | _Sql, policy: AccountPolicy, muc_domain: str | None) -> Extracted:
    extracted = Extracted()
    for service in source.hosts("config"):
        if service != muc_domain:
            extracted.skip(f"rooms of {service}", f"heron's group-chat service is {muc_domain}")
            continue
        for name, record in source.records(service, "config"):
            room = record if isinstance(record, str) else _room(name, service, record)
            if isinstance(room, str):
                extracted.skip(f"room {name}@{service}", room)
            else:
                extracted.rooms.setdefault(service, []).append(room)
    for host in source.hosts():
        if host not in policy.account_domains:
            extracted.skip(f"host {host}", "not a domain heron serves")
            continue
        accounts = _usable(
            source.records(host, "accounts"), host, "accounts", extracted, imported_only=False
        )
        for local, domain, record in accounts:
            what = f"{host}/accounts/{local}"
            password = record.get("password")
            if isinstance(password, str) and password:
                extracted.add(ImportedAccount(local, domain, what, password=password))
                continue
            keys = _scram(record)
            if isinstance(keys, str):
                extracted.skip(what, keys)
                continue
            extracted.add(ImportedAccount(local, domain, what, scram_sha1=keys))
        rosters = _usable(
            source.records(host, "roster"), host, "roster", extracted, imported_only=True
        )
        for local, domain, record in rosters:
            owner = f"{local}@{domain}"
            items, bad = _roster(record, owner)
            extracted.rosters[owner] = items
            extracted.pending[owner] = _pending(record)
            if bad:
                extracted.skip(f"{host}/roster/{local}", f"{bad} unusable or excess item(s)")
        _vcards(source, host, extracted)
        _pep(source, host, extracted)
        _offline(source, host, extracted)
        for store in sorted(source.stores(host) & set(_OTHER_STORES)):
            extracted.notes.append(f"{host}: {_OTHER_STORES[store]} ({store}) are not imported yet")
    return extracted
