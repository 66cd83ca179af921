"""the key log (an RFC 6962 Merkle tree of key events), and devices that wait for approval

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    head = op.create_table(
        "key_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0}])
    op.create_table(
        "key_log_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "key_log_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    # In place on both backends, as 0008 does for users.
    op.add_column(
        "devices",
        sa.Column("state", sa.String(length=16), nullable=False, server_default="active"),
    )
    op.add_column("devices", sa.Column("approval", sa.Text(), nullable=True))
    op.add_column("devices", sa.Column("log_index", sa.BigInteger(), nullable=True))
    op.add_column("devices", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE devices DROP COLUMN removed_at")
    op.execute("ALTER TABLE devices DROP COLUMN log_index")
    op.execute("ALTER TABLE devices DROP COLUMN approval")
    op.execute("ALTER TABLE devices DROP COLUMN state")
    op.drop_table("key_log_nodes")
    op.drop_table("key_log_entries")
    op.drop_table("key_log_head")
