"""Kamailio's ``subscriber`` table (auth_db), and its ``location`` table
(:mod:`heron.importers.location`), on SQLite as ``kamdbctl`` makes it, MySQL or PostgreSQL.

A row keeps ``ha1`` = MD5(username:domain:password), ``ha1b`` =
MD5(username@domain:domain:password), and the password itself unless kamctlrc's
STORE_PLAINTEXT_PW=0. With the password the account gets every secret; with the
hashes only, its SIP MD5 secret. The HA1 binds the realm: users of heron's SIP
domain (bare names, ``ha1``) or of another hosted domain (full address, ``ha1b``,
the names heron's SIP digest uses for them).
"""

from __future__ import annotations

import re

from heron.accounts import AccountPolicy
from heron.config import parse_address
from heron.importers.location import read_location
from heron.importers.model import Extracted, ImportedAccount
from heron.importers.tables import Source, Tables, read_tables

__all__ = ["read_kamailio"]

_HA1 = re.compile(r"[0-9a-fA-F]{32}")
MAX_PASSWORD = 1024


def read_kamailio(source: Source, policy: AccountPolicy) -> Extracted:
    """From kamdbctl's SQLite file or Kamailio's MySQL or PostgreSQL database (a URL)."""
    return read_tables(source, "Kamailio's database", ("subscriber",), lambda db: _read(db, policy))


def _read(db: Tables, policy: AccountPolicy) -> Extracted:
    extracted = Extracted()
    columns = ("username", "domain", "password", "ha1", "ha1b")
    rows = db.rows("subscriber", columns, order_by=("domain", "username"))
    for row in rows:
        user, realm = str(row["username"] or ""), str(row["domain"] or "")
        what = f"subscriber {user}@{realm}"
        password = str(row["password"] or "")
        main = realm == policy.sip_domain
        try:
            local, domain = parse_address(f"{user}@{policy.domain if main else realm}")
        except ValueError as exc:
            extracted.skip(what, str(exc))
            continue
        if domain not in policy.account_domains:
            extracted.skip(what, f"domain {domain} is not served here")
            continue
        if password:
            if len(password) > MAX_PASSWORD:
                extracted.skip(what, f"a password of more than {MAX_PASSWORD} characters")
                continue
            extracted.add(ImportedAccount(local, domain, what, password=password))
            continue
        identity = policy.identity(local, domain)
        if identity.sip_realm != realm:
            extracted.skip(
                what, f"its HA1 hashes realm {realm!r}, heron's is {identity.sip_realm!r}"
            )
            continue
        # ha1 hashes the bare name, ha1b user@domain: whichever heron's digest uses.
        ha1 = row["ha1"] if identity.sip_user.lower() == user.lower() else row["ha1b"]
        if isinstance(ha1, str) and _HA1.fullmatch(ha1.strip()):
            extracted.add(ImportedAccount(local, domain, what, sip_ha1_md5=ha1.strip().lower()))
        else:
            extracted.skip(what, "neither a password nor an MD5 HA1 to import")
    read_location(db, policy, extracted)
    return extracted
