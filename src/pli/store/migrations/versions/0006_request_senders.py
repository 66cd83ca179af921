"""file requests: the hash of the token their senders show

A request's id alone must not let anyone read it or fill it: readers and answerers show a token
derived from the secret in the request's URL, whose SHA-256 the server keeps. Requests opened
before this revision have none, and take no more answers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("file_requests", sa.Column("sender_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # In place on both backends (SQLite 3.35+): a rebuild of the table would cascade into the
    # answers that reference it.
    op.execute("ALTER TABLE file_requests DROP COLUMN sender_hash")
