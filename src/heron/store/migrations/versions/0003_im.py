"""XMPP instant messaging: rosters, pending subscription requests, roster
versions and offline messages (RFC 6121, XEP-0160).

Revision ID: 0003_im
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003_im"
down_revision = "0002"
branch_labels = None
depends_on = None

# A stanza may be larger than MySQL's TEXT (64 KiB).
_STANZA = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "roster_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("subscription", sa.String(4), nullable=False),
        sa.Column("ask", sa.Boolean, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.UniqueConstraint("owner", "contact", name="uq_roster_items_owner_contact"),
    )
    op.create_table(
        "roster_pending",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("stanza", _STANZA, nullable=False),
        sa.UniqueConstraint("owner", "contact", name="uq_roster_pending_owner_contact"),
    )
    op.create_table(
        "roster_versions",
        sa.Column("owner", sa.String(320), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "offline_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("stanza", _STANZA, nullable=False),
        sa.Column("stamp", sa.Double, nullable=False),
    )
    op.create_index("ix_offline_messages_owner", "offline_messages", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_offline_messages_owner", table_name="offline_messages")
    op.drop_table("offline_messages")
    op.drop_table("roster_versions")
    op.drop_table("roster_pending")
    op.drop_table("roster_items")
