"""Accounts with every derived secret.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("local", sa.String(64), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("sip_realm", sa.String(253), nullable=False),
        sa.Column("sip_ha1_md5", sa.String(32), nullable=False),
        sa.Column("sip_ha1_sha256", sa.String(64), nullable=False),
        sa.Column("turn_realm", sa.String(253), nullable=False),
        sa.Column("turn_key_md5", sa.LargeBinary(16), nullable=False),
        sa.Column("turn_key_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("scram_salt", sa.LargeBinary(64), nullable=False),
        sa.Column("scram_iterations", sa.Integer, nullable=False),
        sa.Column("scram_sha1_stored_key", sa.LargeBinary(20), nullable=False),
        sa.Column("scram_sha1_server_key", sa.LargeBinary(20), nullable=False),
        sa.Column("scram_sha256_stored_key", sa.LargeBinary(32), nullable=False),
        sa.Column("scram_sha256_server_key", sa.LargeBinary(32), nullable=False),
        sa.Column("scram_sha512_stored_key", sa.LargeBinary(64), nullable=False),
        sa.Column("scram_sha512_server_key", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("local", "domain", name="uq_accounts_address"),
    )


def downgrade() -> None:
    op.drop_table("accounts")
