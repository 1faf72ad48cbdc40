"""SIP location bindings, so registrations survive a restart.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_bindings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("aor", sa.String(320), nullable=False),
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("q", sa.Double, nullable=True),
        sa.Column("call_id", sa.Text, nullable=False),
        sa.Column("cseq", sa.BigInteger, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("instance", sa.Text, nullable=True),
        sa.Column("reg_id", sa.Integer, nullable=True),
        sa.Column("received_transport", sa.String(16), nullable=False),
        sa.Column("received_host", sa.String(255), nullable=False),
        sa.Column("received_port", sa.Integer, nullable=False),
        sa.Column("flow", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ix_sip_bindings_aor", "sip_bindings", ["aor"])
    op.create_index("ix_sip_bindings_expires_at", "sip_bindings", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sip_bindings_expires_at", table_name="sip_bindings")
    op.drop_index("ix_sip_bindings_aor", table_name="sip_bindings")
    op.drop_table("sip_bindings")
