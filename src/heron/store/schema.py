"""Tables, as the application sees them; migrations/ creates and upgrades them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["accounts", "metadata", "sip_bindings"]

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

# SIP location bindings (heron.sip.registrar.Binding); times are Unix seconds.
sip_bindings = Table(
    "sip_bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("aor", String(320), nullable=False),
    Column("contact", Text, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("q", Double, nullable=True),
    Column("call_id", Text, nullable=False),
    Column("cseq", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("instance", Text, nullable=True),
    Column("reg_id", Integer, nullable=True),
    Column("received_transport", String(16), nullable=False),
    Column("received_host", String(255), nullable=False),
    Column("received_port", Integer, nullable=False),
    Column("flow", Text, nullable=False),
    Column("user_agent", Text, nullable=True),
    Column("updated_at", Double, nullable=False),
    Index("ix_sip_bindings_aor", "aor"),
    Index("ix_sip_bindings_expires_at", "expires_at"),
)
