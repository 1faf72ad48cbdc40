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
from sqlalchemy.dialects.mysql import MEDIUMTEXT

__all__ = [
    "accounts",
    "archive",
    "archive_prefs",
    "metadata",
    "muc_affiliations",
    "muc_rooms",
    "offline_messages",
    "pep_items",
    "pep_nodes",
    "roster_items",
    "roster_pending",
    "roster_versions",
    "sip_bindings",
    "xmpp_blocklist",
    "xmpp_push",
    "xmpp_vcards",
]

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
    # Secrets an import could not bring, comma-separated (heron.accounts.Secret values);
    # their columns hold random placeholders. Empty for every account heron derived.
    Column("missing_secrets", String(255), nullable=False, server_default=""),
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

# XMPP group chat (XEP-0045, heron.xmpp.muc): persistent rooms and their affiliations.
# The room configuration is one JSON object (heron.store.rooms); times are Unix seconds.
muc_rooms = Table(
    "muc_rooms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(253), nullable=False),
    Column("name", String(255), nullable=False),
    Column("config", Text, nullable=False),
    Column("subject", Text, nullable=True),
    Column("subject_nick", String(255), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("service", "name", name="uq_muc_rooms_address"),
)

muc_affiliations = Table(
    "muc_affiliations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", Integer, nullable=False),
    Column("jid", String(320), nullable=False),
    Column("affiliation", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    UniqueConstraint("room_id", "jid", name="uq_muc_affiliations_room_jid"),
)

# XMPP instant messaging (heron.store.im): rosters, pending inbound subscription
# requests and roster versions (RFC 6121), offline messages (XEP-0160).
# A stanza may be larger than MySQL's TEXT (64 KiB).
_STANZA_TEXT = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")

roster_items = Table(
    "roster_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("contact", String(320), nullable=False),
    Column("name", Text, nullable=True),
    Column("subscription", String(4), nullable=False),
    Column("ask", Boolean, nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("groups", Text, nullable=False),
    UniqueConstraint("owner", "contact", name="uq_roster_items_owner_contact"),
)

roster_pending = Table(
    "roster_pending",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("contact", String(320), nullable=False),
    Column("stanza", _STANZA_TEXT, nullable=False),
    UniqueConstraint("owner", "contact", name="uq_roster_pending_owner_contact"),
)

roster_versions = Table(
    "roster_versions",
    metadata,
    Column("owner", String(320), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Times are Unix seconds.
offline_messages = Table(
    "offline_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("stanza", _STANZA_TEXT, nullable=False),
    Column("stamp", Double, nullable=False),
    Index("ix_offline_messages_owner", "owner"),
)

# XMPP small services (heron.xmpp.features.vcard, .blocking); owners are bare JIDs.
xmpp_vcards = Table(
    "xmpp_vcards",
    metadata,
    Column("owner", String(320), primary_key=True),
    Column("vcard", _STANZA_TEXT, nullable=False),
    Column("updated_at", Double, nullable=False),
)

xmpp_blocklist = Table(
    "xmpp_blocklist",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("jid", String(400), nullable=False),
    UniqueConstraint("owner", "jid", name="uq_xmpp_blocklist_item"),
)

# Push app servers (XEP-0357, heron.store.push) an account enabled, oldest first by ``id``;
# ``options`` is the publish-options form's fields as a JSON list of [var, value].
xmpp_push = Table(
    "xmpp_push",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("service", String(1023), nullable=False),
    Column("node", String(1023), nullable=False),
    Column("options", Text, nullable=False),
    Index("ix_xmpp_push_owner", "owner"),
)

# Message archives (XEP-0313, heron.store.archive): an account's or a room's, by owner
# bare JID, in the order of ``seq``; ``id`` is the random archive id clients see
# (XEP-0359), ``with_jid`` the other party's bare JID and ``with_resource`` its resource.
archive = Table(
    "archive",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("owner", String(320), nullable=False),
    Column("id", String(64), nullable=False),
    Column("with_jid", String(320), nullable=False),
    Column("with_resource", String(1023), nullable=False),
    Column("stamp", Double, nullable=False),
    Column("stanza", _STANZA_TEXT, nullable=False),
    UniqueConstraint("owner", "id", name="uq_archive_owner_id"),
    Index("ix_archive_owner_stamp", "owner", "stamp"),
    Index("ix_archive_owner_with", "owner", "with_jid"),
    Index("ix_archive_stamp", "stamp"),
)

archive_prefs = Table(
    "archive_prefs",
    metadata,
    Column("owner", String(320), primary_key=True),
    Column("prefs", Text, nullable=False),
)

# XMPP personal eventing (XEP-0163, heron.xmpp.pep): each account's nodes and their items.
# An item's id is its position in publication order; ``size`` is the payload's UTF-8 bytes.
pep_nodes = Table(
    "pep_nodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(320), nullable=False),
    Column("name", String(256), nullable=False),
    Column("config", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("owner", "name", name="uq_pep_nodes_owner_name"),
)

pep_items = Table(
    "pep_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_id", Integer, nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("payload", _STANZA_TEXT, nullable=False),
    Column("size", Integer, nullable=False),
    Column("published_at", Double, nullable=False),
    UniqueConstraint("node_id", "item_id", name="uq_pep_items_node_item"),
)
