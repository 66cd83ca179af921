"""Migration 0003 (listing indexes) on databases that already hold transfers, on SQLite and
PostgreSQL; and the models agree with the schema the migrations build."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import pli.store.db
from pli.server.transfers import service
from pli.store import models
from pli.store.db import Database, database_url, make_engine, migrate
from tests.postgres import temporary_database

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'pli.db'}"
        if request.param == "postgres":
            url = stack.enter_context(temporary_database())
        made = make_engine(database_url(tmp_path, url))
        stack.callback(made.dispose)
        yield made


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(pli.store.db.__file__).with_name("migrations"))
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _fill_at_0002(engine: Engine) -> dict[str, datetime]:
    """Two users and three transfers, written into the 0002 schema as it was."""
    tables = sa.MetaData()
    tables.reflect(engine)
    users, transfers = tables.tables["users"], tables.tables["transfers"]
    recipients, files = tables.tables["transfer_recipients"], tables.tables["transfer_files"]
    created = {
        "a" * 32: NOW - timedelta(hours=2),
        "b" * 32: NOW - timedelta(hours=1, microseconds=1),
        "c" * 32: NOW - timedelta(hours=1, microseconds=1),  # a tie
    }
    with engine.begin() as conn:
        for user_id, email in ((1, "alice@example.org"), (2, "bob@example.org")):
            conn.execute(
                users.insert().values(
                    id=user_id, email=email, password_hash="x", is_admin=False, created_at=NOW
                )
            )
        for transfer_id, at in created.items():
            conn.execute(
                transfers.insert().values(
                    id=transfer_id,
                    sender_id=1,
                    state="sealed",
                    created_at=at,
                    expires_at=NOW + timedelta(days=1),
                    sealed_at=at,
                    manifest=b"m",
                )
            )
            conn.execute(recipients.insert().values(transfer_id=transfer_id, user_id=2))
            conn.execute(
                files.insert().values(
                    id=transfer_id[:31] + "f", transfer_id=transfer_id, position=0
                )
            )
    return created


def _indexes(engine: Engine, table: str) -> dict[str, list[str | None]]:
    return {i["name"] or "": list(i["column_names"]) for i in inspect(engine).get_indexes(table)}


def test_0003_backfills_existing_transfers_and_builds_the_indexes(engine: Engine) -> None:
    _to(engine, "0002")
    created = _fill_at_0002(engine)
    _to(engine, "0003")
    recipients_at_0003 = sa.select(
        models.TransferRecipient.transfer_id, models.TransferRecipient.created_at
    )
    with Database(engine).session() as session:
        rows = session.execute(recipients_at_0003).all()
        assert {r.transfer_id: r.created_at for r in rows} == created
    columns = {c["name"]: c for c in inspect(engine).get_columns("transfer_recipients")}
    assert columns["created_at"]["nullable"] is False
    recipients = _indexes(engine, "transfer_recipients")
    assert recipients["ix_transfer_recipients_user_created"] == [
        "user_id",
        "created_at",
        "transfer_id",
    ]
    assert "ix_transfer_recipients_user_id" not in recipients
    transfers = _indexes(engine, "transfers")
    assert transfers["ix_transfers_sender_created_id"] == ["sender_id", "created_at", "id"]
    assert "ix_transfers_sender_created" not in transfers
    migrate(engine)  # the newest models read the newest schema: pages come from the backfill
    with Database(engine).session() as session:
        bob = session.get_one(models.User, 2)
        page = service.listing(session, bob, "inbox", now=NOW, limit=2)
        assert [v.transfer.id for v in page.views] == ["c" * 32, "b" * 32]
        rest = service.listing(session, bob, "inbox", now=NOW, limit=2, cursor=page.next_cursor)
        assert [v.transfer.id for v in rest.views] == ["a" * 32]
        assert rest.next_cursor is None


def test_0003_goes_back_down_keeping_the_transfers(engine: Engine) -> None:
    _to(engine, "0002")
    created = _fill_at_0002(engine)
    _to(engine, "0003")
    _to(engine, "0002", down=True)
    assert "created_at" not in {
        c["name"] for c in inspect(engine).get_columns("transfer_recipients")
    }
    assert _indexes(engine, "transfers")["ix_transfers_sender_created"] == [
        "sender_id",
        "created_at",
    ]
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(sa.table("transfers")))
        assert count.scalar_one() == len(created)
    migrate(engine)  # and up again, to the newest
    with Database(engine).session() as session:
        assert len(session.scalars(sa.select(models.TransferRecipient)).all()) == len(created)


def test_the_models_match_the_migrated_schema(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, models.Base.metadata) == []
