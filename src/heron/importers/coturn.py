"""coturn's user database (``turndb``, SQLite; the same tables in PostgreSQL/MySQL).

``turnusers_lt`` holds each long-term user's key, MD5(name:realm:password) in hex
(RFC 8489 §9.2.2; 64 hex digits when coturn ran with SHA-256 keys): it becomes the
account's TURN key, and only works for the name and realm it hashes, so heron's TURN
realm must be coturn's. ``admin_user`` holds coturn's web admins: they become heron
administrators, but their password hash is coturn's own and cannot be imported.
"""

from __future__ import annotations

import re

from heron.accounts import AccountPolicy
from heron.config import parse_address
from heron.importers.model import Extracted, ImportedAccount
from heron.importers.tables import Source, Tables, read_tables

__all__ = ["read_coturn"]

_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}")


def _account_of(name: str, policy: AccountPolicy) -> tuple[str, str] | str:
    """The heron account a coturn user name is, or why there is none."""
    address = name if "@" in name else f"{name}@{policy.domain}"
    try:
        local, domain = parse_address(address)
    except ValueError as exc:
        return str(exc)
    if domain not in policy.account_domains:
        return f"domain {domain} is not served here"
    return local, domain


def read_coturn(source: Source, policy: AccountPolicy) -> Extracted:
    """From ``turndb`` (SQLite) or coturn's PostgreSQL or MySQL database (a URL)."""
    tables = ("turnusers_lt", "admin_user")
    return read_tables(source, "coturn's turndb", tables, lambda db: _read(db, policy))


def _read(db: Tables, policy: AccountPolicy) -> Extracted:
    extracted = Extracted()
    for row in db.rows("turnusers_lt", ("realm", "name", "hmackey"), order_by=("name",)):
        realm, name, key = str(row["realm"] or ""), str(row["name"] or ""), row["hmackey"]
        what = f"turnusers_lt {name!r} (realm {realm!r})"
        if realm != policy.turn_realm:
            ours = policy.turn_realm
            extracted.skip(what, f"its key hashes realm {realm!r}, heron's is {ours!r}")
            continue
        account = _account_of(name, policy)
        if isinstance(account, str):
            extracted.skip(what, account)
            continue
        local, domain = account
        if policy.identity(local, domain).turn_user != name:
            turn_user = policy.identity(local, domain).turn_user
            extracted.skip(what, f"its key hashes the name {name!r}, heron's is {turn_user!r}")
            continue
        if not isinstance(key, str) or not _HEX_KEY.fullmatch(key.strip()):
            extracted.skip(what, "hmackey is not an MD5 or SHA-256 key in hex")
            continue
        raw = bytes.fromhex(key.strip())
        extracted.add(
            ImportedAccount(
                local,
                domain,
                what,
                turn_key_md5=raw if len(raw) == 16 else None,
                turn_key_sha256=raw if len(raw) == 32 else None,
            )
        )
    for row in db.rows("admin_user", ("name",), order_by=("name",)):
        name = str(row["name"] or "")
        what = f"admin_user {name!r}"
        account = _account_of(name, policy)
        if isinstance(account, str):
            extracted.skip(what, account)
            continue
        local, domain = account
        extracted.add(ImportedAccount(local, domain, what, admin=True))
        extracted.notes.append(
            f"{local}@{domain}: administrator; coturn's admin password hash cannot be "
            "imported (heron user passwd sets one)"
        )
    return extracted
