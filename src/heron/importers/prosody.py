"""Prosody's data directory, internal storage (``storage = "internal"``, the default).

Each record is ``DATA/<host>/<store>/<user>.dat``, names %-encoded, a Lua table read
by :mod:`heron.importers.lua` (never run). ``accounts`` hold SCRAM-SHA-1 keys
(``internal_hashed``: hex ``stored_key``/``server_key``, ``salt``,
``iteration_count``) or the password itself (``internal_plain``); ``roster`` holds
each contact's name, groups and subscription. The SCRAM keys keep their salt and
count, so clients log in with their old passwords over SCRAM-SHA-1; the other
secrets come at a PLAIN or web login, or the next password change.
"""

from __future__ import annotations

import re
from pathlib import Path

from heron.accounts import AccountPolicy, ScramHash, ScramKeys
from heron.config import parse_address
from heron.importers.lua import LuaDataError, LuaLimits, LuaTable, parse_lua_data
from heron.importers.model import Extracted, ImportedAccount, SourceError
from heron.xmpp.errors import StanzaError
from heron.xmpp.features.roster import MAX_GROUP, MAX_GROUPS, MAX_ITEMS, MAX_NAME, RosterItem
from heron.xmpp.jid import parse_jid
from heron.xmpp.subscription import Subscription

__all__ = ["MAX_ITERATIONS", "read_prosody"]

MAX_ITERATIONS = 1_000_000
"""An imported count is what a SASL PLAIN login of the account costs heron: a hostile
data file must not make each login spend minutes."""
MAX_SALT = 64
"""Bytes of SCRAM salt the account store keeps; Prosody's are 36 (a UUID)."""
_LIMITS = LuaLimits()
_ENCODED = re.compile(r"%([0-9a-fA-F]{2})")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_OTHER_STORES = {
    "vcard": "vCards",
    "offline": "offline messages",
    "persistent": "persistent rooms",
    "config": "room configurations",
    "private": "private XML",
    "pep": "PEP nodes",
    "archive": "message archives",
}


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


def read_prosody(path: Path, policy: AccountPolicy) -> Extracted:
    if not path.is_dir():
        raise SourceError(f"{path}: not a directory (Prosody's data_path expected)")
    extracted = Extracted()
    hosts = sorted(p for p in path.iterdir() if p.is_dir() and (p / "accounts").is_dir())
    if not hosts:
        raise SourceError(f"{path}: no HOST/accounts/ directory: not Prosody's data_path")
    for host_dir in hosts:
        host = _decode(host_dir.name)
        if host not in policy.account_domains:
            extracted.skip(f"host {host}", "not a domain heron serves")
            continue
        for file in sorted((host_dir / "accounts").glob("*.dat")):
            user = _decode(file.stem)
            what = f"{host}/accounts/{user}"
            try:
                local, domain = parse_address(f"{user}@{host}")
                record = _record(file)
            except (ValueError, UnicodeDecodeError, LuaDataError) as exc:
                extracted.skip(what, str(exc))
                continue
            password = record.get("password")
            if isinstance(password, str) and password:
                extracted.add(ImportedAccount(local, domain, what, password=password))
                continue
            keys = _scram(record)
            if isinstance(keys, str):
                extracted.skip(what, keys)
                continue
            extracted.add(ImportedAccount(local, domain, what, scram_sha1=keys))
        for file in sorted((host_dir / "roster").glob("*.dat")):
            user = _decode(file.stem)
            owner = f"{user}@{host}"
            try:
                local, domain = parse_address(owner)
                items, bad = _roster(_record(file), f"{local}@{domain}")
            except (ValueError, UnicodeDecodeError, LuaDataError) as exc:
                extracted.skip(f"{host}/roster/{user}", str(exc))
                continue
            if f"{local}@{domain}" not in extracted.accounts:
                extracted.skip(f"{host}/roster/{user}", "no account imported for it")
                continue
            extracted.rosters[f"{local}@{domain}"] = items
            if bad:
                extracted.skip(f"{host}/roster/{user}", f"{bad} unusable or excess item(s)")
        for store, what in _OTHER_STORES.items():
            if (host_dir / store).is_dir():
                extracted.notes.append(f"{host}: {what} ({store}/) are not imported yet")
    return extracted
