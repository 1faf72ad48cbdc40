"""XMPP personal eventing (XEP-0163 PEP on XEP-0060): nodes and their items.

Revision ID: 0007_pubsub
Revises: 0006_archive
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import MEDIUMTEXT

revision = "0007_pubsub"
down_revision = "0006_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pep_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.UniqueConstraint("owner", "name", name="uq_pep_nodes_owner_name"),
    )
    op.create_table(
        "pep_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        # Up to 128 KiB of XML (an avatar): more than MariaDB's TEXT holds.
        sa.Column(
            "payload", sa.Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("published_at", sa.Double, nullable=False),
        sa.UniqueConstraint("node_id", "item_id", name="uq_pep_items_node_item"),
    )


def downgrade() -> None:
    op.drop_table("pep_items")
    op.drop_table("pep_nodes")
