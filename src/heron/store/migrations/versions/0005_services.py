"""Small XMPP services' tables: vCards (XEP-0054) and blocklists (XEP-0191).

Revision ID: 0005_services
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import MEDIUMTEXT

revision = "0005_services"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xmpp_vcards",
        sa.Column("owner", sa.String(320), primary_key=True),
        # Serialized XML up to 64 KiB: one byte more than MariaDB's TEXT holds.
        sa.Column(
            "vcard",
            sa.Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "xmpp_blocklist",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("jid", sa.String(400), nullable=False),
        sa.UniqueConstraint("owner", "jid", name="uq_xmpp_blocklist_item"),
    )


def downgrade() -> None:
    op.drop_table("xmpp_blocklist")
    op.drop_table("xmpp_vcards")
