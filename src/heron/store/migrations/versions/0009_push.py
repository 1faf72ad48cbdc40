"""Push app servers accounts enabled (XEP-0357).

Revision ID: 0009_push
Revises: 0008_import
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_push"
down_revision = "0008_import"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xmpp_push",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("service", sa.String(1023), nullable=False),
        sa.Column("node", sa.String(1023), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
    )
    op.create_index("ix_xmpp_push_owner", "xmpp_push", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_xmpp_push_owner", "xmpp_push")
    op.drop_table("xmpp_push")
