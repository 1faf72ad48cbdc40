"""XMPP group chat (XEP-0045): persistent rooms, their configuration and affiliations.

Revision ID: 0004_muc
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_muc"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "muc_rooms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("subject_nick", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("service", "name", name="uq_muc_rooms_address"),
    )
    op.create_table(
        "muc_affiliations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("room_id", sa.Integer, nullable=False),
        sa.Column("jid", sa.String(320), nullable=False),
        sa.Column("affiliation", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.UniqueConstraint("room_id", "jid", name="uq_muc_affiliations_room_jid"),
    )


def downgrade() -> None:
    op.drop_table("muc_affiliations")
    op.drop_table("muc_rooms")
