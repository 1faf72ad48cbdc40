"""Accounts imported from coturn, Kamailio or Prosody without every secret are marked.

Revision ID: 0008_import
Revises: 0007_pubsub
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_import"
down_revision = "0007_pubsub"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("missing_secrets", sa.String(255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("missing_secrets")
