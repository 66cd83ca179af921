"""Real, migrated databases for the server's services: SQLite, or each backend in turn."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.store.blobs import LocalBlobStore
from pli.store.db import Database, database_url, make_engine, migrate
from tests.postgres import temporary_database


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    with Database(engine).session() as db:
        yield db
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database on each backend, for tests that open several sessions at once."""
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'pli.db'}"
        if request.param == "postgres":
            url = stack.enter_context(temporary_database())
        made = make_engine(database_url(tmp_path, url))
        stack.callback(made.dispose)
        migrate(made)
        yield made


@pytest.fixture
def database(engine: Engine) -> Iterator[Session]:
    """A session on each backend."""
    with Database(engine).session() as session:
        yield session


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")
