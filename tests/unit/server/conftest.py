"""A real, migrated SQLite database for the server's services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pli.store.db import Database, make_engine, migrate


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pli.db'}")
    migrate(engine)
    with Database(engine).session() as db:
        yield db
    engine.dispose()
