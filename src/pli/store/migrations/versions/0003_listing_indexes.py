"""listing indexes: inbox and outbox pages as index range scans

The inbox is read from transfer_recipients, which gets a copy of its transfer's created_at
(backfilled here) and an index (user_id, created_at, transfer_id); it replaces the index on
user_id alone, of which it is a prefix. The outbox index on transfers gains the id, so that
pages ordered by (created_at, id) come straight from it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transfer_recipients") as batch:
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    recipients = sa.table(
        "transfer_recipients",
        sa.column("transfer_id", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    transfers = sa.table(
        "transfers",
        sa.column("id", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    created = (
        sa.select(transfers.c.created_at)
        .where(transfers.c.id == recipients.c.transfer_id)
        .scalar_subquery()
    )
    op.execute(recipients.update().values(created_at=created))
    with op.batch_alter_table("transfer_recipients") as batch:
        batch.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_transfer_recipients_user_id")
        batch.create_index(
            "ix_transfer_recipients_user_created", ["user_id", "created_at", "transfer_id"]
        )
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_sender_created")
        batch.create_index("ix_transfers_sender_created_id", ["sender_id", "created_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_sender_created_id")
        batch.create_index("ix_transfers_sender_created", ["sender_id", "created_at"])
    with op.batch_alter_table("transfer_recipients") as batch:
        batch.drop_index("ix_transfer_recipients_user_created")
        batch.create_index("ix_transfer_recipients_user_id", ["user_id"])
        batch.drop_column("created_at")
