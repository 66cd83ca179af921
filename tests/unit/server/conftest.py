"""Real, migrated databases for the server's services: SQLite, or each backend in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.store.blobs import LocalBlobStore
from pli.store.db import Database, make_engine, migrate


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    with Database(engine).session() as db:
        yield db
    engine.dispose()


@pytest.fixture
def database(engine: Engine) -> Iterator[Session]:
    """A session on each backend."""
    with Database(engine).session() as session:
        yield session


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")
