"""share links and file requests

Transfers get a kind (direct, link, answer) and may have no account sender (an answer to a
file request); uploads may have no account (a guest's). New tables: links and their download
tickets, file requests and the answers they received.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import contextlib
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# On SQLite a column's nullability changes by copying the table into a new one and dropping
# the old: with foreign keys enforced, that drop deletes the rows referencing `transfers` in
# cascade. They are kept aside meanwhile, parents first (uploads reference transfer_files).
_KEEP = (
    "CREATE TEMP TABLE kept_transfer_files AS SELECT * FROM transfer_files",
    "CREATE TEMP TABLE kept_transfer_recipients AS SELECT * FROM transfer_recipients",
    "CREATE TEMP TABLE kept_uploads AS SELECT * FROM uploads",
)
_RESTORE = (
    # Already gone where foreign keys are enforced; not where they are not.
    "DELETE FROM uploads",
    "DELETE FROM transfer_recipients",
    "DELETE FROM transfer_files",
    "INSERT INTO transfer_files SELECT * FROM kept_transfer_files",
    "INSERT INTO transfer_recipients SELECT * FROM kept_transfer_recipients",
    "INSERT INTO uploads SELECT * FROM kept_uploads",
    "DROP TABLE kept_transfer_files",
    "DROP TABLE kept_transfer_recipients",
    "DROP TABLE kept_uploads",
)


@contextlib.contextmanager
def _children_kept() -> Iterator[None]:
    """Keep the rows referencing `transfers` across a rebuild of that table on SQLite."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    for statement in _KEEP:
        op.execute(statement)
    yield
    for statement in _RESTORE:
        op.execute(statement)


def upgrade() -> None:
    with _children_kept(), op.batch_alter_table("transfers") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="direct", nullable=False)
        )
        batch.alter_column("sender_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
    _create_links()
    _create_requests()


def _create_links() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("downloads", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["transfers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "link_tickets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_link_tickets_link_id", "link_tickets", ["link_id"])


def _create_requests() -> None:
    op.create_table(
        "file_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_files", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("files_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes_used", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_file_requests_owner_id", "file_requests", ["owner_id"])
    op.create_index("ix_file_requests_expires_at", "file_requests", ["expires_at"])
    op.create_table(
        "request_answers",
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["request_id"], ["file_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transfer_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_request_answers_request_id", "request_answers", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_answers_request_id", table_name="request_answers")
    op.drop_table("request_answers")
    op.drop_index("ix_file_requests_expires_at", table_name="file_requests")
    op.drop_index("ix_file_requests_owner_id", table_name="file_requests")
    op.drop_table("file_requests")
    op.drop_index("ix_link_tickets_link_id", table_name="link_tickets")
    op.drop_table("link_tickets")
    op.drop_table("links")
    # Rows an older version cannot hold go: transfers and uploads without an account.
    op.execute("DELETE FROM uploads WHERE user_id IS NULL")
    op.execute("DELETE FROM transfers WHERE sender_id IS NULL OR kind <> 'direct'")
    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
    with _children_kept(), op.batch_alter_table("transfers") as batch:
        batch.alter_column("sender_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("kind")
