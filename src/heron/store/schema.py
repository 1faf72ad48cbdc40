"""Tables, as the application sees them; migrations/ creates and upgrades them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

__all__ = ["accounts", "metadata"]

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("local", String(64), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("password_hash", String(255), nullable=False),
    Column("sip_realm", String(253), nullable=False),
    Column("sip_ha1_md5", String(32), nullable=False),
    Column("sip_ha1_sha256", String(64), nullable=False),
    Column("turn_realm", String(253), nullable=False),
    Column("turn_key_md5", LargeBinary(16), nullable=False),
    Column("turn_key_sha256", LargeBinary(32), nullable=False),
    Column("scram_salt", LargeBinary(64), nullable=False),
    Column("scram_iterations", Integer, nullable=False),
    Column("scram_sha1_stored_key", LargeBinary(20), nullable=False),
    Column("scram_sha1_server_key", LargeBinary(20), nullable=False),
    Column("scram_sha256_stored_key", LargeBinary(32), nullable=False),
    Column("scram_sha256_server_key", LargeBinary(32), nullable=False),
    Column("scram_sha512_stored_key", LargeBinary(64), nullable=False),
    Column("scram_sha512_server_key", LargeBinary(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("local", "domain", name="uq_accounts_address"),
)
