"""Message archives (XEP-0313) and their owners' preferences.

Revision ID: 0006_archive
Revises: 0005_services
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import MEDIUMTEXT

revision = "0006_archive"
down_revision = "0005_services"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive",
        # SQLite autoincrements only an INTEGER PRIMARY KEY, which is 64 bits there anyway.
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("with_jid", sa.String(320), nullable=False),
        sa.Column("with_resource", sa.String(1023), nullable=False),
        sa.Column("stamp", sa.Double, nullable=False),
        sa.Column(
            "stanza",
            sa.Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.UniqueConstraint("owner", "id", name="uq_archive_owner_id"),
    )
    op.create_index("ix_archive_owner_stamp", "archive", ["owner", "stamp"])
    op.create_index("ix_archive_owner_with", "archive", ["owner", "with_jid"])
    op.create_index("ix_archive_stamp", "archive", ["stamp"])
    op.create_table(
        "archive_prefs",
        sa.Column("owner", sa.String(320), primary_key=True),
        sa.Column("prefs", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_prefs")
    op.drop_index("ix_archive_stamp", "archive")
    op.drop_index("ix_archive_owner_with", "archive")
    op.drop_index("ix_archive_owner_stamp", "archive")
    op.drop_table("archive")
