"""Database URLs and migrations on SQLite (PostgreSQL is covered by the integration suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from pli.errors import ConfigError
from pli.store import models
from pli.store.db import (
    Database,
    at_head,
    database_url,
    head_revision,
    make_engine,
    migrate,
    migrate_apart,
)


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert database_url(tmp_path, None) == f"sqlite:///{tmp_path / 'pli.db'}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://root@127.0.0.1/pli", "postgresql+psycopg://root@127.0.0.1/pli"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_plain_postgresql_urls_are_accepted(tmp_path: Path, given: str, expected: str) -> None:
    assert database_url(tmp_path, given) == expected


def test_other_databases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        database_url(tmp_path, "mysql://u@h/db")


def test_migrations_create_the_schema_and_are_idempotent(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"users", "sessions", "devices", "transfers", "transfer_recipients"} <= tables
    engine.dispose()


def test_a_start_knows_when_there_is_nothing_to_migrate(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    assert not at_head(engine)  # an empty database
    migrate(engine)
    assert at_head(engine)
    assert head_revision() == max(
        p.name[:4] for p in Path(models.__file__).parent.glob("migrations/versions/0*.py")
    )
    config = Config()  # one migration behind: Alembic runs again
    config.set_main_option("script_location", str(Path(models.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    assert not at_head(engine)
    migrate(engine)
    assert at_head(engine)
    engine.dispose()


def test_a_server_migrates_in_a_process_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pli.db'}"
    migrate_apart(url)
    engine = make_engine(url)
    assert at_head(engine)
    engine.dispose()
    migrate_apart(url)  # nothing to do: no process started
    with pytest.raises(ConfigError, match="cannot be opened") as refused:
        migrate_apart(f"sqlite:///{tmp_path / 'no such directory' / 'pli.db'}")
    assert refused.value.hint is not None
    (tmp_path / "locked").mkdir()
    url = f"sqlite:///{tmp_path / 'locked' / 'pli.db'}"
    make_engine(url).dispose()
    with make_engine(url).begin() as connection:  # a database Alembic cannot make sense of
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('9999')")
    with pytest.raises(ConfigError, match="could not be migrated"):
        migrate_apart(url)


def test_times_come_back_aware_in_utc(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    paris = timezone(timedelta(hours=1))
    with Database(engine).session() as session:
        session.add(
            models.User(
                email="a@example.org",
                password_hash="x",
                is_admin=False,
                created_at=datetime(2026, 11, 28, 12, 0, tzinfo=paris),
            )
        )
        session.commit()
        user = session.query(models.User).one()
        assert user.created_at == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
        assert user.created_at.tzinfo == UTC
    engine.dispose()
