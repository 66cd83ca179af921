"""service accounts: accounts for unattended jobs, used through API tokens only

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place on both backends, as 0008 does for users.
    op.add_column("users", sa.Column("service_scopes", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN service_scopes")
